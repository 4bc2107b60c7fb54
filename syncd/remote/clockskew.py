"""The service's clock, as far as its answers tell: how far it runs ahead of ours.

Upload intents are matched to listed files by creation time, on the service's clock; the
learnt rate limit's reset time is on it too (:mod:`syncd.remote.ratelimit`).
"""

from __future__ import annotations

import email.utils
import math
import statistics
import threading
import time
from collections import deque
from collections.abc import Callable

SKEW_SAMPLES = 15  # `date` readings the clock skew is the median of


class ClockSkew:
    """The service's clock minus ours, learnt from the ``date`` header of answers. Thread-safe.

    ``date`` has a one-second resolution (truncated), so a reading is taken at the middle of its
    second, against our clock when the answer arrived; the median of the last SKEW_SAMPLES
    readings shrugs off one slow answer or a proxy's stale header.
    """

    def __init__(self, clock: Callable[[], float] = time.time, samples: int = SKEW_SAMPLES) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._seen: deque[float] = deque(maxlen=samples)
        self._last: tuple[str, float | None] = ("", None)  # the last header and its time

    def observe(self, date: str | None) -> None:
        """Learn from one answer's ``date`` header (ignored if missing or unparsable)."""
        if not date:
            return
        last = self._last  # answers within one second carry the same header: parse it once
        stamp = last[1] if last[0] == date else _date_stamp(date)
        self._last = (date, stamp)
        if stamp is None:
            return
        offset = stamp + 0.5 - self._clock()
        if math.isfinite(offset):
            with self._lock:
                self._seen.append(offset)

    def seconds(self) -> float:
        """Seconds the service's clock runs ahead of ours (negative: behind); 0.0 unknown."""
        with self._lock:
            seen = list(self._seen)
        return statistics.median(seen) if seen else 0.0


def _date_stamp(date: str) -> float | None:
    """The unix time a ``date`` header names; None if unparsable or without a zone."""
    try:
        parsed = email.utils.parsedate_to_datetime(date)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    return None if parsed.tzinfo is None else parsed.timestamp()  # "-0000": no zone
