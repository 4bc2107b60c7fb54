"""The dirty queue's lanes: which ready path goes out next.

Two lanes. **Live**: paths the watcher marked after start-up, and their retries (a path keeps
its lane while a worker holds it). **Backlog**: paths found by scans and reconcile. A ready
live path goes before a ready backlog path, in order of readiness; within the backlog, the most
recently modified file goes first (``newest``: the mtime the scan already read, passed with the
mark; paths marked without one go before those, in order of readiness), or by path (``path``).
A mark can promote a backlog path to live, never the reverse.

So that a folder edited without pause cannot starve the backlog, :class:`ShareRule` gives the
backlog at least ``share`` of the pops made while both lanes have a ready path. It counts pops,
not time: the queue's clock decides readiness, the rule needs none, so it is exact and a clock
jump cannot bend it. With lanes off, every path shares one lane in order of readiness: the queue
before lanes (first in, first out).

Everything here is pure (no lock, no clock: the caller passes ``now``); the queue
(:mod:`syncd.engine.dirtyqueue`) holds the lock and the settle rules.
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Literal

BacklogOrder = Literal["newest", "path"]


class Lane(StrEnum):
    """Where a queued path waits."""

    LIVE = "live"
    BACKLOG = "backlog"


@dataclass(frozen=True)
class LanePolicy:
    """How the lanes order ready paths (``[sync] lanes``, ``backlog_order``, ``backlog_share``)."""

    enabled: bool = True
    order: BacklogOrder = "newest"
    share: float = 0.2


@dataclass(slots=True)
class Entry:
    """A queued path: when it was marked, its retry time, its lane and its last known mtime."""

    first: float  # when the path was first marked since it was last handed out
    last: float  # when it was last marked
    not_before: float = 0.0  # retry time
    lane: Lane = Lane.BACKLOG
    mtime_ns: int | None = None  # for `newest`: what the scan that marked it read

    def touch(self, stamp: float, mtime_ns: int | None = None) -> Entry:
        """Marked again at ``stamp`` (with the newest mtime, when the mark brings one)."""
        self.last = max(self.last, stamp)
        self.first = min(self.first, stamp)
        if mtime_ns is not None:
            self.mtime_ns = mtime_ns
        return self


class ShareRule:
    """Which lane the next pop serves: live first, but each pop made while both lanes have a
    ready path earns the backlog ``share`` of a turn, and it takes the turn once it has a whole
    one. After n such pops the backlog has had floor(n * share) of them (integer credit, so
    0.2 is exactly one in five)."""

    SCALE = 1_000_000

    def __init__(self, share: float) -> None:
        self._step = min(self.SCALE, max(1, round(share * self.SCALE)))
        self._credit = 0

    def choose(self, live: bool, backlog: bool) -> Lane | None:
        """The lane to pop from, given which lanes have a ready path (None: neither has)."""
        if live and backlog:
            self._credit += self._step
            if self._credit >= self.SCALE:
                self._credit -= self.SCALE
                return Lane.BACKLOG
            return Lane.LIVE
        if live:
            return Lane.LIVE
        return Lane.BACKLOG if backlog else None


_Waiting = tuple[float, int, str, Entry]  # (ready time, seq, path, entry)
_Ready = tuple[int, float, str, int, str, Entry]  # (lane order key..., seq, path, entry)


class LaneHeaps:
    """Queued paths by ready time, and the ready ones by lane, in the lane's order.

    Stale items (a path handed out, promoted, or marked again since its item was pushed) are
    dropped or re-filed lazily when they reach the top: ``current(path)`` is the queue's entry
    for a path, and an item counts only while it still names that very entry.
    """

    def __init__(self, policy: LanePolicy, ready_at: Callable[[Entry], float]) -> None:
        self.policy = policy
        self._ready_at = ready_at
        self._waiting: list[_Waiting] = []
        self._ready: dict[Lane, list[_Ready]] = {Lane.LIVE: [], Lane.BACKLOG: []}
        self._seq = itertools.count()
        self._share = ShareRule(policy.share)

    def push(self, path: str, entry: Entry) -> None:
        """File ``path`` by its (new) ready time."""
        heapq.heappush(self._waiting, (self._ready_at(entry), next(self._seq), path, entry))

    def next_ready(self) -> float | None:
        """The earliest ready time filed (perhaps stale: early, never late), or None."""
        return self._waiting[0][0] if self._waiting else None

    def pop(self, now: float, current: Callable[[str], Entry | None]) -> str | None:
        """The path to hand out now, or None. The caller takes it out of the queue."""
        self._file_ready(now, current)
        live = self._top(Lane.LIVE, now, current)
        backlog = self._top(Lane.BACKLOG, now, current)
        lane = self._share.choose(live, backlog)
        if lane is None:
            return None
        return heapq.heappop(self._ready[lane])[4]

    def _heap_lane(self, entry: Entry) -> Lane:
        return entry.lane if self.policy.enabled else Lane.LIVE

    def _key(self, path: str, entry: Entry, ready_at: float) -> tuple[int, float, str]:
        if self._heap_lane(entry) is Lane.LIVE:
            return 0, ready_at, ""
        if self.policy.order == "path":
            return 0, 0.0, path
        if entry.mtime_ns is None:
            return 0, ready_at, ""  # repairs and renewals: few, and no mtime to go by
        return 1, -float(entry.mtime_ns), path

    def _file_ready(self, now: float, current: Callable[[str], Entry | None]) -> None:
        """Move every path whose ready time has come to its lane's heap."""
        waiting = self._waiting
        while waiting and waiting[0][0] <= now:
            _, _, path, entry = heapq.heappop(waiting)
            if current(path) is not entry:
                continue  # handed out, or queued again as a new entry
            ready_at = self._ready_at(entry)
            if ready_at > now:
                self.push(path, entry)  # marked again since: its key moved later
                continue
            key = self._key(path, entry, ready_at)
            heapq.heappush(self._ready[self._heap_lane(entry)],
                           (*key, next(self._seq), path, entry))

    def _top(self, lane: Lane, now: float, current: Callable[[str], Entry | None]) -> bool:
        """True when ``lane``'s heap has a path ready now on top (stale items dropped)."""
        heap = self._ready[lane]
        while heap:
            path, entry = heap[0][4], heap[0][5]
            if current(path) is entry and self._heap_lane(entry) is lane:
                if self._ready_at(entry) <= now:
                    return True
                self.push(path, entry)  # marked again after it was ready: wait again
            heapq.heappop(heap)
        return False
