"""Rate-limited warnings: a broken file is reported, not repeated into the system journal."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import structlog

log = structlog.get_logger("syncd")


class WarnOnce:
    """Warn about a key at most once per ``interval`` seconds (and count what was held back)."""

    def __init__(self, interval: float = 3600.0, clock: Callable[[], float] = time.monotonic):
        self._interval = interval
        self._clock = clock
        self._lock = threading.Lock()
        self._last: dict[str, tuple[float, int]] = {}

    def warn(self, key: str, event: str, **fields: Any) -> bool:
        """Log ``event`` for ``key`` unless it was logged recently; True if logged."""
        now = self._clock()
        with self._lock:
            last, held = self._last.get(key, (float("-inf"), 0))
            if now - last < self._interval:
                self._last[key] = (last, held + 1)
                return False
            self._last[key] = (now, 0)
        log.warning(event, path=key, repeats_suppressed=held, **fields)
        return True

    def clear(self, key: str) -> None:
        """The problem is gone: the next one is reported at once."""
        with self._lock:
            self._last.pop(key, None)
