"""The daemon's state that crosses threads: why work is paused, a fatal error, the loop's
verdict on its threads.

Any thread may change a flag (a worker suspends on a journal error, the main thread resumes
after a probe, the loop and the janitor both check the root); each change is one swap under
one lock and returns what it replaced, so exactly one thread sees a transition and logs it.
Reads are single attribute reads of immutable values (a ``str``, an exception, None): they
need no lock, and a reader acts on a value at most one turn old.
"""

from __future__ import annotations

import threading


class Flags:
    """Pause reasons and the fatal error, changed only through the methods below."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.fatal: BaseException | None = None  # the first error the daemon cannot go on after
        self.suspended: str | None = None  # why the journal cannot be written, while it can't
        self.root_refused: str | None = None  # why all work is paused for the root, while it is
        self.threads_problem: str | None = None  # a long-lived thread dead or stalled

    def stop_on(self, exc: BaseException) -> bool:
        """Record a fatal error; True for the first (later ones do not replace it)."""
        with self._lock:
            if self.fatal is not None:
                return False
            self.fatal = exc
            return True

    def suspend(self, reason: str) -> str | None:
        """Pause for an unwritable journal; return the reason it replaced (None: newly paused)."""
        with self._lock:
            was, self.suspended = self.suspended, reason
            return was

    def resume(self, reason: str) -> bool:
        """End the pause ``reason`` named; False when another reason came since (a write that
        failed after the probe succeeded keeps the daemon paused)."""
        with self._lock:
            if self.suspended != reason:
                return False
            self.suspended = None
            return True

    def refuse_root(self, problem: str | None) -> str | None:
        """Set (or clear, with None) why the root is refused; return the previous value."""
        with self._lock:
            was, self.root_refused = self.root_refused, problem
            return was

    def note_threads(self, problem: str | None) -> str | None:
        """Set (or clear) the threads' problem; return the previous value."""
        with self._lock:
            was, self.threads_problem = self.threads_problem, problem
            return was
