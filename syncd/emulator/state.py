"""What one emulator instance is configured with and shares across its threads."""

from __future__ import annotations

import re
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from syncd.emulator.faults import FaultDice, Faults
from syncd.emulator.store import DEFAULT_WORKSPACE, FileScope, FileStore, NewFile, StoredFile
from syncd.remote.names import filename_problem

OPERATIONS = ("upload", "list", "get", "download", "delete")
WORKSPACE_ID = re.compile(r"wrkspc_[A-Za-z0-9_-]{1,100}")


def workspace_problem(workspace_id: str) -> str | None:
    """Why ``workspace_id`` cannot be a workspace id, or None."""
    if not isinstance(workspace_id, str) or not WORKSPACE_ID.fullmatch(workspace_id):
        return f"workspace id {workspace_id!r}: must be `wrkspc_` and 1 to 100 of [A-Za-z0-9_-]"
    return None


@dataclass(frozen=True)
class EmulatorConfig:
    """Everything an emulator instance needs; ``clock`` drives created_at, expiry, lingering
    and 429s. ``page_max`` caps every page below the documented 1000 (None: no extra cap).
    ``ratelimit_headers`` announces the rate limit (``anthropic-ratelimit-requests-*``) on every
    /v1 answer; without it a ``rate_limit_rpm`` is enforced unannounced (429 + retry-after)."""

    data_dir: Path
    api_key: str = "sk-ant-emulator"
    max_file_bytes: int = 500_000_000
    linger_seconds: float = 2.0
    faults: Faults = field(default_factory=Faults)
    seed: int = 0
    clock: Callable[[], float] = time.time
    workspace_id: str = DEFAULT_WORKSPACE
    page_max: int | None = None
    ratelimit_headers: bool = False

    def __post_init__(self) -> None:
        problem = workspace_problem(self.workspace_id)
        if problem is not None:
            raise ValueError(problem)
        if self.page_max is not None and self.page_max < 1:
            raise ValueError(f"page_max must be at least 1 or None (got {self.page_max})")


class _Stats:
    """Thread-safe request counters."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: Counter[str] = Counter()

    def count(self, key: str) -> None:
        with self._lock:
            self._counts[key] += 1

    def snapshot(self) -> dict[str, int]:
        with self._lock:
            return {**dict.fromkeys(OPERATIONS, 0), **self._counts}

    def reset(self) -> None:
        with self._lock:
            self._counts.clear()


class EmulatorState:
    """The store, the fault dice, the counters and the key's workspace one emulator instance
    shares across threads."""

    def __init__(self, cfg: EmulatorConfig) -> None:
        self.cfg = cfg
        self.store = FileStore(cfg.data_dir, cfg.clock, cfg.linger_seconds)
        self.dice = FaultDice(cfg.faults, cfg.seed, cfg.clock)
        self.stats = _Stats()
        self._workspace = cfg.workspace_id

    @property
    def workspace(self) -> str:
        """The workspace the key belongs to now."""
        return self._workspace

    def set_workspace(self, workspace_id: str) -> None:
        """Move the key to another workspace (raises ValueError for a malformed id)."""
        problem = workspace_problem(workspace_id)
        if problem is not None:
            raise ValueError(problem)
        self._workspace = workspace_id

    def seed_foreign(self, filename: str, content: bytes, mime_type: str, downloadable: bool,
                     scope: FileScope | None = None,
                     expires_in_seconds: int | None = None) -> StoredFile:
        """Store a file as if another program (or, with ``scope``, a session) had made it."""
        problem = filename_problem(filename)
        if problem is not None:
            raise ValueError(problem)
        if expires_in_seconds is not None and expires_in_seconds < 1:
            raise ValueError(f"expires_in_seconds must be at least 1 (got {expires_in_seconds})")
        new = NewFile(filename, mime_type, self.workspace, downloadable=downloadable,
                      foreign=True, expires_in=expires_in_seconds, scope=scope)
        return self.store.add_bytes(content, new)
