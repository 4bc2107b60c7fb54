"""Files inotify says are being written: held until their writer closes them.

A download that stalls (curl, a browser) is quiet for longer than ``settle_seconds`` while the
file is still open for writing; uploading it then hands applications a truncated file. So a
file written to (inotify ``IN_MODIFY``; a creation alone does not count, see the watcher) is
held until it is closed after writing (``IN_CLOSE_WRITE``), or until ``settle_max_seconds``
after the first write, whichever comes first: a writer that never closes (a log file) is still
synced at the settle cap. The worker holds only a file that differs from its synced copy. Scans
see no open state, so paths found by a scan keep the plain settle rule. Thread-safe; the clock
is injected.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

MAX_TRACKED = 100_000  # past this, the oldest entries are dropped (they only delay uploads)
RECHECK = 1.0  # seconds: a held path is looked at again this often (the close may come first)


class OpenWrites:
    """Paths being written, with when the first write was seen."""

    def __init__(self, settle_max: float, clock: Callable[[], float] = time.time) -> None:
        self._settle_max = settle_max
        self._clock = clock
        self._lock = threading.Lock()
        self._since: dict[str, float] = {}

    def written(self, path: str) -> None:
        """The watcher saw a write (or a creation) of ``path``."""
        with self._lock:
            if path not in self._since:
                if len(self._since) >= MAX_TRACKED:
                    self._since.pop(next(iter(self._since)))
                self._since[path] = self._clock()

    def closed(self, path: str) -> None:
        """The watcher saw ``path`` closed after writing, deleted or moved away."""
        with self._lock:
            self._since.pop(path, None)

    def hold_until(self, path: str) -> float | None:
        """When a worker should look at ``path`` again, or None if it is not held."""
        with self._lock:
            since = self._since.get(path)
            if since is None:
                return None
            until = since + self._settle_max
            if self._clock() >= until:
                del self._since[path]  # the cap: sync it as it is, like any busy file
                return None
            return min(until, self._clock() + RECHECK)
