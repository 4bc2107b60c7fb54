"""Scenario: a first sync bigger than the dirty queue's cap (issue 11, item 2).

``syncd sync`` of 250,000 small files in a tree of realistic shape, against an emulator with no
rate limit: more paths need a look than the queue holds (200,000), so the pass must rescan from
where marks were dropped until nothing was. Converged means every file is listed by the emulator
exactly once with its content, and `sync` exited 0. ``--quick`` syncs 800 files with the cap
scaled down to 400 (set in the syncd process before it builds its queue), so the same overflow
path runs in seconds.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import time
from pathlib import Path

from bench.context import Context
from bench.harness import PY, Emulator, SyncdSetup, make_tree
from bench.table import Row

FULL_FILES, QUICK_FILES, QUICK_CAP = 250_000, 800, 150
SIZE = 64
# `syncd sync` with the queue's cap set first: the cap is a module constant, not a setting.
_BOOT = ("import sys, syncd.engine.dirtyqueue as q; q.MAX_SIZE = int(sys.argv[1]); "
         "from syncd.cli.main import main; sys.exit(main(sys.argv[2:]))")


def _sync(setup: SyncdSetup, cap: int | None, timeout: float) -> tuple[float, int]:
    """``syncd sync`` (with the queue capped at ``cap``): (wall seconds, exit code)."""
    args = ["-m", "syncd"] if cap is None else ["-c", _BOOT, str(cap)]
    with open(setup.work / "sync.log", "ab") as log:
        started = time.perf_counter()
        proc = subprocess.run([PY, *args, "sync", "--config", str(setup.config)],
                              env=setup.env(), stdout=subprocess.DEVNULL, stderr=log,
                              timeout=timeout, check=False)
    return time.perf_counter() - started, proc.returncode


def _rescans(log: Path) -> int:
    """How many overflow rescans the pass logged."""
    count = 0
    for line in log.read_text(errors="replace").splitlines():
        if '"rescanning"' in line:
            try:
                count += json.loads(line).get("event") == "rescanning"
            except ValueError:
                continue
    return count


def _mismatches(expected: dict[str, str], live: dict[str, list[str]]) -> int:
    """Files missing, duplicated, extra or with other content in the listing."""
    wrong = sum(1 for path, sha in expected.items() if live.get(path) != [sha])
    return wrong + sum(1 for path in live if path not in expected)


def run(ctx: Context) -> list[Row]:
    """The first-sync row."""
    n, cap = (QUICK_FILES, QUICK_CAP) if ctx.quick else (FULL_FILES, None)
    work = ctx.workdir("firstsync")
    try:
        with Emulator(work / "emulator") as emu:
            setup = SyncdSetup(work, emu.base_url, workers=4)
            ctx.log(f"firstsync: building {n} files")
            tree = make_tree(setup.root, n, SIZE)
            expected = {rel: hashlib.sha256(data).hexdigest() for rel, _st, data in tree}
            del tree
            ctx.log(f"firstsync: syncd sync of {n} files (queue cap {cap or 'default'})")
            seconds, code = _sync(setup, cap, timeout=7200.0)
            wrong = _mismatches(expected, emu.live())
            rescans = _rescans(work / "sync.log")
    finally:
        ctx.cleanup("firstsync")
    converged = code == 0 and wrong == 0
    ctx.log(f"firstsync: exit {code}, {wrong} files wrong, {rescans} overflow rescans, "
            f"{seconds:.1f} s")
    capped = f", queue cap {cap}" if cap else ""
    return [
        Row(f"8 first sync: {n} x {SIZE} B files, no rate limit{capped}",
            f"exit {code}, {n - wrong}/{n} listed once, {rescans} overflow rescan(s)",
            "-", f"{seconds:.0f} s ({n / seconds:.0f} files/s)",
            "converged, exit 0", converged),
    ]
