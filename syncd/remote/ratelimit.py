"""Pacing that learns the service's request limit: from its headers, or without them from 429s.

The service may announce its request budget on every answer (the headers the Messages API
documents; the Files API contract names them but not their format, so they are read as there):

- ``anthropic-ratelimit-requests-limit``: requests allowed a minute, a positive integer;
- ``anthropic-ratelimit-requests-remaining``: requests left now, an integer from 0 to the limit;
- ``anthropic-ratelimit-requests-reset``: when the budget is whole again, RFC 3339;
- ``retry-after`` (on a 429): seconds, or an HTTP date. The retry path acts on it
  (:func:`syncd.errors.retry_after_seconds`, the pacer's pause); here it is only checked.

:func:`parse_headers` is pure. A value that does not parse, a limit of 0, a remaining above the
limit, a reset more than RESET_SLACK seconds in the past or more than MAX_RESET_AHEAD ahead is
left out and named in ``ignored``; :class:`RateLearner` logs that as one debug line per answer
and carries on as if the header were absent, so pacing falls back to the configured rate.

:class:`RateLearner` turns answers into the shared pacer's rate (``Pacer.set_rate``):

- **Ceiling.** With an announcement seen in the last ANNOUNCEMENT_TTL seconds, the ceiling is
  SAFETY_MARGIN (95%) of the announced limit: the margin absorbs the pacer's burst, the drift
  between our minute and the service's, and a few requests from other clients of the same
  organization. If the user set ``requests_per_minute`` (the pacer holds a plain float) the
  ceiling never goes above it; if the user did not (a :class:`~syncd.remote.protocol.DefaultRate`,
  see ``syncd.config``) the announcement replaces the default, up or down. Without a fresh
  announcement the ceiling is the configured rate.
- **AIMD below the ceiling.** A 429 that announces no limit halves the rate (DECREASE), at most
  once per SAME_EVENT seconds (the requests already in flight meet the same overload), never
  below the floor: FLOOR_SHARE of the configured rate, at least MIN_FLOOR a minute. Each quiet
  minute (no 429 at all) adds INCREASE_SHARE of the ceiling back, until the ceiling is reached.
  A 429 that does announce a limit lowers nothing: its limit and retry-after already say what
  to do, and the margin keeps the steady rate under the limit.
- **Remaining 0** on a success, with a valid reset: every caller pauses one request interval of
  the announced limit (at most until the reset), instead of spending a request on a sure 429.

Quiet minutes are counted when answers arrive, on the pacer's clock: no timer, no thread, and
tests drive it with an injected clock.
"""

from __future__ import annotations

import email.utils
import math
import re
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime

import structlog

from syncd.remote.pacer import Pacing
from syncd.remote.protocol import DefaultRate

LIMIT_HEADER = "anthropic-ratelimit-requests-limit"
REMAINING_HEADER = "anthropic-ratelimit-requests-remaining"
RESET_HEADER = "anthropic-ratelimit-requests-reset"
RETRY_AFTER_HEADER = "retry-after"
_HEADERS = (LIMIT_HEADER, REMAINING_HEADER, RESET_HEADER)

SAFETY_MARGIN = 0.95  # pace at 95% of an announced limit
DECREASE = 0.5  # a 429 without an announcement halves the rate
INCREASE_SHARE = 0.1  # each quiet minute gives back 10% of the ceiling
FLOOR_SHARE = 0.1  # AIMD never goes below 10% of the configured rate ...
MIN_FLOOR = 1.0  # ... nor below one request a minute
QUIET_MINUTE = 60.0
SAME_EVENT = 10.0  # seconds: 429s this soon after a decrease are the same overload
ANNOUNCEMENT_TTL = 600.0  # an announcement older than this no longer sets the ceiling
RESET_SLACK = 2.0  # seconds a reset may lie in the past (whole-second stamps, clock skew)
MAX_RESET_AHEAD = 3600.0  # a per-minute budget that resets later than this is nonsense
MAX_RETRY_AFTER = 3600.0
_COUNT = re.compile(r"[0-9]{1,12}")

log = structlog.get_logger("syncd.ratelimit")


@dataclass(frozen=True)
class RateLimits:
    """What one answer's headers say about the request budget (None: absent or ignored)."""

    limit: int | None = None
    remaining: int | None = None
    reset: float | None = None  # unix time, on the clock ``parse_headers`` was given
    retry_after: float | None = None  # seconds
    ignored: tuple[str, ...] = ()  # "header: why" for each value left out


def parse_headers(headers: Mapping[str, str], now: float) -> RateLimits:
    """The budget ``headers`` announce, read against ``now`` (unix time, the service's clock)."""
    ignored: list[str] = []
    limit = _count(headers, LIMIT_HEADER, 1, ignored)
    remaining = _count(headers, REMAINING_HEADER, 0, ignored)
    if remaining is not None and limit is not None and remaining > limit:
        ignored.append(f"{REMAINING_HEADER}: {remaining} is above the limit {limit}")
        remaining = None
    return RateLimits(limit, remaining, _reset(headers, now, ignored),
                      _retry_after(headers, now, ignored), tuple(ignored))


def _count(headers: Mapping[str, str], name: str, minimum: int, ignored: list[str]) -> int | None:
    raw = headers.get(name)
    if raw is None:
        return None
    value = raw.strip()
    if not _COUNT.fullmatch(value):
        ignored.append(f"{name}: {raw[:40]!r} is not a whole number")
        return None
    if int(value) < minimum:
        ignored.append(f"{name}: {value} is below {minimum}")
        return None
    return int(value)


def _reset(headers: Mapping[str, str], now: float, ignored: list[str]) -> float | None:
    raw = headers.get(RESET_HEADER)
    if raw is None:
        return None
    try:
        parsed = datetime.fromisoformat(raw.strip().replace("Z", "+00:00"))
        stamp = parsed.timestamp() if parsed.tzinfo is not None else math.nan
    except (ValueError, OverflowError):
        stamp = math.nan
    if math.isnan(stamp):
        ignored.append(f"{RESET_HEADER}: {raw[:40]!r} is not an RFC 3339 time with a zone")
    elif stamp < now - RESET_SLACK:
        ignored.append(f"{RESET_HEADER}: {raw[:40]} is {now - stamp:.0f} s in the past")
    elif stamp > now + MAX_RESET_AHEAD:
        ignored.append(f"{RESET_HEADER}: {raw[:40]} is {stamp - now:.0f} s ahead")
    else:
        return stamp
    return None


def _retry_after(headers: Mapping[str, str], now: float, ignored: list[str]) -> float | None:
    raw = headers.get(RETRY_AFTER_HEADER)
    if raw is None:
        return None
    try:
        seconds = float(raw)
    except ValueError:
        try:
            seconds = email.utils.parsedate_to_datetime(raw).timestamp() - now
        except (TypeError, ValueError, IndexError, OverflowError):
            seconds = math.nan
    if not 0.0 <= seconds <= MAX_RETRY_AFTER:  # NaN fails too
        ignored.append(f"{RETRY_AFTER_HEADER}: {raw[:40]!r} is not 0 to {MAX_RETRY_AFTER:.0f} s")
        return None
    return seconds


class RateLearner:
    """Sets a pacer's rate from the answers it is shown. Thread-safe.

    ``explicit`` (default: the pacer's configured rate is not a DefaultRate) makes the
    configured rate a cap. ``wall`` is the service's clock as we best know it (unix time), for
    the reset header; quiet minutes run on the pacer's clock.
    """

    def __init__(
        self, pacer: Pacing, *, explicit: bool | None = None, wall: Callable[[], float] = time.time
    ) -> None:
        self._pacer = pacer
        self.configured = float(pacer.configured)
        self.explicit = (not isinstance(pacer.configured, DefaultRate)
                         if explicit is None else explicit)
        self.floor = min(self.configured, max(MIN_FLOOR, self.configured * FLOOR_SHARE))
        self._clock = pacer.clock
        self._wall = wall
        self._lock = threading.Lock()
        self._announced: tuple[int, float] | None = None  # (limit, when seen)
        self._backoff: float | None = None  # AIMD's rate while below the ceiling
        self._quiet_since = 0.0
        self._last_decrease = -math.inf

    def observe(self, status: int, headers: Mapping[str, str]) -> None:
        """Learn from one answer (any status) and set the pacer's rate accordingly."""
        quiet = self._backoff is None and self._announced is None  # single reads: a hint only
        if quiet and status != 429 and not any(name in headers for name in _HEADERS):
            return  # the common case without headers: nothing to learn, no lock
        wall = self._wall()
        limits = parse_headers(headers, wall)
        if limits.ignored:
            log.debug("ratelimit headers ignored", status=status, ignored=list(limits.ignored))
        with self._lock:
            now = self._clock()
            if limits.limit is not None:
                self._announced = (limits.limit, now)
            if status == 429 and limits.limit is None:
                self._decrease(now)
            elif status == 429:
                self._quiet_since = now  # no decrease, but not a quiet minute either
            else:
                self._recover(now)
            self._apply(self._rate(now))
        if status != 429 and limits.remaining == 0 and limits.reset is not None and limits.limit:
            self._pacer.pause_for(min(limits.reset - wall, 60.0 / limits.limit))

    def ceiling(self) -> float:
        """The rate AIMD climbs back to: the announced limit less the margin, or the configured
        rate (and never above the configured rate when the user set it)."""
        with self._lock:
            return self._ceiling(self._clock())

    def _ceiling(self, now: float) -> float:
        if self._announced is None or now - self._announced[1] > ANNOUNCEMENT_TTL:
            return self.configured
        learned = self._announced[0] * SAFETY_MARGIN
        return min(learned, self.configured) if self.explicit else learned

    def _rate(self, now: float) -> float:
        ceiling = self._ceiling(now)
        return ceiling if self._backoff is None else min(self._backoff, ceiling)

    def _decrease(self, now: float) -> None:
        if now - self._last_decrease < SAME_EVENT:
            return
        self._backoff = max(self.floor, self._rate(now) * DECREASE)
        self._last_decrease = self._quiet_since = now

    def _recover(self, now: float) -> None:
        if self._backoff is None:
            return
        minutes = math.floor((now - self._quiet_since) / QUIET_MINUTE)
        if minutes < 1:
            return
        ceiling = self._ceiling(now)
        self._quiet_since += minutes * QUIET_MINUTE
        self._backoff += minutes * INCREASE_SHARE * ceiling
        if self._backoff >= ceiling:
            self._backoff = None

    def _apply(self, rate: float) -> None:
        """Set the pacer's rate (under our lock, so concurrent answers apply in order)."""
        if abs(rate - self._pacer.requests_per_minute) < 1e-9:
            return
        self._pacer.set_rate(rate)
        log.info("pacing", requests_per_minute=round(rate, 1), backoff=self._backoff is not None,
                 announced_limit=self._announced[0] if self._announced else None)
