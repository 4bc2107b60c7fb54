"""The big "already synced" tree shared by the scan and memory scenarios (built once per run)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from bench.context import Context
from bench.harness import make_tree, prefill_emulator, prefill_journal

_CACHE: dict[int, SyncedTree] = {}


@dataclass
class SyncedTree:
    """A tree of small files, an emulator data dir holding them, and their ids."""

    root: Path
    emulator_data: Path
    tree: list[tuple[str, os.stat_result, bytes]]
    ids: list[str]

    def journal(self, path: Path, base_url: str, listed_at: float | None = None) -> Path:
        """A fresh journal at ``path`` in which every file is synced (bound to ``base_url``),
        with a full listing recorded at ``listed_at`` if given."""
        path.parent.mkdir(parents=True, exist_ok=True)
        prefill_journal(path, self.root, base_url, self.tree, self.ids, listed_at)
        return path


def synced_tree(ctx: Context, n: int | None = None) -> SyncedTree:
    """Build (or reuse) the tree of ``n`` files (default ``ctx.sizes.scan_files``), mtimes an
    hour old."""
    n = ctx.sizes.scan_files if n is None else n
    if n not in _CACHE:
        work = ctx.workdir(f"synced-tree-{n}")
        ctx.log(f"building a synced tree of {n} files")
        root = work / "root"
        tree = make_tree(root, n, 100, old_mtime=True)
        ids = prefill_emulator(work / "emulator", tree)
        _CACHE[n] = SyncedTree(root, work / "emulator", tree, ids)
    return _CACHE[n]
