"""What the engine's parts share: one folder, its rules, the client, the journal, the queue."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from syncd.engine.deletes import DeleteGate
from syncd.engine.dirtyqueue import DirtyQueue
from syncd.engine.quota import QuotaPause
from syncd.journal import Journal
from syncd.local.fs import RootId
from syncd.local.ignore import IgnoreRules
from syncd.local.openwrites import OpenWrites
from syncd.metrics import Metrics
from syncd.remote.client import FilesClient
from syncd.remote.throttle import WarnOnce


@dataclass
class SyncContext:
    """What every worker shares. ``rules`` may be swapped on reload (SIGHUP)."""

    root: Path
    rules: IgnoreRules
    follow_symlinks: bool
    name_prefix: str
    client: FilesClient
    journal: Journal
    queue: DirtyQueue
    gate: DeleteGate
    clock: Callable[[], float] = time.time
    warn: WarnOnce | None = None
    metrics: Metrics = field(default_factory=Metrics)
    quota: QuotaPause = field(default_factory=QuotaPause)
    writes: OpenWrites | None = None  # files the watcher saw opened for writing
    # The root's identity as first synced (RootGuard.identity): what a root fd must be.
    root_identity: Callable[[], RootId | None] = lambda: None
