"""Scenario 3, throughput without a rate limit: many small files and one big one.

Every client is a separate process and every run gets a fresh emulator process; times are wall
clock from launch to exit (interpreter start-up included for all), and runs are interleaved so
drift on a shared machine hits every client alike. A client's CPU is its own process's (user +
system, from the kernel's accounting of the reaped child), never the emulator's. The small-file
rows compare syncd with the raw httpx pool run by run and report the median ratio over at
least 5 runs with its range (a full run; a quick run does one).
"""

from __future__ import annotations

import contextlib
import json
import os
import resource
import subprocess
import time
from dataclasses import dataclass
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


MIN_RUNS = 5  # a full run's small-file rows: medians of at least this many interleaved runs
CPU_TARGET = 1.3  # syncd's CPU per file at most this many times the raw pool's
RATIO_TARGET = 0.85  # syncd's throughput at least this share of the raw pool's


@dataclass(frozen=True)
class Run:
    """One client's run: wall seconds, its own CPU seconds, the emulator's CPU seconds, and the
    longest single upload as the client timed it (0 when it does not say)."""

    wall: float
    cpu: float
    emu_cpu: float
    transfer: float


def _children_cpu() -> float:
    """User + system seconds of every reaped child process of this one, so far."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _client(work: Path, kind: str, src: Path, emu: Emulator) -> tuple[float, float]:
    """Run client ``kind`` against ``emu`` once: (wall seconds, transfer seconds)."""
    if kind == "syncd":
        setup = SyncdSetup(work, emu.base_url, workers=4)
        seconds, code = setup.sync_once()
        if code != 0:
            raise RuntimeError(f"syncd sync exited {code}")
        return seconds, _upload_seconds(work / "sync.log")
    if kind == "curl":
        args = ["curl", "-s", "-f", "-o", "/dev/null"]
        for key, value in {**HEADERS}.items():
            args += ["-H", f"{key}: {value}"]
        files = list(src.iterdir())
        args += ["-w", "%{time_total}", "-F", f"file=@{files[0]}", f"{emu.base_url}/v1/files"]
        started = time.perf_counter()
        out = subprocess.run(args, check=True, timeout=600, capture_output=True, text=True)
        return time.perf_counter() - started, float(out.stdout.strip())
    env = {**os.environ, "ANTHROPIC_API_KEY": API_KEY}
    started = time.perf_counter()
    subprocess.run([PY, "-m", "bench.baselines", kind, emu.base_url, str(src),
                    "--workers", "4"], env=env, check=True, timeout=900,
                   stdout=subprocess.DEVNULL)
    return time.perf_counter() - started, 0.0


def _timed(work: Path, kind: str, src: Path) -> Run:
    """One run of ``kind`` on a fresh emulator. The client's CPU is what the kernel accounted
    to the children reaped while it ran: the client alone (the emulator is reaped later)."""
    with Emulator(work / "emulator") as emu:
        if kind == "syncd":  # SyncdSetup's root: a hard-linked copy, made before the clock starts
            subprocess.run(["cp", "-al", str(src), str(work / "root")], check=True)
        emu_cpu0, cpu0 = _cpu_seconds(emu.pid), _children_cpu()
        seconds, transfer = _client(work, kind, src, emu)
        cpu = _children_cpu() - cpu0
        return Run(seconds, cpu, _cpu_seconds(emu.pid) - emu_cpu0, transfer)


def _series(
    ctx: Context, name: str, kinds: list[str], src: Path, runs: int
) -> dict[str, list[Run]]:
    out: dict[str, list[Run]] = {k: [] for k in kinds}
    for run in range(runs):
        for kind in kinds:
            result = _timed(ctx.workdir(f"{name}-{kind}"), kind, src)
            ctx.cleanup(f"{name}-{kind}")
            out[kind].append(result)
            ctx.log(f"throughput {name} run {run + 1}/{runs}: {kind} {result.wall:.2f} s, "
                    f"CPU {result.cpu:.2f} s, emulator CPU {result.emu_cpu:.2f} s")
    return out


def _spread(values: list[float], fmt: str) -> str:
    """The median, and the range when there is more than one value."""
    text = format(median(values), fmt)
    if len(values) > 1:
        text += f" ({format(min(values), fmt)}-{format(max(values), fmt)})"
    return text


def _small_rows(n: int, small: dict[str, list[Run]]) -> list[Row]:
    """Throughput and CPU per file against the raw pool (per-run ratios), and the SDK."""
    syncd, httpx, sdk = small["syncd"], small["httpx"], small["sdk"]
    walls = [r.wall for r in syncd]
    speed = [h.wall / r.wall for r, h in zip(syncd, httpx, strict=True)]
    cpu = [r.cpu / h.cpu for r, h in zip(syncd, httpx, strict=True)]
    ms = [1000 * r.cpu / n for r in syncd]
    base_ms = [1000 * h.cpu / n for h in httpx]
    s, k = median(walls), median([r.wall for r in sdk])
    return [
        Row(f"3 throughput: {n} x 8 KB vs httpx pool (4 threads), wall",
            f"{_spread(walls, '.2f')} s ({n / s:.0f}/s)",
            f"{_spread([h.wall for h in httpx], '.2f')} s",
            f"{_spread(speed, '.2f')}x", f">= {RATIO_TARGET}x",
            median(speed) >= RATIO_TARGET, timed=True),
        Row(f"3 throughput: {n} x 8 KB, client CPU per file vs httpx pool",
            f"{_spread(ms, '.2f')} ms", f"{_spread(base_ms, '.2f')} ms",
            f"{_spread(cpu, '.2f')}x", f"<= {CPU_TARGET}x", median(cpu) <= CPU_TARGET,
            timed=True),
        Row(f"3 throughput: {n} x 8 KB vs SDK sequential",
            f"{s:.2f} s ({n / s:.0f}/s)", f"{k:.2f} s ({n / k:.0f}/s)",
            f"{k / s:.2f}x", ">= 4x", k / s >= 4.0, timed=True),
        Row(f"3 throughput: emulator CPU busy during syncd's {n}-file run",
            f"{median([r.emu_cpu for r in syncd]):.2f} s CPU",
            f"httpx run {median([h.emu_cpu for h in httpx]):.2f} s",
            f"{median([r.emu_cpu for r in syncd]) / s:.0%} of one core", "(bound)", None),
    ]


def run(ctx: Context) -> list[Row]:
    """Scenario 3."""
    n, size = ctx.sizes.throughput_files, 8192
    runs = ctx.sizes.runs if ctx.quick else max(MIN_RUNS, ctx.sizes.runs)
    src = ctx.workdir("throughput-src")
    make_tree(src, n, size)
    small = _series(ctx, "small", ["syncd", "httpx", "sdk"], src, runs)
    ctx.cleanup("throughput-src")
    big_src = ctx.workdir("throughput-big")
    big_file(big_src / "big.bin", ctx.sizes.big_bytes)
    big = _series(ctx, "big", ["syncd", "curl"], big_src, ctx.sizes.runs)
    ctx.cleanup("throughput-big")
    bs, bc = median([r.wall for r in big["syncd"]]), median([r.wall for r in big["curl"]])
    ts = median([r.transfer for r in big["syncd"]])
    tc = median([r.transfer for r in big["curl"]])
    mb = ctx.sizes.big_bytes / 1e6
    return [
        *_small_rows(n, small),
        Row(f"3 throughput: one {mb:.0f} MB file vs curl -F, the upload itself",
            f"{ts:.2f} s ({mb / ts:.0f} MB/s)", f"{tc:.2f} s ({mb / tc:.0f} MB/s)",
            f"{tc / ts:.2f}x", ">= 0.7x", tc / ts >= 0.7, timed=True),
        Row(f"3 throughput: one {mb:.0f} MB file vs curl -F, launch to exit",
            f"{bs:.2f} s", f"{bc:.2f} s", f"{bc / bs:.2f}x",
            "(reported: + start-up, settle)", None),
    ]
