"""The storage-quota pause: when the organization's storage is full, no path can upload.

A full quota is not one file's error: every upload would fail the same way until someone deletes
files. So the first ``QuotaExceeded`` pauses all uploads (deletions go on: they free space), and
from then on one upload at a time is let through as a probe, at most every ``probe_interval``
seconds; the first that succeeds resumes everything.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import structlog

from syncd.logs import stored_text

log = structlog.get_logger("syncd.quota")
PROBE_INTERVAL = 300.0


class QuotaPause:
    """Whether uploads may run now. Thread-safe; the clock is injected."""

    def __init__(
        self, clock: Callable[[], float] = time.time, probe_interval: float = PROBE_INTERVAL
    ) -> None:
        self._clock = clock
        self._interval = probe_interval
        self._lock = threading.Lock()
        self._probing = False
        self.reason: str | None = None  # set while paused
        self.next_probe = 0.0

    def blocked_until(self) -> float | None:
        """None if the caller may upload now (maybe as the probe), else when to look again."""
        with self._lock:
            if self.reason is None:
                return None
            if not self._probing and self._clock() >= self.next_probe:
                self._probing = True  # this caller is the one probe
                return None
            return max(self.next_probe, self._clock() + 1.0)

    def full(self, message: str) -> float:
        """An upload hit the quota: pause (or stay paused); return when the next probe may run."""
        with self._lock:
            if self.reason is None:
                log.error("storage quota full: uploads paused, deletions continue",
                          error=message, probe_every_s=self._interval)
            self.reason = f"storage quota full ({stored_text(message)})"
            self._probing = False
            self.next_probe = self._clock() + self._interval
            return self.next_probe

    def succeeded(self) -> None:
        """An upload went through: the quota has room again."""
        with self._lock:
            if self.reason is not None:
                log.info("storage quota has room again: uploads resumed")
            self.reason = None
            self._probing = False

    def settled(self) -> None:
        """An upload ended some other way (any error): another probe may run."""
        with self._lock:
            self._probing = False
