"""Scenario 3, throughput without a rate limit: many small files and one big one.

Every client is a separate process and every run gets a fresh emulator process; times are wall
clock from launch to exit (interpreter start-up included for all), medians over the runs, and
runs are interleaved so drift on a shared machine hits every client alike.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import time
from pathlib import Path

from bench.context import Context
from bench.harness import API_KEY, HEADERS, PY, Emulator, SyncdSetup, big_file, make_tree, median
from bench.table import Row


def _cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as fh:
        fields = fh.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _upload_seconds(log: Path) -> float:
    """The longest "uploaded" duration in a syncd JSON log (intent to commit, one file)."""
    longest = 0.0
    for line in log.read_text(errors="replace").splitlines():
        if '"uploaded"' in line:
            with contextlib.suppress(ValueError):
                longest = max(longest, float(json.loads(line)["duration_ms"]) / 1000)
    return longest


def _timed(work: Path, kind: str, src: Path) -> tuple[float, float, float]:
    """One run of ``kind`` on a fresh emulator: (wall seconds, emulator CPU seconds, seconds
    of the longest single upload as the client timed it)."""
    with Emulator(work / "emulator") as emu:
        cpu0 = _cpu_seconds(emu.pid)
        if kind == "syncd":
            setup = SyncdSetup(work, emu.base_url, workers=4)
            setup.root.rmdir()
            subprocess.run(["cp", "-al", str(src), str(setup.root)], check=True)
            seconds, code = setup.sync_once()
            if code != 0:
                raise RuntimeError(f"syncd sync exited {code}")
            transfer = _upload_seconds(work / "sync.log")
        elif kind == "curl":
            args = ["curl", "-s", "-f", "-o", "/dev/null"]
            for key, value in {**HEADERS}.items():
                args += ["-H", f"{key}: {value}"]
            files = list(src.iterdir())
            args += ["-w", "%{time_total}", "-F", f"file=@{files[0]}",
                     f"{emu.base_url}/v1/files"]
            started = time.perf_counter()
            out = subprocess.run(args, check=True, timeout=600, capture_output=True, text=True)
            seconds = time.perf_counter() - started
            transfer = float(out.stdout.strip())
        else:
            env = {**os.environ, "ANTHROPIC_API_KEY": API_KEY}
            started = time.perf_counter()
            subprocess.run([PY, "-m", "bench.baselines", kind, emu.base_url, str(src),
                            "--workers", "4"], env=env, check=True, timeout=900,
                           stdout=subprocess.DEVNULL)
            seconds = time.perf_counter() - started
            transfer = 0.0
        return seconds, _cpu_seconds(emu.pid) - cpu0, transfer


def _series(ctx: Context, name: str, kinds: list[str], src: Path) -> dict[str, list[float]]:
    times: dict[str, list[float]] = {k: [] for k in kinds}
    cpu: dict[str, list[float]] = {k: [] for k in kinds}
    transfer: dict[str, list[float]] = {k: [] for k in kinds}
    for run in range(ctx.sizes.runs):
        for kind in kinds:
            seconds, emu_cpu, moved = _timed(ctx.workdir(f"{name}-{kind}"), kind, src)
            transfer[kind].append(moved)
            ctx.cleanup(f"{name}-{kind}")
            times[kind].append(seconds)
            cpu[kind].append(emu_cpu)
            ctx.log(f"throughput {name} run {run + 1}: {kind} {seconds:.2f} s, "
                    f"emulator CPU {emu_cpu:.2f} s")
    return {**times, **{f"{k}:cpu": v for k, v in cpu.items()},
            **{f"{k}:transfer": v for k, v in transfer.items()}}


def run(ctx: Context) -> list[Row]:
    """Scenario 3."""
    n, size = ctx.sizes.throughput_files, 8192
    src = ctx.workdir("throughput-src")
    make_tree(src, n, size)
    small = _series(ctx, "small", ["syncd", "httpx", "sdk"], src)
    ctx.cleanup("throughput-src")
    big_src = ctx.workdir("throughput-big")
    big_file(big_src / "big.bin", ctx.sizes.big_bytes)
    big = _series(ctx, "big", ["syncd", "curl"], big_src)
    ctx.cleanup("throughput-big")
    s, h, k = median(small["syncd"]), median(small["httpx"]), median(small["sdk"])
    bs, bc = median(big["syncd"]), median(big["curl"])
    ts, tc = median(big["syncd:transfer"]), median(big["curl:transfer"])
    mb = ctx.sizes.big_bytes / 1e6
    emu_busy = median(small["syncd:cpu"]) / s
    return [
        Row(f"3 throughput: {n} x 8 KB vs httpx pool (4 threads)",
            f"{s:.2f} s ({n / s:.0f}/s)", f"{h:.2f} s ({n / h:.0f}/s)",
            f"{h / s:.2f}x", ">= 0.8x", h / s >= 0.8, timed=True),
        Row(f"3 throughput: {n} x 8 KB vs SDK sequential",
            f"{s:.2f} s ({n / s:.0f}/s)", f"{k:.2f} s ({n / k:.0f}/s)",
            f"{k / s:.2f}x", ">= 4x", k / s >= 4.0, timed=True),
        Row(f"3 throughput: emulator CPU busy during syncd's {n}-file run",
            f"{median(small['syncd:cpu']):.2f} s CPU",
            f"httpx run {median(small['httpx:cpu']):.2f} s",
            f"{emu_busy:.0%} of one core", "(bound)", None),
        Row(f"3 throughput: one {mb:.0f} MB file vs curl -F, the upload itself",
            f"{ts:.2f} s ({mb / ts:.0f} MB/s)", f"{tc:.2f} s ({mb / tc:.0f} MB/s)",
            f"{tc / ts:.2f}x", ">= 0.7x", tc / ts >= 0.7, timed=True),
        Row(f"3 throughput: one {mb:.0f} MB file vs curl -F, launch to exit",
            f"{bs:.2f} s", f"{bc:.2f} s", f"{bc / bs:.2f}x",
            "(reported: + start-up, settle)", None),
    ]
