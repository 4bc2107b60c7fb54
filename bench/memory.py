"""Scenario 5, memory (and scenario 4's start-up to READY, from the same daemon).

Peak RSS is the kernel's VmHWM of the ``syncd run`` process. Idle: the daemon started over the
big already-synced tree (the emulator lists every file, so start-up pages the whole listing and
scans the whole tree), READY, then a few seconds idle. Big upload: a daemon over a one-file
tree, idle, then a large file hard-linked into the root; the rise of VmHWM across its upload.
Baselines: ``watchmedo`` idle on the same tree, and curl's peak RSS for the same upload.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from bench.context import Context
from bench.fixture import synced_tree
from bench.harness import (
    HEADERS,
    Daemon,
    Emulator,
    SyncdSetup,
    big_file,
    stop_process,
    vm_kib,
    wait_until,
)
from bench.table import Row
from syncd.names import encode_name

MB = 1000 * 1000 / 1024  # KiB in a megabyte (10^6 bytes), the unit of the targets


def _idle(ctx: Context) -> tuple[float, int, float, int]:
    """(seconds to READY, peak KiB idle, daemon scan() seconds, watchmedo peak KiB)."""
    fixture = synced_tree(ctx)
    work = ctx.workdir("memory-idle")
    with Emulator(fixture.emulator_data) as emu:
        setup = SyncdSetup(work, emu.base_url)
        setup.root.rmdir()
        # The daemon must see the fixture's real path: point its config at the fixture root.
        text = setup.config.read_text().replace(str(setup.root), str(fixture.root), 1)
        setup.config.write_text(text)
        fixture.journal(setup.journal, emu.base_url)
        emu.reset_stats()
        with Daemon(setup) as daemon:
            ready = daemon.wait_ready(600)
            time.sleep(3.0)
            peak = daemon.peak_kib()
            scans = daemon.log_events("scanned")
            queued = scans[0].get("queued") if scans else None
            stats = emu.stats()
        ctx.log(f"memory: ready {ready:.1f} s, peak {peak} KiB, queued {queued}, {stats}")
    watchmedo = Path(sys.executable).with_name("watchmedo")
    proc = subprocess.Popen([str(watchmedo), "shell-command", "-R", "-c", "true",
                             str(fixture.root)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        time.sleep(3.0)
        naive_peak = vm_kib(proc.pid, "VmHWM")
    finally:
        stop_process(proc, 10)
    ctx.cleanup("memory-idle")
    scan_s = float(scans[0]["duration_ms"]) / 1000 if scans else float("nan")
    return ready, peak, scan_s, naive_peak


def _listed(emu: Emulator, name: str) -> bool:
    page = emu.http.get("/v1/files", params={"limit": 1}).json()
    return bool(page["data"]) and page["data"][0]["filename"] == name


def _big(ctx: Context) -> tuple[int, int, int]:
    """(peak KiB idle, peak KiB after the big upload, curl peak KiB for the same upload)."""
    work = ctx.workdir("memory-big")
    big = big_file(work / "big.bin", ctx.sizes.big_bytes)
    with Emulator(work / "emulator") as emu:
        setup = SyncdSetup(work, emu.base_url)
        (setup.root / "small.txt").write_text("one small file\n")
        with Daemon(setup) as daemon:
            daemon.wait_ready(60)
            wait_until(lambda: _listed(emu, "small.txt"), 30, "the small file")
            time.sleep(1.0)
            before = daemon.peak_kib()
            os.link(big, setup.root / "big.bin")
            wait_until(lambda: _listed(emu, encode_name("big.bin")), 300, "the big upload",
                       interval=0.1)
            after = daemon.peak_kib()
        args = ["curl", "-s", "-f", "-o", "/dev/null"]
        for key, value in HEADERS.items():
            args += ["-H", f"{key}: {value}"]
        args += ["-F", f"file=@{big}", f"{emu.base_url}/v1/files"]
        proc = subprocess.Popen(args)
        _pid, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        curl_peak = usage.ru_maxrss
    ctx.cleanup("memory-big")
    return before, after, curl_peak


def run(ctx: Context) -> list[Row]:
    """Scenario 5 and the start-up row of scenario 4."""
    n = ctx.sizes.scan_files
    ready, peak, scan_s, naive_peak = _idle(ctx)
    before, after, curl_peak = _big(ctx)
    mb = ctx.sizes.big_bytes / 1e6
    rise = after - before
    return [
        Row(f"4 scan: syncd run start-up to READY, {n} files synced",
            f"{ready:.2f} s (its scan() {scan_s:.2f} s)", "-",
            f"{ready:.2f} s", "(reported)", None),
        Row(f"5 memory: peak RSS, syncd run idle, {n} files synced",
            f"{peak / MB:.1f} MB", f"watchmedo idle {naive_peak / MB:.1f} MB",
            f"{peak / MB:.1f} MB", "<= 150 MB", peak * 1024 <= 150 * 10**6, timed=True),
        Row(f"5 memory: peak RSS rise uploading one {mb:.0f} MB file",
            f"{before / MB:.1f} -> {after / MB:.1f} MB", f"curl peak {curl_peak / MB:.1f} MB",
            f"+{rise / MB:.1f} MB", "<= +32 MB", rise * 1024 <= 32 * 10**6, timed=True),
    ]
