"""``python -m bench [--quick] [--scale] [--only NAMES] [--write-doc docs/BENCHMARKS.md]``.

Runs every scenario against emulators started on loopback, prints one table (scenario, syncd,
baseline, ratio/value, target, pass/miss) and optionally rewrites the generated section of the
benchmarks document. Exit code 0 when every scenario ran (a missed target is reported, not an
error), 1 when a scenario failed to run.
"""

from __future__ import annotations

import argparse
import compileall
import shlex
import shutil
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from pathlib import Path

import syncd
from bench import (
    economy,
    firstsync,
    folders,
    freshness,
    latency,
    memory,
    pacing,
    scan,
    throughput,
    watcher,
)
from bench.context import Context
from bench.table import Row, doc_section, machine, render_text, write_doc

SCENARIOS: dict[str, Callable[[Context], list[Row]]] = {
    "economy": economy.run,
    "pacing": pacing.run,
    "throughput": throughput.run,
    "scan": scan.run,
    "memory": memory.run,
    "latency": latency.run,
    "watcher": watcher.run,
    "firstsync": firstsync.run,
    "freshness": freshness.run,
    "folders": folders.run,
}


def compile_bytecode() -> None:
    """Give every client this bench launches compiled bytecode, as an installed package has.
    Where PYTHONDONTWRITEBYTECODE is set (it is on some CI machines) an editable checkout would
    otherwise compile each of syncd's ~90 modules again at every launch: about 0.2 s of CPU a
    run that no installed syncd pays, and that the baselines (site-packages) never pay."""
    for package in (Path(syncd.__file__).parent, Path(__file__).parent):
        compileall.compile_dir(package, quiet=1)


def main(argv: list[str] | None = None) -> int:
    """Run the scenarios; print the table."""
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help="small N: a smoke test (seconds, not minutes)")
    parser.add_argument("--scale", action="store_true",
                        help="add the million-file rows (tens of minutes; 30,000 with --quick)")
    parser.add_argument("--only", default="", metavar="NAMES",
                        help=f"comma-separated subset of: {', '.join(SCENARIOS)}")
    parser.add_argument("--write-doc", type=Path, metavar="FILE",
                        help="also write the table, machine and command into FILE")
    parser.add_argument("--scratch", type=Path, default=None,
                        help="where trees and emulator data go (default: a temp dir)")
    args = parser.parse_args(argv)
    names = [n.strip() for n in args.only.split(",") if n.strip()] or list(SCENARIOS)
    unknown = [n for n in names if n not in SCENARIOS]
    if unknown:
        parser.error(f"unknown scenario(s): {', '.join(unknown)}")
    info = machine()
    compile_bytecode()
    scratch = Path(tempfile.mkdtemp(prefix="syncd-bench-", dir=args.scratch))
    ctx = Context(args.quick, scratch, args.scale)
    rows: list[Row] = []
    failed = []
    started = time.monotonic()
    try:
        for name in names:
            ctx.log(f"scenario {name}")
            try:
                rows += SCENARIOS[name](ctx)
            except Exception as exc:  # one broken scenario must not hide the others
                traceback.print_exc()
                failed.append(name)
                rows.append(Row(f"{name}: FAILED TO RUN", repr(exc)[:80], ok=False))
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    seconds = time.monotonic() - started
    print(render_text(rows, args.quick))
    command = "python -m bench " + " ".join(shlex.quote(a) for a in (argv or sys.argv[1:]))
    if args.write_doc:
        write_doc(args.write_doc, doc_section(rows, args.quick, command.strip(), info, seconds))
    judged = [r for r in rows if not (args.quick and r.timed)]
    print(f"\n{len(rows)} rows in {seconds:.0f} s; "
          f"{sum(r.ok is False for r in judged)} missed", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
