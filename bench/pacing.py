"""Scenario 2, pacing: the emulator allows ``rpm`` requests a minute; how close does a first
sync of N new files come to the theoretical minimum (requests / rate), and how many 429s does
it draw? Beside it, the official SDK in a sequential loop with its default retries (2, honouring
retry-after), on the same limit."""

from __future__ import annotations

import os
import subprocess
import time

from bench.context import Context
from bench.harness import API_KEY, PY, Emulator, SyncdSetup, make_tree, requests_total
from bench.table import Row


def _status_429(stats: dict[str, int]) -> int:
    return sum(v for k, v in stats.items() if k.startswith("status:") and k.endswith(":429"))


def run(ctx: Context) -> list[Row]:
    """Scenario 2."""
    n, rpm = ctx.sizes.pacing_files, ctx.sizes.pacing_rpm
    work = ctx.workdir("pacing")
    src = work / "src"
    make_tree(src, n, 1024)
    with Emulator(work / "syncd" / "emulator", rpm=rpm) as emu:
        setup = SyncdSetup(work / "syncd", emu.base_url, rpm=rpm, burst=5)
        setup.root.rmdir()
        subprocess.run(["cp", "-al", str(src), str(setup.root)], check=True)
        seconds, code = setup.sync_once(timeout=600)
        stats = emu.stats()
    ctx.log(f"pacing: syncd {seconds:.1f} s, exit {code}, {stats}")
    with Emulator(work / "sdk" / "emulator", rpm=rpm) as emu:
        env = {**os.environ, "ANTHROPIC_API_KEY": API_KEY}
        started = time.perf_counter()
        subprocess.run([PY, "-m", "bench.baselines", "sdk", emu.base_url, str(src),
                        "--max-retries", "2"], env=env, check=True, timeout=900,
                       stdout=subprocess.DEVNULL)
        sdk_seconds = time.perf_counter() - started
        sdk_stats = emu.stats()
    ctx.cleanup("pacing")
    sent = requests_total(stats)
    useful = sent - _status_429(stats)
    minimum = useful / (rpm / 60.0)
    share = _status_429(stats) / max(1, sent)
    sdk_sent = requests_total(sdk_stats)
    sdk_share = _status_429(sdk_stats) / max(1, sdk_sent)
    sdk_minimum = (sdk_sent - _status_429(sdk_stats)) / (rpm / 60.0)
    return [
        Row(f"2 pacing: {n} new files at {rpm}/min, time vs minimum",
            f"{seconds:.1f} s (min {minimum:.1f} s)",
            f"SDK loop {sdk_seconds:.1f} s (min {sdk_minimum:.1f} s)",
            f"{seconds / minimum:.3f}x minimum", "<= 1.05x", code == 0 and
            seconds <= minimum * 1.05, timed=True),
        Row(f"2 pacing: {n} new files at {rpm}/min, 429 share",
            f"{_status_429(stats)}/{sent} = {share:.1%}",
            f"SDK loop {_status_429(sdk_stats)}/{sdk_sent} = {sdk_share:.1%}",
            f"{share:.2%}", "<= 1%", share <= 0.01, timed=True),
    ]
