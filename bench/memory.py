"""Scenario 5, memory (and scenario 4's start-up to READY, from the same daemon).

Peak RSS is the kernel's VmHWM of the ``syncd run`` process. Idle: the daemon started over the
big already-synced tree with no full pass recorded (so start-up pages the whole listing, as a
new journal or an overdue pass does, and scans the whole tree), READY, then a few seconds idle.
Big upload: a daemon over a one-file tree, idle, then a large file hard-linked into the root;
the rise of VmHWM across its upload.
A second start over the same tree with its last full pass recorded a minute ago: one probe
request instead of the listing, then the scan and READY (issue 13's cheap start-up).
Idle CPU: the daemon's CPU ticks (/proc/PID/stat) over a window after READY and a settling
pause, as a fraction of one core. With ``--scale`` the idle rows run again over the
million-file tree (30,000 with ``--quick``), with the targets for that size.
Baselines: ``watchmedo`` idle on the same tree (peak RSS, idle CPU), and curl's peak RSS for
the same upload.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from bench.context import Context
from bench.fixture import SyncedTree, synced_tree
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
from syncd.remote.names import encode_name

MB = 1000 * 1000 / 1024  # KiB in a megabyte (10^6 bytes), the unit of the targets
IDLE_CORE = 0.02  # the idle CPU target, a fraction of one core


@dataclass(frozen=True)
class Idle:
    """One daemon started over an already-synced tree, and watchmedo on the same tree."""

    files: int
    ready: float  # seconds from launch to READY=1
    scan_s: float  # the start-up scan() as the daemon logged it
    peak_kib: int  # VmHWM after the idle window
    core: float  # CPU over the idle window, a fraction of one core
    window: float  # seconds measured
    naive_peak_kib: int  # watchmedo's VmHWM
    naive_core: float  # watchmedo's CPU over the same window


def _cpu_seconds(pid: int) -> float:
    """utime + stime of ``pid`` so far (/proc/PID/stat), in seconds."""
    with open(f"/proc/{pid}/stat") as fh:
        fields = fh.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _idle_core(pid: int, settle: float, window: float) -> float:
    """CPU of ``pid`` over ``window`` seconds after ``settle`` more, as a fraction of a core."""
    time.sleep(settle)
    before, started = _cpu_seconds(pid), time.monotonic()
    time.sleep(window)
    return (_cpu_seconds(pid) - before) / (time.monotonic() - started)


@dataclass(frozen=True)
class Restart:
    """``syncd run`` restarted over a synced tree whose full pass is not due yet."""

    files: int
    ready: float  # seconds from launch to READY=1
    scan_s: float
    requests: dict[str, int]  # what the emulator answered up to READY


def _configured(fixture: SyncedTree, work: Path, emu: Emulator,
                listed_at: float | None = None) -> SyncdSetup:
    """A syncd setup over ``fixture``'s root with its journal prefilled."""
    setup = SyncdSetup(work, emu.base_url)
    setup.root.rmdir()
    # The daemon must see the fixture's real path: point its config at the fixture root.
    text = setup.config.read_text().replace(str(setup.root), str(fixture.root), 1)
    setup.config.write_text(text)
    fixture.journal(setup.journal, emu.base_url, listed_at)
    emu.reset_stats()
    return setup


def _scan_seconds(daemon: Daemon) -> float:
    scans = daemon.log_events("scanned")
    return float(scans[0]["duration_ms"]) / 1000 if scans else float("nan")


def _idle(ctx: Context, n: int) -> Idle:
    """Start ``syncd run`` over a synced tree of ``n`` files with its full pass due (it pages
    the whole listing before READY): READY, peak RSS, idle CPU."""
    fixture = synced_tree(ctx, n)
    work = ctx.workdir("memory-idle")
    settle, window = (3.0, 5.0) if ctx.quick else (10.0, 20.0)
    with Emulator(fixture.emulator_data) as emu:
        setup = _configured(fixture, work, emu)
        with Daemon(setup) as daemon:
            ready = daemon.wait_ready(1200)
            core = _idle_core(daemon.proc.pid, settle, window)
            peak = daemon.peak_kib()
            scan_s = _scan_seconds(daemon)
            stats = emu.stats()
        ctx.log(f"memory {n}: ready {ready:.1f} s, peak {peak} KiB, idle {core:.3f} core,"
                f" {stats}")
    watchmedo = Path(sys.executable).with_name("watchmedo")
    proc = subprocess.Popen([str(watchmedo), "shell-command", "-R", "-c", "true",
                             str(fixture.root)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        naive_core = _idle_core(proc.pid, settle, window)
        naive_peak = vm_kib(proc.pid, "VmHWM")
    finally:
        stop_process(proc, 10)
    ctx.cleanup("memory-idle")
    return Idle(len(fixture.tree), ready, scan_s, peak, core, window, naive_peak, naive_core)


def _restart(ctx: Context, n: int) -> Restart:
    """Restart ``syncd run`` over the synced tree of ``n`` files, its last full pass a minute
    old: one probe request, the start-up scan, READY."""
    fixture = synced_tree(ctx, n)
    work = ctx.workdir("memory-restart")
    with Emulator(fixture.emulator_data) as emu:
        setup = _configured(fixture, work, emu, listed_at=time.time() - 60)
        with Daemon(setup) as daemon:
            ready = daemon.wait_ready(1200)
            stats = emu.stats()
            scan_s = _scan_seconds(daemon)
        ctx.log(f"memory {n}: restart ready {ready:.1f} s, {stats}")
    ctx.cleanup("memory-restart")
    counts = {op: stats[op] for op in ("list", "upload", "get", "delete") if stats.get(op)}
    return Restart(len(fixture.tree), ready, scan_s, counts)


def _idle_rows(idle: Idle, restart: Restart, scale: bool) -> list[Row]:
    """READY, peak RSS and idle CPU of one idle run, with their targets for its size."""
    n = idle.files
    rss_target = 200 if scale else 100  # MB: at 1M files, at 100k
    ready_target = "<= 30 s" if scale else "(reported)"
    probe = restart.requests == {"list": 1}
    return [
        Row(f"4 scan: syncd run restart to READY, {n} files synced, full pass not due",
            f"{restart.ready:.2f} s (its scan() {restart.scan_s:.2f} s), {restart.requests}",
            f"full pass due: {idle.ready:.2f} s", f"{restart.ready:.2f} s",
            f"{ready_target}, 1 request", probe and (restart.ready <= 30 if scale else True),
            timed=scale),
        Row(f"4 scan: syncd run start-up to READY, {n} files synced, full pass due",
            f"{idle.ready:.2f} s (its scan() {idle.scan_s:.2f} s)", "-",
            f"{idle.ready:.2f} s", "(reported)", None, timed=scale),
        Row(f"5 memory: peak RSS, syncd run start-up and idle, {n} files synced",
            f"{idle.peak_kib / MB:.1f} MB", f"watchmedo idle {idle.naive_peak_kib / MB:.1f} MB",
            f"{idle.peak_kib / MB:.1f} MB", f"<= {rss_target} MB",
            idle.peak_kib * 1024 <= rss_target * 10**6, timed=True),
        Row(f"5 memory: idle CPU after READY, {n} files synced ({idle.window:.0f} s window)",
            f"{idle.core:.3f} core", f"watchmedo idle {idle.naive_core:.3f} core",
            f"{idle.core:.3f} core", f"<= {IDLE_CORE} core", idle.core <= IDLE_CORE, timed=True),
    ]


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
    """Scenario 5 and the start-up rows of scenario 4 (and the million-file ones with
    ``--scale``)."""
    sizes = [(ctx.sizes.scan_files, False)]
    if ctx.sizes.scale_files:
        sizes.append((ctx.sizes.scale_files, True))
    rows = []
    for n, scale in sizes:
        rows += _idle_rows(_idle(ctx, n), _restart(ctx, n), scale)
    before, after, curl_peak = _big(ctx)
    mb = ctx.sizes.big_bytes / 1e6
    rise = after - before
    return [
        *rows,
        Row(f"5 memory: peak RSS rise uploading one {mb:.0f} MB file",
            f"{before / MB:.1f} -> {after / MB:.1f} MB", f"curl peak {curl_peak / MB:.1f} MB",
            f"+{rise / MB:.1f} MB", "<= +32 MB", rise * 1024 <= 32 * 10**6, timed=True),
    ]
