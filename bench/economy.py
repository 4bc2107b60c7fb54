"""Scenario 1, request economy: requests counted at the emulator for each logical change.

syncd runs as a daemon (``syncd run``, real inotify watcher, settle 0.3 s) and each change is
made to a synced tree; the same changes are then made under a naive watcher (``watchmedo
shell-command`` running curl for every created, modified or moved-to event, what a user writes
in five minutes). The restart case starts from a journal and an emulator prefilled in bulk.
"""

from __future__ import annotations

import hashlib
import math
import os
import shlex
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from bench import fullpass
from bench.context import Context
from bench.editors import EDITORS
from bench.harness import (
    API_KEY,
    RECONCILE_INTERVAL,
    Daemon,
    Emulator,
    SyncdSetup,
    make_tree,
    prefill_emulator,
    prefill_journal,
    requests_total,
    stop_process,
    wait_until,
)
from bench.table import Row
from syncd.local.ignore import IgnoreRules
from syncd.local.scan import walk
from syncd.remote.names import decode_name

SETTLE = 0.3
Step = tuple[str, str, Callable[[Path], None], int]  # name, target file, action, expected


def _text(i: int, tag: str = "v1") -> bytes:
    return f"{tag} file {i}\n".encode() + b"some words on a line of text\n" * 30


def _local(root: Path) -> dict[str, list[str]]:
    rules = IgnoreRules.load(root)
    return {
        item[0]: [hashlib.sha256((root / item[0]).read_bytes()).hexdigest()]
        for item in walk(root, rules, False, lambda *_: None)
        if isinstance(item, tuple)
    }


def _wait_quiet(emu: Emulator, at_least: float, quiet: float, timeout: float = 60.0) -> None:
    """Wait until ``at_least`` s have passed and no request arrived for ``quiet`` s."""
    started = time.monotonic()
    last, changed = requests_total(emu.stats()), time.monotonic()
    while True:
        time.sleep(0.1)
        now = time.monotonic()
        total = requests_total(emu.stats())
        if total != last:
            last, changed = total, now
        if now - started >= at_least and now - changed >= quiet:
            return
        if now - started > timeout:
            raise TimeoutError("requests did not stop")


def _steps() -> list[Step]:
    """The changes, each on its own file in its own directory (so temporaries are attributed)."""
    def rel(k: int) -> str:
        return f"s{k:02d}/note.txt"

    def rewrite(k: int) -> Callable[[Path], None]:
        return lambda r: (r / rel(k)).write_bytes(_text(k, "v2"))

    steps: list[Step] = [
        ("modify", rel(0), rewrite(0), 2),
        ("touch", rel(1), lambda r: os.utime(r / rel(1)), 0),
        ("delete", rel(2), lambda r: (r / rel(2)).unlink(), 1),
    ]
    for k, (name, save) in enumerate(EDITORS.items(), start=3):
        steps.append((f"editor save: {name}", rel(k),
                      lambda r, k=k, save=save: save(r / rel(k), _text(k, "v2")), 2))
    return steps


def _tree(root: Path, n: int) -> None:
    """``n`` text files: one per step directory, the rest in d000, d001, ..."""
    steps = _steps()
    for i in range(n):
        rel = steps[i][1] if i < len(steps) else f"d{i // 50:03d}/f{i:04d}.txt"
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(_text(i))


def _per_step(before: list[dict[str, object]], after: list[dict[str, object]],
              steps: list[Step], name_of: Callable[[str], str]) -> dict[str, tuple[int, int]]:
    """{step: (uploads + deletes, temp uploads)} from two snapshots of every file listed
    (deleted files linger for an hour, so both show every file ever uploaded)."""
    was_live = {f["id"] for f in before if not f["deleted"]}
    known = {f["id"] for f in before}
    out = {}
    for name, target, _action, _expected in steps:
        folder = target.rsplit("/", 1)[0] + "/"
        uploads = temps = deletes = 0
        for f in after:
            path = decode_name(str(f["filename"])) or str(f["filename"])
            if not path.startswith(folder):
                continue
            if f["id"] not in known:
                uploads += 1
                temps += path != name_of(target)
            if f["deleted"] and (f["id"] in was_live or f["id"] not in known):
                deletes += 1
        out[name] = (uploads + deletes, temps)
    return out


def _new_uploads(emu: Emulator, before: set[str]) -> list[str]:
    """Decoded names of the files uploaded since ``before`` (a set of ids)."""
    return [decode_name(f["filename"]) or f["filename"]
            for f in emu.files() if f["id"] not in before and not f["foreign"]]


def _syncd_side(ctx: Context, work: Path) -> tuple[dict[str, int], dict[str, tuple[int, int]],
                                                    dict[str, int]]:
    """(initial sync counts, {step: (requests, temp uploads)}, counts of all steps) for syncd.

    Every change is made at once, each to its own directory; requests are attributed per
    directory from the emulator's file records, and the totals are checked against its counters.
    """
    with Emulator(work / "emulator", linger_seconds=3600) as emu:
        setup = SyncdSetup(work, emu.base_url, settle=SETTLE)
        _tree(setup.root, ctx.sizes.economy_files)
        with Daemon(setup) as daemon:
            daemon.wait_ready(60)
            wait_until(lambda: emu.live() == _local(setup.root), 120, "initial sync")
            _wait_quiet(emu, 1.0, 1.0)
            initial = emu.stats()
            emu.reset_stats()
            before = emu.files()
            steps = _steps()
            for _name, _target, action, _expected in steps:
                action(setup.root)
            wait_until(lambda: emu.live() == _local(setup.root), 60, "converged after changes")
            _wait_quiet(emu, SETTLE + 2.0, 1.5)
            results = _per_step(before, emu.files(), steps, lambda t: t)
            return initial, results, emu.stats()


def _naive_command(base_url: str) -> str:
    headers = " ".join(
        f"-H {shlex.quote(h)}" for h in (f"x-api-key: {API_KEY}", "anthropic-version: 2023-06-01",
                                         "anthropic-beta: files-api-2025-04-14"))
    return (
        'case "${watch_event_type}" in created|modified) f="${watch_src_path}";; '
        'moved) f="${watch_dest_path}";; *) exit 0;; esac; [ -f "$f" ] || exit 0; '
        f'curl -s -o /dev/null {headers} -F "file=@$f" {base_url}/v1/files'
    )


def _naive_side(ctx: Context, work: Path) -> tuple[int, dict[str, tuple[int, int]]]:
    """(initial uploads, {step: (requests, temp uploads)}) for the naive watcher."""
    n = ctx.sizes.economy_files
    root = work / "root"
    root.mkdir(parents=True)
    watchmedo = Path(sys.executable).with_name("watchmedo")
    with Emulator(work / "emulator", linger_seconds=3600) as emu:
        log = open(work / "watchmedo.log", "wb")  # noqa: SIM115
        proc = subprocess.Popen(
            [str(watchmedo), "shell-command", "-R", "-D", "-c", _naive_command(emu.base_url),
             str(root)], stdout=log, stderr=log)
        try:
            time.sleep(1.0)  # the watches are in place
            _tree(root, n)
            _wait_quiet(emu, 1.5, 1.0, timeout=300)
            initial = emu.stats()["upload"]
            results: dict[str, tuple[int, int]] = {}
            for step in _steps():
                emu.reset_stats()
                before = {f["id"] for f in emu.files()}
                step[2](root)
                _wait_quiet(emu, 0.6, 0.5)
                # curl names an upload after the file's base name only
                temps = [p for p in _new_uploads(emu, before) if p != Path(step[1]).name]
                results[step[0]] = (requests_total(emu.stats()), len(temps))
        finally:
            stop_process(proc, 10)
            log.close()
    return initial, results


def _restart(ctx: Context, work: Path) -> dict[bool, tuple[dict[str, int], float, int]]:
    """`syncd sync` over an already synced tree, its last full pass a minute old (not due) and
    an interval old (due): {due: (counts, seconds, exit code)}."""
    n = ctx.sizes.restart_files
    root = work / "root"
    tree = make_tree(root, n, 256, old_mtime=True)
    ids = prefill_emulator(work / "emulator", tree)
    results = {}
    with Emulator(work / "emulator") as emu:
        setup = SyncdSetup(work, emu.base_url)
        for due in (False, True):
            age = RECONCILE_INTERVAL + 60 if due else 60
            for suffix in ("", "-wal", "-shm"):
                setup.journal.with_name(setup.journal.name + suffix).unlink(missing_ok=True)
            prefill_journal(setup.journal, setup.root, emu.base_url, tree, ids,
                            listed_at=time.time() - age)
            emu.reset_stats()
            seconds, code = setup.sync_once(timeout=600)
            results[due] = (emu.stats(), seconds, code)
    return results


def run(ctx: Context) -> list[Row]:
    """Scenario 1."""
    n = ctx.sizes.economy_files
    pages = math.ceil(n / 1000)
    initial, steps, all_steps = _syncd_side(ctx, ctx.workdir("economy-syncd"))
    ctx.cleanup("economy-syncd")
    ctx.log("economy: naive watcher")
    naive_initial, naive = _naive_side(ctx, ctx.workdir("economy-naive"))
    ctx.cleanup("economy-naive")
    rows = []
    got = initial["upload"] + initial["list"]
    others = requests_total(initial) - got
    rows.append(Row(
        f"1 economy: initial sync, {n} files", f"{initial['upload']} up + {initial['list']} list",
        f"{naive_initial} up (naive watcher, files copied in)", f"{got} requests",
        f"= {n} + {pages}",
        initial["upload"] == n and initial["list"] <= pages and others == 0))
    expected_total = 0
    for name, _target, _action, expected in _steps():
        count, temps = steps[name]
        expected_total += expected
        naive_count, naive_temps = naive[name]
        # The naive watcher never deletes: each upload leaves one extra remote copy (the old
        # version or a temporary), and a deleted file's copy stays.
        junk = 1 if name == "delete" else naive_count
        rows.append(Row(
            f"1 economy: {name}", f"{count} req, {temps} temp up",
            f"{naive_count} req, {naive_temps} temp up",
            f"naive leaves {junk} extra cop{'y' if junk == 1 else 'ies'}",
            f"= {expected} req, 0 temp", count == expected and temps == 0))
    total = requests_total(all_steps)
    rows.append(Row(
        "1 economy: all changes above, emulator counters", f"{total} req",
        "-", f"{all_steps['list'] + all_steps['get']} list/get", f"= {expected_total} req",
        total == expected_total))
    ctx.log("economy: restart")
    restarts = _restart(ctx, ctx.workdir("economy-restart"))
    ctx.cleanup("economy-restart")
    files = ctx.sizes.restart_files
    pages = math.ceil(files / 1000)
    for due, (counts, seconds, code) in restarts.items():
        extra = requests_total(counts) - counts["list"]
        expected = pages if due else 1
        rows.append(Row(
            f"1 economy: restart, nothing changed, {files} files, full pass "
            + ("due (every list page)" if due else "not due (one probe)"),
            f"{counts['list']} list + {extra} other ({seconds:.1f} s)",
            "0 (naive: no state, misses offline changes)" if not due else
            f"before issue 13: {pages} at every start", f"{requests_total(counts)} requests",
            f"= {expected} request{'s' if expected > 1 else ''}",
            code == 0 and counts["list"] == expected and extra == 0))
    return rows + fullpass.run(ctx)
