"""Scenario 2, pacing: the emulator allows ``rpm`` requests a minute; how close does a first
sync of N new files come to the theoretical minimum (requests / rate), and how many 429s does
it draw? Beside it, the official SDK in a sequential loop with its default retries (2, honouring
retry-after), on the same limit.

Learned pacing (issue 13): the emulator allows LEARN_RPM a minute and announces it in
``anthropic-ratelimit-requests-*`` headers. One ``syncd run`` leaves ``requests_per_minute``
unset (it should pace to what is announced), one sets 90 (a cap, by design), and one is set to
twice the limit against an emulator that announces nothing (AIMD learns from 429s). The three
run side by side; after READY and a warm-up, the emulators count every request for one window.
The rate is the requests answered (not 429) a minute, as a share of LEARN_RPM."""

from __future__ import annotations

import contextlib
import os
import subprocess
import time

from bench.context import Context
from bench.harness import (
    API_KEY,
    PY,
    Daemon,
    Emulator,
    SyncdSetup,
    make_tree,
    requests_total,
)
from bench.table import Row


def _status_429(stats: dict[str, int]) -> int:
    return sum(v for k, v in stats.items() if k.startswith("status:") and k.endswith(":429"))


LEARN_RPM = 300
# (name, emulator announces, requests_per_minute set in the config)
LEARN_CASES = (("unset", True, None), ("set 90", True, 90.0), ("set 600", False, 600.0))


def run(ctx: Context) -> list[Row]:
    """Scenario 2, then the learned-pacing rows."""
    return _first_sync(ctx) + _learned(ctx)


def _learned(ctx: Context) -> list[Row]:
    """Learned pacing: requests answered a minute and the 429 share, per case, in one window."""
    window, warmup, n = (8.0, 3.0, 80) if ctx.quick else (45.0, 5.0, 500)
    work = ctx.workdir("learned")
    make_tree(work / "src", n, 256)
    counts: dict[str, tuple[int, int]] = {}
    with contextlib.ExitStack() as stack:
        cases = []
        for name, headers, rpm in LEARN_CASES:
            case = work / name.replace(" ", "-")
            emu = stack.enter_context(Emulator(case / "emulator", rpm=LEARN_RPM,
                                               ratelimit_headers=headers))
            setup = SyncdSetup(case / "syncd", emu.base_url, rpm=rpm, burst=5)
            setup.root.rmdir()
            subprocess.run(["cp", "-al", str(work / "src"), str(setup.root)], check=True)
            cases.append((name, emu, stack.enter_context(Daemon(setup))))
        for _name, _emu, daemon in cases:
            daemon.wait_ready(timeout=120)
        time.sleep(warmup)
        for _name, emu, _daemon in cases:
            emu.reset_stats()
        time.sleep(window)
        for name, emu, _daemon in cases:
            stats = emu.stats()
            counts[name] = (requests_total(stats), _status_429(stats))
    ctx.log(f"learned pacing: {window:.0f} s window at {LEARN_RPM}/min: {counts}")
    ctx.cleanup("learned")
    return [_learned_row(name, headers, *counts[name], window)
            for name, headers, _rpm in LEARN_CASES]


def _learned_row(name: str, headers: bool, sent: int, limited: int, window: float) -> Row:
    rate = (sent - limited) / window * 60.0
    share, limited_share = rate / LEARN_RPM, limited / max(1, sent)
    scenario = (f"2 learned pacing: limit {LEARN_RPM}/min "
                f"{'announced' if headers else 'unannounced (AIMD)'}, requests_per_minute {name}")
    value = f"{share:.1%} of {LEARN_RPM}/min, 429s {limited}/{sent} = {limited_share:.1%}"
    if name == "unset":
        return Row(scenario, f"{rate:.0f}/min", "before: 90/min = 30.0%", value,
                   ">= 90%, 429s <= 2%", share >= 0.90 and limited_share <= 0.02, timed=True)
    target = "90/min: the cap, by design" if headers else "-"
    return Row(scenario, f"{rate:.0f}/min", "-", value, target)


def _first_sync(ctx: Context) -> list[Row]:
    """Scenario 2: a first sync of N new files at a limit syncd is configured for."""
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
