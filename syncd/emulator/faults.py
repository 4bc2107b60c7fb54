"""Fault injection for the emulator: what to break (``Faults``) and the dice that decide when.

``quota_bytes`` is not random: it is the organization's storage quota, with which every upload
that would take the live files past it is refused (400 storage_quota_exceeded in 2026-10-21,
403 permission_error in 2023-06-01). It lives here so that tests can change it live through
``RunningEmulator.set_faults`` or ``PUT /_emulator/faults``.

Every random decision comes from one seeded ``random.Random``, so a run with the same seed and
the same request sequence fails in the same places. A fault whose rate is zero never draws,
which keeps the sequence of the other faults unchanged when one is switched off.

``short_list_rate`` cuts a share of page listings short (``syncd.emulator.lists``), as a broken
proxy or a service hiccup would, in one of ``SHORT_LIST_MODES``:

- ``empty``: no files, but the end marker that says the listing is complete
  (``{"data": [], "next_page": null}``, or ``has_more: false`` in 2023-06-01);
- ``unmarked``: the real page (full if more follow) without its end marker: neither
  ``next_page`` nor ``has_more``, so it proves nothing about the rest;
- ``either``: one of the two, half each.

Look-ups by ``ids[]`` are never cut.
"""

from __future__ import annotations

import logging
import math
import random
import threading
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, fields

from starlette.responses import Response
from starlette.types import Receive, Scope, Send

_RATES = ("error_rate", "drop_upload_rate", "lose_response_rate", "short_list_rate")
_OPTIONAL_INTS = ("rate_limit_rpm", "rate_limit_burst", "quota_bytes")
SHORT_LIST_MODES = ("empty", "unmarked", "either")
_STRINGS = {"short_list_mode": SHORT_LIST_MODES}


@dataclass(frozen=True)
class Faults:
    """What the emulator should get wrong, all off by default."""

    rate_limit_rpm: int | None = None
    rate_limit_burst: int | None = None
    error_rate: float = 0.0
    latency_seconds: float = 0.0
    drop_upload_rate: float = 0.0
    lose_response_rate: float = 0.0
    quota_bytes: int | None = None
    short_list_rate: float = 0.0
    short_list_mode: str = "either"

    def __post_init__(self) -> None:
        problem = _faults_problem(self)
        if problem is not None:
            raise ValueError(problem)

    @property
    def burst(self) -> int:
        """Size of the token bucket: ``rate_limit_burst`` or a tenth of a minute's requests."""
        if self.rate_limit_burst is not None:
            return self.rate_limit_burst
        return max(1, (self.rate_limit_rpm or 0) // 10)

    def to_dict(self) -> dict[str, object]:
        """The settings as plain JSON-ready values."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, object]) -> Faults:
        """Build from JSON; unknown keys and wrong types raise ``ValueError`` naming the key."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown fault setting(s): {', '.join(unknown)}")
        for key, value in data.items():
            _check_type(key, value)
        return cls(**data)  # type: ignore[arg-type]


def _check_type(key: str, value: object) -> None:
    # bool is an int in Python, but `"error_rate": true` is a mistake worth naming.
    if key in _STRINGS:
        if not isinstance(value, str):
            raise ValueError(f"{key} must be one of {', '.join(_STRINGS[key])}")
        return
    if isinstance(value, bool):
        raise ValueError(f"{key} must be a number, not a boolean")
    if key in _OPTIONAL_INTS:
        if value is not None and not isinstance(value, int):
            raise ValueError(f"{key} must be an integer or null")
    elif not isinstance(value, int | float):
        raise ValueError(f"{key} must be a number")


def _faults_problem(faults: Faults) -> str | None:
    for name in _RATES:
        rate = getattr(faults, name)
        if not 0.0 <= rate <= 1.0:
            return f"{name} must be between 0 and 1 (got {rate})"
    if faults.latency_seconds < 0 or not math.isfinite(faults.latency_seconds):
        return f"latency_seconds must be a finite number >= 0 (got {faults.latency_seconds})"
    for name in ("rate_limit_rpm", "rate_limit_burst"):
        value = getattr(faults, name)
        if value is not None and value < 1:
            return f"{name} must be at least 1 or unset (got {value})"
    if faults.quota_bytes is not None and faults.quota_bytes < 0:
        return f"quota_bytes must be 0 or more, or unset (got {faults.quota_bytes})"
    if faults.short_list_mode not in SHORT_LIST_MODES:
        return (f"short_list_mode must be one of {', '.join(SHORT_LIST_MODES)} "
                f"(got {faults.short_list_mode!r})")
    return None


class TokenBucket:
    """A token bucket refilled at ``rpm`` tokens a minute, holding at most ``burst`` tokens."""

    def __init__(self, rpm: int, burst: int, now: float) -> None:
        self._rate = rpm / 60.0
        self._burst = float(burst)
        self._tokens = float(burst)
        self._last = now

    def take(self, now: float) -> int | None:
        """Take a token; None if granted, else the whole seconds (>= 1) until one frees."""
        # A clock that steps backwards must not mint or destroy tokens.
        elapsed = max(0.0, now - self._last)
        self._last = max(self._last, now)
        self._tokens = min(self._burst, self._tokens + elapsed * self._rate)
        if self._tokens >= 1.0:
            self._tokens -= 1.0
            return None
        return max(1, math.ceil((1.0 - self._tokens) / self._rate))

    def budget(self, now: float) -> tuple[int, float]:
        """(whole tokens left, seconds until the bucket is full) at ``now``; takes nothing."""
        tokens = min(self._burst, self._tokens + max(0.0, now - self._last) * self._rate)
        return int(tokens), (self._burst - tokens) / self._rate


class FaultDice:
    """The live fault settings plus the seeded dice and rate limiter that apply them."""

    def __init__(self, faults: Faults, seed: int, clock: Callable[[], float]) -> None:
        self._lock = threading.Lock()
        self._random = random.Random(seed)
        self._clock = clock
        self._faults = faults
        self._bucket = self._new_bucket(faults)

    @property
    def faults(self) -> Faults:
        """The settings in force."""
        return self._faults

    def set(self, faults: Faults) -> None:
        """Replace the settings; the rate limiter starts again with a full bucket."""
        with self._lock:
            self._faults = faults
            self._bucket = self._new_bucket(faults)

    def rate_limited(self) -> int | None:
        """None if this request may proceed, else its ``retry-after`` in seconds."""
        with self._lock:
            if self._bucket is None:
                return None
            return self._bucket.take(self._clock())

    def budget(self) -> tuple[int, int, float] | None:
        """(limit a minute, requests left, unix time the bucket is full), or None: no limit."""
        with self._lock:
            if self._bucket is None or self._faults.rate_limit_rpm is None:
                return None
            now = self._clock()
            remaining, full_in = self._bucket.budget(now)
            return self._faults.rate_limit_rpm, remaining, now + full_in

    def server_error(self) -> int | None:
        """500 or 529 (half each) for a share ``error_rate`` of calls, else None."""
        with self._lock:
            if not self._roll(self._faults.error_rate):
                return None
            return 500 if self._random.random() < 0.5 else 529

    def drop_upload(self) -> bool:
        """Whether to drop this upload's connection before anything is stored."""
        with self._lock:
            return self._roll(self._faults.drop_upload_rate)

    def lose_response(self) -> bool:
        """Whether to store this upload and then drop the connection instead of answering."""
        with self._lock:
            return self._roll(self._faults.lose_response_rate)

    def short_listing(self) -> str | None:
        """How to cut this page listing short (``empty`` or ``unmarked``), or None: answer it
        whole."""
        with self._lock:
            faults = self._faults
            if not self._roll(faults.short_list_rate):
                return None
            if faults.short_list_mode != "either":
                return faults.short_list_mode
            return "empty" if self._random.random() < 0.5 else "unmarked"

    def _roll(self, rate: float) -> bool:
        # No draw at rate 0: switching one fault off leaves the others' sequence unchanged.
        if rate <= 0.0:
            return False
        return rate >= 1.0 or self._random.random() < rate

    def _new_bucket(self, faults: Faults) -> TokenBucket | None:
        if faults.rate_limit_rpm is None:
            return None
        return TokenBucket(faults.rate_limit_rpm, faults.burst, self._clock())


class ConnectionDropped(Exception):
    """Raised after the response has started, so uvicorn closes the socket mid-response."""


class DroppedConnection(Response):
    """A "response" that starts and then breaks the connection: the client sees a transport error.

    Raising before ``http.response.start`` would make uvicorn send a clean 500 instead, and a
    500 is an answer; a dropped connection leaves the client not knowing what happened.
    """

    def __init__(self) -> None:
        super().__init__(status_code=200)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Send the status line and headers, then fail so the server closes the socket."""
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-length", b"4096")]})
        raise ConnectionDropped("emulated fault: connection dropped")


class QuietDrops(logging.Filter):
    """Keeps uvicorn from logging a traceback for every deliberately dropped connection."""

    def filter(self, record: logging.LogRecord) -> bool:
        """False for uvicorn's "Exception in ASGI application" about a planned drop."""
        exc = record.exc_info[1] if record.exc_info else None
        return not isinstance(exc, ConnectionDropped)


QUIET_DROPS = QuietDrops()
