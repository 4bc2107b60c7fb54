"""Whose request takes the next slot of a budget that several folders share.

One process mirroring several folders has one pacer: one request budget. Left alone, the
folders' workers would take its slots first come, first served, so a folder with a large backlog
would hold back a live edit in another. :class:`Turns` orders the requests waiting for a slot:

- a request for a live edit (a path the watcher reported, see :data:`LIVE`) goes before every
  backlog request, whatever its folder: freshness first, across folders;
- among requests of the same kind, the folders take turns (round robin over the folders that
  are waiting), so each folder with work gets an equal share, whatever its number of workers or
  the size of its backlog.

Only one request at a time waits in the pacer itself; the others wait here, in order. The
pacer still decides *when* (rate, burst, a 429's pause); Turns decides *who*.
"""

from __future__ import annotations

import itertools
import threading
from contextvars import ContextVar
from dataclasses import dataclass

from syncd.remote.pacer import Clock, Pacing

# Set by a worker while it works on a path of the live lane; every request it makes then
# counts as live. Requests of scans, reconcile and deletions are backlog.
LIVE: ContextVar[bool] = ContextVar("syncd_live_request", default=False)
_RECHECK = 1.0  # seconds: a waiter looks again even without a notify (belt and braces)


@dataclass(frozen=True)
class _Waiter:
    live: bool
    folder: str
    ticket: int


class Turns:
    """The queue in front of one shared pacer. Thread-safe."""

    def __init__(self, pacer: Pacing) -> None:
        self.pacer = pacer
        self._cond = threading.Condition()
        self._waiting: list[_Waiter] = []
        self._tickets = itertools.count()
        self._busy = False  # a waiter is in the pacer now
        self._last = ""  # the folder served last (round robin starts after it)
        self.served: dict[str, int] = {}  # requests per folder, for tests and the bench

    def acquire(self, folder: str) -> float:
        """Wait for this request's turn, then for the pacer; return the seconds the pacer
        waited."""
        waiter = _Waiter(LIVE.get(), folder, next(self._tickets))
        with self._cond:
            self._waiting.append(waiter)
            while self._busy or next_waiter(self._waiting, self._last) is not waiter:
                self._cond.wait(_RECHECK)
            self._waiting.remove(waiter)
            self._busy = True
            self._last = folder
            self.served[folder] = self.served.get(folder, 0) + 1
        try:
            return self.pacer.acquire()
        finally:
            with self._cond:
                self._busy = False
                self._cond.notify_all()

    def waiting(self) -> int:
        """Requests waiting for their turn now."""
        with self._cond:
            return len(self._waiting)

    def folder(self, name: str) -> FolderPacer:
        """The pacer as the client of folder ``name`` sees it."""
        return FolderPacer(self, name)


def next_waiter(waiting: list[_Waiter], last: str) -> _Waiter | None:
    """Who goes next: live before backlog; within the lane, the first waiting folder after
    ``last`` in name order (round robin), and within the folder the oldest request."""
    if not waiting:
        return None
    live = any(w.live for w in waiting)
    lane = [w for w in waiting if w.live == live]
    folders = sorted({w.folder for w in lane})
    after = [f for f in folders if f > last]
    folder = after[0] if after else folders[0]
    return min((w for w in lane if w.folder == folder), key=lambda w: w.ticket)


class FolderPacer:
    """One folder's view of the shared pacer: :meth:`acquire` takes a turn first; the rate,
    the 429 pause and what progress shows are the shared pacer's."""

    def __init__(self, turns: Turns, folder: str) -> None:
        self._turns = turns
        self._folder = folder
        self._pacer = turns.pacer

    @property
    def configured(self) -> float:
        return self._pacer.configured

    @property
    def rate(self) -> float:
        return self._pacer.rate

    @property
    def burst(self) -> int:
        return self._pacer.burst

    @property
    def waited(self) -> float:
        return self._pacer.waited

    @property
    def requests_per_minute(self) -> float:
        return self._pacer.requests_per_minute

    @property
    def clock(self) -> Clock:
        return self._pacer.clock

    def set_rate(self, requests_per_minute: float) -> None:
        self._pacer.set_rate(requests_per_minute)

    def acquire(self) -> float:
        return self._turns.acquire(self._folder)

    def pause_for(self, seconds: float) -> None:
        self._pacer.pause_for(seconds)

    def paused_for(self) -> float:
        return self._pacer.paused_for()

    def close(self) -> None:
        """Nothing: the shared pacer is its opener's to close (:func:`open_mirrors`)."""
