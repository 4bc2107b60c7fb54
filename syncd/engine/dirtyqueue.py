"""The dirty-path queue: "this path may have changed", coalesced by path.

A path is handed out once it has been quiet for ``settle`` seconds (or ``settle_max`` after it
was first marked, so a file written forever still goes out when it pauses), never to two workers
at once, and not before its retry time. A path marked while a worker holds it comes back after
the worker is done. Coalescing by state, not by event, replaces every event-merging heuristic.

Past ``max_size`` pending paths new marks are dropped and ``overflowed`` is set: only a full scan
can find them again. That scan waits until the queue has drained to its low-water mark
(:meth:`DirtyQueue.rescan_due`), or it would refill the queue, overflow again and rescan forever.
Meanwhile ``dropped`` counts them: a dropped mark is work pending, and status must say so.

Which ready path goes first is the lanes' business (:mod:`syncd.engine.lanes`): live marks (the
watcher's) before the backlog (scans, reconcile), newest first within the backlog, with a
guaranteed share of pops for the backlog.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from syncd.engine.lanes import Entry, Lane, LaneHeaps, LanePolicy

MAX_SIZE = 200_000  # pending paths held at most (tens of MB); read when a daemon builds its queue


@dataclass(slots=True)
class _Hold:
    """A path a worker (or reconcile) holds: its lane, and its entry if marked meanwhile."""

    lane: Lane
    again: Entry | None = None


class DirtyQueue:
    """A thread-safe, coalescing, settling queue of paths."""

    def __init__(
        self,
        settle: float,
        settle_max: float,
        *,
        max_size: int = MAX_SIZE,
        clock: Callable[[], float] = time.time,
        policy: LanePolicy | None = None,
    ) -> None:
        self.settle = settle
        self.settle_max = max(settle, settle_max)
        self.max_size = max_size
        self.policy = policy or LanePolicy()
        self._clock = clock
        self._cond = threading.Condition()
        self._pending: dict[str, Entry] = {}
        self._held: dict[str, _Hold] = {}
        self._lanes = LaneHeaps(self.policy, self._ready_at)
        self._counts = dict.fromkeys(Lane, 0)  # pending paths per lane
        self._stopped = False
        self._wakes = 0  # wake() calls so far: a get() waiting across one returns None
        self.overflowed = False  # set when marks were dropped: the caller must rescan
        self.first_dropped: str | None = None  # the first path dropped since clear_overflow()
        self.dropped = 0  # marks dropped since clear_overflow(): work no count of the queue shows

    def mark(
        self,
        path: str,
        *,
        settle: bool = True,
        lane: Lane = Lane.BACKLOG,
        mtime_ns: int | None = None,
    ) -> None:
        """Note that ``path`` may have changed (``settle=False``: no need to wait for quiet).

        ``lane=LIVE`` puts the path in the live lane (promoting it if queued in the backlog, or
        once released if held); ``BACKLOG`` queues a new path there and leaves a queued or held
        path in its lane. ``mtime_ns``: the file's mtime as the caller already knows it, for the
        backlog's newest-first order (no stat here).
        """
        now = self._clock()
        stamp = now if settle else now - self.settle_max
        with self._cond:
            hold = self._held.get(path)
            if hold is not None:
                if lane is Lane.LIVE:
                    hold.lane = lane
                again = hold.again
                hold.again = (Entry(stamp, stamp, mtime_ns=mtime_ns) if again is None
                              else again.touch(stamp, mtime_ns))
                return
            entry = self._pending.get(path)
            if entry is None:
                if len(self._pending) >= self.max_size:
                    if not self.overflowed:
                        self.overflowed, self.first_dropped = True, path
                    self.dropped += 1
                    return
                self._queue(path, Entry(stamp, stamp, lane=lane, mtime_ns=mtime_ns))
            else:
                before = self._ready_at(entry)
                entry.touch(stamp, mtime_ns)
                promoted = lane is Lane.LIVE and entry.lane is not Lane.LIVE
                if promoted:
                    self._counts[entry.lane] -= 1
                    self._counts[lane] += 1
                    entry.lane = lane
                if promoted or self._ready_at(entry) < before:
                    self._lanes.push(path, entry)  # its filed key is now too late, or its lane
            self._cond.notify()

    @property
    def low_water(self) -> int:
        """After an overflow, the pending count at or below which a rescan is worth it."""
        return self.max_size // 2

    def rescan_due(self) -> bool:
        """True when marks were dropped and the queue has drained to the low-water mark."""
        with self._cond:
            return self.overflowed and len(self._pending) <= self.low_water

    def clear_overflow(self) -> int:
        """A full scan starts now: marks dropped from here on ask for the next one. Returns how
        many marks were dropped before (work owed until that scan has queued it again)."""
        with self._cond:
            dropped = self.dropped
            self.overflowed, self.first_dropped, self.dropped = False, None, 0
            return dropped

    def defer_for(self, path: str, seconds: float) -> None:
        """Look at ``path`` again ``seconds`` from now, by this queue's clock."""
        self.defer(path, self._clock() + seconds)

    def defer(self, path: str, at: float) -> None:
        """Look at ``path`` again at unix time ``at`` (a transient failure's backoff)."""
        with self._cond:
            hold = self._held.get(path)
            if hold is not None:
                # A worker defers the path it holds: keep it with the hold, so it is not handed
                # to a second worker meanwhile; done() queues it (in its lane) at its retry time.
                held = hold.again = hold.again or Entry(at, at)
                held.not_before = max(held.not_before, at)
                return
            entry = self._pending.get(path)
            if entry is None:
                self._queue(path, Entry(at, at, not_before=at))
            else:
                entry.not_before = max(entry.not_before, at)
                self._lanes.push(path, entry)
            self._cond.notify()

    def pop_ready(self) -> str | None:
        """Hand out a ready path (and hold it), or None. Never blocks."""
        with self._cond:
            return self._pop_ready(self._clock())

    def get(self, timeout: float) -> str | None:
        """Wait up to ``timeout`` seconds for a ready path; None on timeout or stop."""
        deadline = time.monotonic() + timeout
        with self._cond:
            wakes = self._wakes
            while not self._stopped:
                path = self._pop_ready(self._clock())
                if path is not None:
                    return path
                remaining = deadline - time.monotonic()
                if remaining <= 0 or self._wakes != wakes:
                    return None
                self._cond.wait(min(remaining, self._next_wait(self._clock())))
            return None

    def done(self, path: str) -> None:
        """Release a held path; if it was marked meanwhile, it is pending again."""
        with self._cond:
            hold = self._held.pop(path, None)
            if hold is not None and hold.again is not None:
                hold.again.lane = hold.lane  # a retry of a live path stays live
                self._queue(path, hold.again)
            self._cond.notify_all()  # wake drain() waiters

    def sample(self, n: int, now: float) -> list[str]:
        """Up to ``n`` queued paths with when each is due (seconds from ``now``), for the log."""
        with self._cond:
            held = [f"{p} (held)" for p in list(self._held)[:n]]
            pending = [f"{p} (in {self._ready_at(e) - now:.1f} s)"
                       for p, e in list(self._pending.items())[: n - len(held)]]
        return held + pending

    def claim(self, path: str) -> bool:
        """Hold ``path`` for work outside the workers (reconcile); False if a worker has it."""
        with self._cond:
            if path in self._held:
                return False
            # A queued path goes with the claim (one holder): queued again once released.
            entry = self._pending.pop(path, None)
            if entry is not None:
                self._counts[entry.lane] -= 1
            self._held[path] = _Hold(entry.lane if entry else Lane.BACKLOG, entry)
            return True

    def lane_of(self, path: str) -> Lane | None:
        """The lane of a path a worker holds (None when nobody holds it)."""
        with self._cond:
            hold = self._held.get(path)
            return None if hold is None else hold.lane

    def held(self) -> frozenset[str]:
        """Paths a worker holds right now."""
        with self._cond:
            return frozenset(self._held)

    def depth(self) -> tuple[int, int]:
        """(pending, held) counts."""
        with self._cond:
            return len(self._pending), len(self._held)

    def lane_depths(self) -> dict[Lane, int]:
        """Paths per lane, pending or held (together: both counts of :meth:`depth`)."""
        with self._cond:
            depths = dict(self._counts)
            for hold in self._held.values():
                depths[hold.lane] += 1
            return depths

    def idle(self, ignore_future: bool = True) -> bool:
        """True when nothing is held and nothing is pending (retries in the future excepted)."""
        now = self._clock()
        with self._cond:
            pending = (e for e in self._pending.values())
            if ignore_future:
                pending = (e for e in pending if e.not_before <= now)
            return not self._held and next(pending, None) is None

    def stop(self) -> None:
        """Wake every waiter; get() returns None from now on."""
        with self._cond:
            self._stopped = True
            self._cond.notify_all()

    def wake(self) -> None:
        """Wake every waiter without stopping the queue (a worker pool is shutting down): a
        get() waiting for work returns None at once, so its thread sees the pool's stop."""
        with self._cond:
            self._wakes += 1
            self._cond.notify_all()

    def _ready_at(self, entry: Entry) -> float:
        settled = min(entry.last + self.settle, entry.first + self.settle_max)
        return max(entry.not_before, settled)

    def _queue(self, path: str, entry: Entry) -> Entry:
        """Make ``entry`` the path's pending entry (replacing any) and file it."""
        old = self._pending.get(path)
        if old is not None:
            self._counts[old.lane] -= 1
        self._pending[path] = entry
        self._counts[entry.lane] += 1
        self._lanes.push(path, entry)
        return entry

    def _pop_ready(self, now: float) -> str | None:
        path = self._lanes.pop(now, self._pending.get)
        if path is None:
            return None
        entry = self._pending.pop(path)
        self._counts[entry.lane] -= 1
        self._held[path] = _Hold(entry.lane)
        return path

    def _next_wait(self, now: float) -> float:
        """Seconds until the earliest pending entry could be ready (capped: clocks may jump)."""
        ready = self._lanes.next_ready()
        if ready is None:
            return 1.0
        return min(1.0, max(0.005, ready - now))
