"""The one workspace a journal's files live in (invariant 11), checked on every answer."""

from __future__ import annotations

import threading
from collections.abc import Callable

import structlog

from syncd.errors import WorkspaceMismatch
from syncd.remote.protocol import valid_id

log = structlog.get_logger("syncd.client")


class WorkspaceGuard:
    """The workspace this client must stay in, learnt from the first answer that names one.

    Once known it is sent with every request (the service refuses a request whose header does
    not match the key's workspace), and an answer from any other workspace raises
    WorkspaceMismatch before its body is used. Thread-safe.
    """

    def __init__(
        self, expected: str | None = None, on_learn: Callable[[str], None] | None = None
    ) -> None:
        self._lock = threading.Lock()
        self.expected = expected
        self.on_learn = on_learn

    def check(self, seen: str) -> None:
        """Compare an answer's workspace header with the expected one (learning it if new)."""
        valid_id(seen, "workspace id")
        with self._lock:
            if self.expected is None:
                if self.on_learn is not None:
                    self.on_learn(seen)  # recorded before anything else is sent
                self.expected = seen
                log.info("workspace", workspace_id=seen)
                return
            expected = self.expected
        if seen != expected:
            raise WorkspaceMismatch(
                f"this journal belongs to workspace {expected}, the key now reaches workspace"
                f" {seen}; point [state] journal elsewhere or run `syncd rebuild`"
            )

