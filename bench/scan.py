"""Scenario 4, scan cost: a rescan of a tree already in the journal, against ``find`` listing
the same metadata, plus the cost of a scan that finds 1% of the files changed.

The scan runs in this process through syncd's own ``walk`` + ``merge`` (what ``Daemon.scan``
runs), with the daemon's ignore rules, against a journal filled in bulk with the rows
``commit_upload`` writes. The tree's pages are warm (one untimed pass first) for both sides.
"""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

from bench.context import Context
from bench.fixture import synced_tree
from bench.harness import median
from bench.table import Row
from syncd.dirtyqueue import DirtyQueue
from syncd.ignore import IgnoreRules
from syncd.journal import Journal
from syncd.scan import merge, walk


def _find(root: Path) -> float:
    started = time.perf_counter()
    subprocess.run(["find", str(root), "-printf", r"%s %T@ %i\n"], stdout=subprocess.DEVNULL,
                   check=True, timeout=600)
    return time.perf_counter() - started


def _scan(root: Path, journal: Journal, rules: IgnoreRules) -> tuple[float, int, int]:
    """One walk + merge into a real dirty queue: (seconds, files seen, files marked)."""
    queue = DirtyQueue(2.0, 60.0)
    started = time.perf_counter()
    result = merge(walk(root, rules, False, lambda *_: None), journal.iter_rows(), queue.mark)
    for path in result.vanished:
        queue.mark(path, settle=False)
    return time.perf_counter() - started, result.files, result.marked


def run(ctx: Context) -> list[Row]:
    """Scenario 4 (the start-up to READY row comes from the memory scenario's daemon)."""
    fixture = synced_tree(ctx)
    root, n = fixture.root, len(fixture.tree)
    work = ctx.workdir("scan")
    path = fixture.journal(work / "journal.db", "http://127.0.0.1:9")
    rules = IgnoreRules.load(root, (), [path])
    runs = max(3, ctx.sizes.runs)
    with Journal.open(path, os.fsdecode(root.absolute()), "http://127.0.0.1:9") as journal:
        _scan(root, journal, rules)
        _find(root)
        noop, finds = [], []
        for _ in range(runs):
            noop.append(_scan(root, journal, rules))
            finds.append(_find(root))
        if any(marked for _s, _f, marked in noop):
            raise RuntimeError("the no-op rescan marked files: the fixture is not synced")
        changed = sorted(fixture.tree)[:: 100]
        for rel, st, _content in changed:
            os.utime(root / rel, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))
        dirty = [_scan(root, journal, rules) for _ in range(runs)]
        for rel, st, _content in changed:
            os.utime(root / rel, ns=(st.st_atime_ns, st.st_mtime_ns))
    ctx.cleanup("scan")
    s, f = median([t for t, _, _ in noop]), median(finds)
    d = median([t for t, _, _ in dirty])
    marked = dirty[0][2]
    return [
        Row(f"4 scan: no-op rescan, {n} files in journal",
            f"{s:.3f} s ({n / s / 1000:.0f}k files/s)", f"find -printf {f:.3f} s",
            f"{s / f:.2f}x find", "<= 2x find", s <= 2 * f, timed=True),
        Row(f"4 scan: rescan with 1% changed ({marked} marked)",
            f"{d:.3f} s", f"no-op rescan {s:.3f} s", f"{d / s:.2f}x no-op", "(reported)", None),
    ]
