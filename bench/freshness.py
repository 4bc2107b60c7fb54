"""Scenario 9, freshness: an edit made during a big first sync goes live within seconds.

The emulator allows 600 requests a minute; ``syncd run`` (paced at 600/min) starts on a folder
of 2,000 new files (the backlog: 200 s of uploads) and one file already synced. 10 s after
READY the bench modifies the synced file and creates a new one, then waits until the emulator
lists each (its ``created_at``, the moment the upload was stored, minus the moment of the
write). p95 over 5 runs. Meanwhile the backlog's own uploads, counted from the emulator's
records over the 20 s after the edits, give its rate as a share of the limit. Beside it, the
same run with ``backlog_order = "path"`` and ``lanes = false``: the queue before lanes, where
the edits wait behind the whole backlog (one run: each takes minutes).
"""

from __future__ import annotations

import os
import subprocess
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from bench.context import Context
from bench.harness import (
    Daemon,
    Emulator,
    SyncdSetup,
    make_tree,
    percentile,
    prefill_emulator,
    prefill_journal,
    wait_until,
)
from bench.table import Row
from syncd.remote.names import encode_name

RPM = 600
SETTLE = 0.5
EDITED, CREATED = "live/edited.txt", "live/created.txt"
LANES_ON = {"lanes": True, "backlog_order": "newest"}
LANES_OFF = {"lanes": False, "backlog_order": "path"}


@dataclass(frozen=True)
class Plan:
    """How big a run is (``--quick``: a smoke run of seconds)."""

    backlog: int = 2000
    edit_after: float = 10.0
    window: float = 20.0
    runs: int = 5
    fifo_runs: int = 1

    @classmethod
    def for_mode(cls, quick: bool) -> Plan:
        return cls(150, 3.0, 5.0, 1, 1) if quick else cls()


@dataclass(frozen=True)
class Outcome:
    """One run: seconds from write to listed for each edit; the backlog's share of the limit."""

    edited: float
    created: float
    backlog_share: float


def _stored_at(record: dict[str, object]) -> float:
    return datetime.fromisoformat(str(record["created_at"]).replace("Z", "+00:00")).timestamp()


def _synced_file(root: Path) -> tuple[str, os.stat_result, bytes]:
    """The one file already synced (an hour old, so never racy)."""
    data = b"version 1\n" * 20
    path = root / EDITED
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    past = time.time_ns() - 3600 * 10**9
    os.utime(path, ns=(past, past))
    return EDITED, os.stat(path), data


def _one_run(work: Path, src: Path, plan: Plan, sync: dict[str, object]) -> Outcome:
    synced = _synced_file(work / "root")
    ids = prefill_emulator(work / "emulator", [synced])
    with Emulator(work / "emulator", rpm=RPM) as emu:
        setup = SyncdSetup(work, emu.base_url, rpm=RPM, burst=5, settle=SETTLE,
                           extra_sync=sync)
        prefill_journal(setup.journal, setup.root, emu.base_url, [synced], ids,
                        listed_at=time.time())
        subprocess.run(["cp", "-al", f"{src}/.", str(setup.root)], check=True)
        with Daemon(setup) as daemon:
            daemon.wait_ready(120)
            return _edit_and_measure(emu, setup.root, plan)


def _edit_and_measure(emu: Emulator, root: Path, plan: Plan) -> Outcome:
    """Wait ``edit_after``, make both edits, wait until both are listed and the window is
    over; the outcome from the emulator's records."""
    time.sleep(plan.edit_after)
    edited_at = time.time()
    (root / EDITED).write_bytes(b"version 2\n" * 20)
    created_at = time.time()
    (root / CREATED).write_bytes(b"new\n" * 20)
    names = {encode_name(EDITED), encode_name(CREATED)}
    found: dict[str, float] = {}

    def listed() -> bool:
        for f in emu.files():
            if f["filename"] in names and _stored_at(f) >= edited_at:
                found[f["filename"]] = _stored_at(f)
        return len(found) == 2

    wait_until(listed, 900, "the edits to be listed", interval=0.25)
    end = max(time.time(), edited_at + plan.window)
    time.sleep(max(0.0, end - time.time()))
    backlog = sum(1 for f in emu.files()
                  if edited_at <= _stored_at(f) <= end and f["filename"] not in names)
    rate = backlog / (end - edited_at) * 60
    return Outcome(found[encode_name(EDITED)] - edited_at,
                   found[encode_name(CREATED)] - created_at, rate / RPM)


def _runs(ctx: Context, label: str, src: Path, plan: Plan, runs: int,
          sync: dict[str, object]) -> list[Outcome]:
    out = []
    for i in range(runs):
        name = f"freshness-{label}-{i}"
        outcome = _one_run(ctx.workdir(name), src, plan, sync)
        ctx.log(f"freshness: {label} run {i + 1}/{runs}: {outcome}")
        ctx.cleanup(name)
        out.append(outcome)
    return out


def run(ctx: Context) -> list[Row]:
    """Scenario 9."""
    plan = Plan.for_mode(ctx.quick)
    src = ctx.workdir("freshness-src") / "backlog"
    make_tree(src, plan.backlog, 1024)
    ours = _runs(ctx, "lanes", src, plan, plan.runs, LANES_ON)
    fifo = _runs(ctx, "fifo", src, plan, plan.fifo_runs, LANES_OFF)
    ctx.cleanup("freshness-src")
    what = f"{plan.backlog}-file backlog at {RPM}/min, p95 of {plan.runs}, settle {SETTLE} s"
    rows = []
    for label, pick in (("modified synced file", lambda o: o.edited),
                        ("new file", lambda o: o.created)):
        p95 = percentile([pick(o) for o in ours], 0.95)
        base = percentile([pick(o) for o in fifo], 0.95)
        rows.append(Row(
            f"9 freshness: {label} -> listed, {what}", f"{p95:.1f} s",
            f"FIFO, path order (lanes off): {base:.1f} s", f"settle + {p95 - SETTLE:.1f} s",
            "<= settle + 3 s", p95 <= SETTLE + 3.0, timed=True))
    share = min(o.backlog_share for o in ours)
    base_share = min(o.backlog_share for o in fifo)
    rows.append(Row(
        f"9 freshness: backlog rate while the edits go, lowest of {plan.runs} runs",
        f"{share * RPM:.0f}/min", f"FIFO: {base_share * RPM:.0f}/min",
        f"{share:.1%} of {RPM}/min", ">= 95%", share >= 0.95, timed=True))
    return rows
