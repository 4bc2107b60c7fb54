"""Request pacing shared by every thread: a token bucket, and a global pause after a 429.

At about 100 requests a minute, the pacer is the budget: sending a request the service will
refuse costs a round trip and a retry-after. So every request takes a token first, and a 429 seen
by any thread holds back all of them until the server's retry-after has passed. The rate itself
may change while requests flow (:meth:`Pacer.set_rate`, driven by
:mod:`syncd.remote.ratelimit`): requests already booked ahead are re-spaced at the new rate.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from typing import Protocol

Clock = Callable[[], float]
Sleep = Callable[[float], None]
_EPSILON = 1e-6  # below a clock's useful resolution: treat as "now" so waits always end


class Pacing(Protocol):
    """What the client, the rate learner and progress use of a pacer: this module's
    :class:`Pacer` (one process) or :class:`~syncd.remote.sharedpacer.SharedPacer` (hosts
    sharing one budget in Redis)."""

    @property
    def configured(self) -> float: ...  # as given (a DefaultRate: the user chose none)
    @property
    def rate(self) -> float: ...  # requests a second, the rate in force
    @property
    def burst(self) -> int: ...
    @property
    def waited(self) -> float: ...  # total seconds callers spent waiting
    @property
    def requests_per_minute(self) -> float: ...
    @property
    def clock(self) -> Clock: ...

    def set_rate(self, requests_per_minute: float) -> None: ...
    def acquire(self) -> float: ...
    def pause_for(self, seconds: float) -> None: ...
    def paused_for(self) -> float: ...
    def close(self) -> None: ...  # release what it holds (a shared pacer's Redis connections)


class Pacer:
    """A thread-safe token bucket at ``requests_per_minute`` with room for ``burst`` requests."""

    def __init__(
        self,
        requests_per_minute: float,
        burst: int = 1,
        *,
        clock: Clock = time.monotonic,
        sleep: Sleep = time.sleep,
    ) -> None:
        if requests_per_minute <= 0:
            raise ValueError("requests_per_minute must be positive")
        self.configured = requests_per_minute  # as given (a DefaultRate: the user chose none)
        self.rate = requests_per_minute / 60.0
        self.burst = max(1, burst)
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        self._interval = 1.0 / self.rate
        self._tolerance = (self.burst - 1) * self._interval
        # GCRA: the "theoretical arrival time" of the next request; a request may go when it is
        # at most `tolerance` ahead of now. No token counts accumulate float error.
        self._tat = clock()
        self._paused_until = 0.0
        self.waited = 0.0  # total seconds callers spent waiting, for progress and metrics

    @property
    def requests_per_minute(self) -> float:
        """The rate in force: the configured one, or what :meth:`set_rate` last set."""
        return self.rate * 60.0

    @property
    def clock(self) -> Clock:
        """The clock the pacer runs on (for those who time things beside it)."""
        return self._clock

    def set_rate(self, requests_per_minute: float) -> None:
        """Pace at ``requests_per_minute`` from now on; ``burst`` is unchanged.

        Slots already booked ahead of now (the GCRA debt) are re-spaced at the new interval,
        so a lower rate slows the queue at once and a higher one does not grant a burst.
        """
        if not (requests_per_minute > 0 and math.isfinite(requests_per_minute)):
            raise ValueError("requests_per_minute must be positive and finite")
        with self._lock:
            interval = 60.0 / requests_per_minute
            # A 429 pause is wall time, not requests: re-space only what lies beyond it.
            base = max(self._clock(), self._paused_until)
            booked = max(0.0, self._tat - base) / self._interval
            self.rate = requests_per_minute / 60.0
            self._interval = interval
            self._tolerance = (self.burst - 1) * interval
            self._tat = base + booked * interval

    def acquire(self) -> float:
        """Block until a request may be sent; return the seconds waited."""
        waited = 0.0
        while True:
            with self._lock:
                delay = self._reserve()
            if delay <= 0:
                return waited
            self._sleep(delay)
            waited += delay
            with self._lock:
                self.waited += delay

    def pause_for(self, seconds: float) -> None:
        """Hold back every caller for ``seconds`` from now (a 429's retry-after)."""
        with self._lock:
            until = self._clock() + max(0.0, seconds)
            self._paused_until = max(self._paused_until, until)
            # The server just said the window is spent: one request at the end, not a burst.
            self._tat = max(self._tat, self._paused_until + self._tolerance)

    def paused_for(self) -> float:
        """Seconds left in a 429 pause (0 when none), for progress displays."""
        with self._lock:
            return max(0.0, self._paused_until - self._clock())

    def close(self) -> None:
        """Nothing to release: the bucket is in this process's memory."""

    def _reserve(self) -> float:
        """Take a slot and return 0, or return how long to wait before trying again."""
        now = self._clock()
        if now < self._paused_until - _EPSILON:
            return self._paused_until - now
        tat = max(self._tat, now)
        ahead = tat - now - self._tolerance
        if ahead > _EPSILON:
            return ahead
        self._tat = tat + self._interval
        return 0.0
