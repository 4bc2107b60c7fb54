"""Scenario 4, scan cost: a no-op rescan of a tree already in the journal, against two
baselines, plus the cost of a scan that finds 1% of the files changed.

The scan runs in this process through syncd's own ``scan_tree`` (what ``Daemon.scan`` runs),
with the daemon's ignore rules, against a journal filled in bulk with the rows
``commit_upload`` writes, marking into a real dirty queue. Baselines on the same tree:
``find -printf`` listing the same metadata (its CPU from ``RUSAGE_CHILDREN``), and a bare Python
``os.scandir`` + ``stat`` walk (:func:`bench.baselines.bare_walk`, in this process), the floor
for any Python scan. The three run interleaved, after one untimed pass each (warm pages);
CPU (``time.process_time``) and wall are medians with their range. With ``--scale`` the same
rows run on the million-file tree.
"""

from __future__ import annotations

import os
import resource
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from bench.baselines import bare_walk
from bench.context import Context
from bench.fixture import synced_tree
from bench.harness import median
from bench.table import Row
from syncd.engine.dirtyqueue import DirtyQueue
from syncd.journal import Journal
from syncd.local.ignore import IgnoreRules
from syncd.local.scan import ScanResult, scan_tree

BASE_URL = "http://127.0.0.1:9"
MIN_RUNS = 5
TARGET = 2.0  # no-op rescan CPU <= TARGET x the bare walk's


@dataclass(frozen=True)
class Times:
    """CPU and wall seconds of the runs of one contender."""

    cpu: list[float]
    wall: list[float]

    def text(self, values: list[float]) -> str:
        """The median and the range."""
        return f"{median(values):.3f} s ({min(values):.3f}-{max(values):.3f})"


def _find(root: Path) -> tuple[float, float]:
    """(CPU, wall) seconds of ``find`` listing size, mtime and inode of every entry."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    subprocess.run(["find", str(root), "-printf", r"%s %T@ %i\n"], stdout=subprocess.DEVNULL,
                   check=True, timeout=1800)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return cpu, wall


def _in_process(run: Callable[[], object]) -> tuple[float, float]:
    """(CPU, wall) seconds of ``run()`` in this process."""
    cpu, started = time.process_time(), time.perf_counter()
    run()
    return time.process_time() - cpu, time.perf_counter() - started


def _scan(root: Path, journal: Journal, rules: IgnoreRules) -> ScanResult:
    """One scan into a real dirty queue, vanished paths marked too (as ``Daemon.scan``)."""
    queue = DirtyQueue(2.0, 60.0)
    result = scan_tree(root, rules, False, lambda *_: None, journal,
                       lambda path, mtime_ns: queue.mark(path, mtime_ns=mtime_ns))
    for path in result.vanished:
        queue.mark(path, settle=False)
    return result


def _interleaved(runs: int, contenders: dict[str, Callable[[], tuple[float, float]]]
                 ) -> dict[str, Times]:
    """Each contender once untimed, then ``runs`` rounds of each in turn."""
    for run in contenders.values():
        run()
    samples: dict[str, list[tuple[float, float]]] = {name: [] for name in contenders}
    for _ in range(runs):
        for name, run in contenders.items():
            samples[name].append(run())
    return {name: Times([c for c, _ in s], [w for _, w in s]) for name, s in samples.items()}


def _noop_rows(ctx: Context, n_files: int, with_changed: bool) -> list[Row]:
    """The no-op rescan rows (CPU against both baselines, wall reported) for one tree."""
    fixture = synced_tree(ctx, n_files)
    root, n = fixture.root, len(fixture.tree)
    work = ctx.workdir(f"scan-{n}")
    path = fixture.journal(work / "journal.db", BASE_URL)
    rules = IgnoreRules.load(root, (), [path])
    runs = max(MIN_RUNS, ctx.sizes.runs)
    rows: list[Row] = []
    ctx.log(f"scan: {runs} interleaved runs over {n} files")
    with Journal.open(path, os.fsdecode(root.absolute()), BASE_URL) as journal:
        marked: list[int] = []
        t = _interleaved(runs, {
            "syncd": lambda: _in_process(lambda: marked.append(_scan(root, journal, rules).marked)),
            "bare": lambda: _in_process(lambda: bare_walk(root)),
            "find": lambda: _find(root),
        })
        if any(marked):
            raise RuntimeError("the no-op rescan marked files: the fixture is not synced")
        s, b, f = t["syncd"], t["bare"], t["find"]
        cpu, bare, find = median(s.cpu), median(b.cpu), median(f.cpu)
        rows.append(Row(
            f"4 scan: no-op rescan CPU, {n} files in journal ({runs} runs)",
            f"{s.text(s.cpu)} ({n / cpu / 1000:.0f}k files/s)",
            f"bare walk {b.text(b.cpu)}; find -printf {f.text(f.cpu)}",
            f"{cpu / bare:.2f}x bare walk ({min(s.cpu) / max(b.cpu):.2f}-"
            f"{max(s.cpu) / min(b.cpu):.2f}); {cpu / find:.1f}x find",
            f"<= {TARGET:g}x bare walk", cpu <= TARGET * bare, timed=True))
        rows.append(Row(
            f"4 scan: no-op rescan wall, {n} files in journal",
            s.text(s.wall), f"bare walk {b.text(b.wall)}; find -printf {f.text(f.wall)}",
            f"{median(s.wall) / median(b.wall):.2f}x bare walk; "
            f"{median(s.wall) / median(f.wall):.1f}x find", "(reported)", None))
        if with_changed:
            rows.append(_changed_row(fixture.tree, root, journal, rules, runs, median(s.wall)))
    ctx.cleanup(f"scan-{n}")
    return rows


def _changed_row(tree: list[tuple[str, os.stat_result, bytes]], root: Path, journal: Journal,
                 rules: IgnoreRules, runs: int, noop_wall: float) -> Row:
    """A rescan with every 100th file touched (then put back)."""
    changed = sorted(tree)[:: 100]
    for rel, st, _content in changed:
        os.utime(root / rel, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))
    try:
        results: list[ScanResult] = []
        walls = [_in_process(lambda: results.append(_scan(root, journal, rules)))[1]
                 for _ in range(runs)]
    finally:
        for rel, st, _content in changed:
            os.utime(root / rel, ns=(st.st_atime_ns, st.st_mtime_ns))
    d = median(walls)
    return Row(f"4 scan: rescan with 1% changed ({results[0].marked} marked)",
               f"{d:.3f} s", f"no-op rescan {noop_wall:.3f} s", f"{d / noop_wall:.2f}x no-op",
               "(reported)", None)


def run(ctx: Context) -> list[Row]:
    """Scenario 4 (the start-up to READY row comes from the memory scenario's daemon)."""
    rows = _noop_rows(ctx, ctx.sizes.scan_files, with_changed=True)
    if ctx.sizes.scale_files:
        rows += _noop_rows(ctx, ctx.sizes.scale_files, with_changed=False)
    return rows
