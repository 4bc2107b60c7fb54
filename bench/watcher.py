"""Scenario 7, the watcher on a tree of 20,000 directories (issue 11, item 1).

The tree has the realistic shape of :func:`bench.harness.tree_dirs` (most leaves 3 to 6 levels
deep) with two small files per directory, already synced: the emulator and the journal are
filled in bulk, so ``syncd run`` starts with nothing to upload and its watcher walks the whole
tree. Then, while idle, a SIGHUP makes the daemon rescan the tree (opening every directory,
which before the watcher's event filter flooded inotify's queue); overflow rescans are counted
from the daemon's log (``rescanning`` with reason "inotify queue overflowed") once that rescan
is logged as done. Then existing files deep in the tree are edited one at a time, each polled
in the emulator's newest-first listing every 5 ms until its new copy shows (at most 30 s).
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

from bench.context import Context
from bench.harness import (
    Daemon,
    Emulator,
    SyncdSetup,
    percentile,
    prefill_emulator,
    prefill_journal,
    tree_dirs,
    wait_until,
)
from bench.table import Row
from syncd.local.watcher import OVERFLOW_REASON
from syncd.remote.names import encode_name

SETTLE = 0.5
FILES_PER_DIR = 2
Tree = list[tuple[str, os.stat_result, bytes]]


def _tree(root: Path, n_dirs: int) -> Tree:
    """``n_dirs`` directories shaped like a real tree, two small files in each, an hour old."""
    past = time.time_ns() - 3600 * 10**9
    out = []
    for d in tree_dirs(n_dirs * 20):  # tree_dirs makes one directory per 20 files
        (root / d).mkdir(parents=True, exist_ok=True)
        for k in range(FILES_PER_DIR):
            rel = f"{d}/f{k}.txt"
            data = f"{rel}\n".encode() * 4
            with open(root / rel, "wb") as fh:
                fh.write(data)
            os.utime(root / rel, ns=(past, past))
            out.append((rel, os.stat(root / rel), data))
    return out


def _deep_files(tree: Tree, n: int) -> list[str]:
    """``n`` files from the deepest directories, spread over the tree."""
    deepest = sorted((rel for rel, _st, _data in tree), key=lambda r: -r.count("/"))
    pool = deepest[: max(n, len(deepest) // 4)]
    step = max(1, len(pool) // n)
    return pool[::step][:n]


def _edit_to_listed(emu: Emulator, root: Path, rels: list[str]) -> list[float | None]:
    """Edit each file, then wait for its new copy in the listing: seconds, or None if it
    did not show within 30 s."""
    out: list[float | None] = []
    for i, rel in enumerate(rels):
        with open(root / rel, "ab") as fh:
            fh.write(f"edit {i}\n".encode())
        edited = time.perf_counter()
        deadline = edited + 30
        listed: float | None = None
        while listed is None and time.perf_counter() < deadline:
            page = emu.http.get("/v1/files", params={"limit": 1}).json()
            if page["data"] and page["data"][0]["filename"] == encode_name(rel):
                listed = time.perf_counter() - edited
            else:
                time.sleep(0.005)
        out.append(listed)
        time.sleep(0.1)
    return out


def _overflow_rescans(daemon: Daemon) -> int:
    return sum(e.get("reason") == OVERFLOW_REASON for e in daemon.log_events("rescanning"))


def _idle(daemon: Daemon, idle_s: float) -> int:
    """Idle with one rescan of the daemon's own (SIGHUP reloads, then rescans); the overflow
    rescans logged by the time that rescan is done and ``idle_s`` more have passed."""
    scans_before = len(daemon.log_events("scanned"))
    daemon.proc.send_signal(signal.SIGHUP)
    wait_until(lambda: len(daemon.log_events("scanned")) > scans_before, 300,
               "the rescan after SIGHUP")
    time.sleep(idle_s)
    return _overflow_rescans(daemon)


def run(ctx: Context) -> list[Row]:
    """Scenario 7."""
    n_dirs, n_edits, idle_s = (1_000, 5, 2.0) if ctx.quick else (20_000, 50, 10.0)
    work = ctx.workdir("watcher")
    ctx.log(f"building a synced tree of {n_dirs} directories")
    tree = _tree(work / "syncd" / "root", n_dirs)  # SyncdSetup's root
    ids = prefill_emulator(work / "emulator", tree)
    with Emulator(work / "emulator") as emu:
        setup = SyncdSetup(work / "syncd", emu.base_url, settle=SETTLE)
        prefill_journal(setup.journal, setup.root, emu.base_url, tree, ids)
        with Daemon(setup) as daemon:
            ready = daemon.wait_ready(600)
            idle_overflows = _idle(daemon, idle_s)
            times = _edit_to_listed(emu, setup.root, _deep_files(tree, n_edits))
            all_overflows = _overflow_rescans(daemon)
    ctx.cleanup("watcher")
    done = [t for t in times if t is not None]
    p95 = percentile(done, 0.95) if done else float("inf")
    ctx.log(f"watcher {n_dirs} dirs: ready {ready:.1f} s, {len(done)}/{len(times)} listed,"
            f" p95 {p95:.2f} s, overflow rescans idle {idle_overflows}, all {all_overflows}")
    label = f"7 watcher: {n_dirs} directories"
    return [
        Row(f"{label}, {len(times)} deep edits one at a time: uploaded",
            f"{len(done)}/{len(times)}", "-", f"{len(done)}/{len(times)}", "all",
            len(done) == len(times)),
        Row(f"{label}, edit -> listed, p95, settle {SETTLE} s",
            f"{p95 * 1000:.0f} ms", "-", f"settle + {(p95 - SETTLE) * 1000:.0f} ms",
            "<= settle + 1 s", p95 <= SETTLE + 1.0, timed=True),
        Row(f"{label}, overflow rescans while idle (with a rescan of its own)",
            str(idle_overflows), "-", str(idle_overflows), "0", idle_overflows == 0),
    ]
