"""Scenario 6, latency: one file created -> listed by the emulator, files created one at a time.

The bench writes a file into the watched root, then polls the emulator's newest-first listing
every 5 ms until it shows the file. No rate limit. Beside it, the naive watcher (watchmedo
running curl on every event), which has no settle time to wait out.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

from bench.context import Context
from bench.economy import _naive_command
from bench.harness import Daemon, Emulator, SyncdSetup, percentile, stop_process
from bench.table import Row
from syncd.remote.names import encode_name

SETTLE = 0.5


def _created_to_listed(emu: Emulator, root: Path, n: int, name_of: str) -> list[float]:
    out = []
    for i in range(n):
        rel = f"f{i:03d}.txt"
        wanted = encode_name(rel) if name_of == "path" else rel
        with open(root / rel, "wb") as fh:
            fh.write(f"file {i}\n".encode() * 10)
        created = time.perf_counter()
        deadline = created + 30
        while True:
            page = emu.http.get("/v1/files", params={"limit": 1}).json()
            if page["data"] and page["data"][0]["filename"] == wanted:
                out.append(time.perf_counter() - created)
                break
            if time.perf_counter() > deadline:
                raise TimeoutError(f"{rel} was not listed within 30 s")
            time.sleep(0.005)
        time.sleep(0.1)
    return out


def run(ctx: Context) -> list[Row]:
    """Scenario 6."""
    n = ctx.sizes.latency_files
    work = ctx.workdir("latency")
    with Emulator(work / "syncd" / "emulator") as emu:
        setup = SyncdSetup(work / "syncd", emu.base_url, settle=SETTLE)
        with Daemon(setup) as daemon:
            daemon.wait_ready(60)
            time.sleep(0.5)
            ours = _created_to_listed(emu, setup.root, n, "path")
    with Emulator(work / "naive" / "emulator") as emu:
        root = work / "naive" / "root"
        root.mkdir()
        watchmedo = Path(sys.executable).with_name("watchmedo")
        proc = subprocess.Popen(
            [str(watchmedo), "shell-command", "-R", "-D", "-c", _naive_command(emu.base_url),
             str(root)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            time.sleep(1.0)
            naive = _created_to_listed(emu, root, n, "base")
        finally:
            stop_process(proc, 10)
    ctx.cleanup("latency")
    p50, p95 = percentile(ours, 0.5), percentile(ours, 0.95)
    n50, n95 = percentile(naive, 0.5), percentile(naive, 0.95)
    ms = 1000
    return [
        Row(f"6 latency: created -> listed, p50, {n} files, settle {SETTLE} s",
            f"{p50 * ms:.0f} ms", f"naive watcher {n50 * ms:.0f} ms",
            f"settle + {(p50 - SETTLE) * ms:.0f} ms", "<= settle + 150 ms",
            p50 <= SETTLE + 0.150, timed=True),
        Row(f"6 latency: created -> listed, p95, {n} files, settle {SETTLE} s",
            f"{p95 * ms:.0f} ms", f"naive watcher {n95 * ms:.0f} ms",
            f"settle + {(p95 - SETTLE) * ms:.0f} ms", "<= settle + 500 ms",
            p95 <= SETTLE + 0.500, timed=True),
    ]
