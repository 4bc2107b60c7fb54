"""``python -m tests.sim --seeds N --profile P``: run seeds, print per-profile results.

``--profile all`` runs N seeds for every profile. ``--seed S`` replays one seed. ``--jobs J``
runs seeds in J processes (each with its own emulator, port and directory). Exit code 0 when
every seed converged to an exact mirror, 1 otherwise; each failure prints its seed, its
operations and the diff.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

from tests.sim.profiles import PROFILES
from tests.sim.runner import SeedResult, run_many


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m tests.sim", description=__doc__)
    parser.add_argument("--seeds", type=int, default=10, help="seeds per profile")
    parser.add_argument("--start", type=int, default=1, help="first seed")
    parser.add_argument("--seed", type=int, help="replay this one seed")
    parser.add_argument("--profile", default="all", choices=["all", *PROFILES])
    parser.add_argument("--jobs", type=int, default=1, help="seeds run in parallel")
    parser.add_argument("--dir", type=Path, help="work directory (default: a temp dir)")
    parser.add_argument("--keep", action="store_true", help="keep passing seeds' files")
    parser.add_argument("--quiet", action="store_true", help="no line per seed")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    profiles = list(PROFILES) if args.profile == "all" else [args.profile]
    seeds = [args.seed] if args.seed is not None else list(
        range(args.start, args.start + args.seeds))
    jobs = [(p, s) for s in seeds for p in profiles]
    base = args.dir or Path(tempfile.mkdtemp(prefix="syncd-sim-"))
    base.mkdir(parents=True, exist_ok=True)
    print(f"{len(jobs)} runs ({len(seeds)} seeds x {len(profiles)} profiles), {args.jobs} "
          f"at a time, in {base}", flush=True)
    started = time.monotonic()
    results = run_many(jobs, base, args.jobs, args.keep, lambda r: _show(r, args.quiet))
    return summarize(results, time.monotonic() - started)


def _show(result: SeedResult, quiet: bool) -> SeedResult:
    if not result.ok:
        print(result.report(), flush=True)
    elif not quiet:
        print(f"ok   {result.profile:<10} seed {result.seed:<5} {result.seconds:5.1f} s "
              f"(converged in {result.converge_seconds} s, {len(result.ops)} ops, "
              f"{result.kills} kills, injected {result.injected})", flush=True)
    return result


def summarize(results: list[SeedResult], seconds: float) -> int:
    """Per-profile totals; 1 if any seed diverged."""
    by_profile: dict[str, list[SeedResult]] = defaultdict(list)
    for r in results:
        by_profile[r.profile].append(r)
    print(f"\n{'profile':<10} {'seeds':>5} {'passed':>6} {'diverged':>8} {'kills':>5} "
          f"{'max converge s':>14}")
    for name in PROFILES:
        rs = by_profile.get(name)
        if not rs:
            continue
        passed = sum(r.ok for r in rs)
        print(f"{name:<10} {len(rs):>5} {passed:>6} {len(rs) - passed:>8} "
              f"{sum(r.kills for r in rs):>5} {max(r.converge_seconds for r in rs):>14.1f}")
    failed = [r for r in results if not r.ok]
    print(f"\n{len(results)} runs, {len(failed)} diverged, {seconds / 60:.1f} min wall time")
    for r in failed:
        print(f"  diverged: --profile {r.profile} --seed {r.seed}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
