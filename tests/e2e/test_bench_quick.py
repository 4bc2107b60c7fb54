"""The benchmark suite's quick mode runs end to end (a smoke test: no timing assertions).

One test per scenario, so a parallel test run spreads them over its workers."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from bench.__main__ import SCENARIOS

ROOT = Path(__file__).resolve().parents[2]
ROW_PREFIX = {"economy": "1 economy:", "pacing": "2 pacing:", "throughput": "3 throughput:",
              "scan": "4 scan:", "memory": "5 memory:", "latency": "6 latency:",
              "watcher": "7 watcher:", "firstsync": "8 first sync:", "freshness": "9 freshness:",
              "folders": "10 folders:"}


def test_every_scenario_is_smoke_tested() -> None:
    """A scenario added to the bench gets its row prefix here (and so a smoke test)."""
    assert sorted(SCENARIOS) == sorted(ROW_PREFIX)


@pytest.mark.timeout(240)
@pytest.mark.parametrize("scenario", sorted(ROW_PREFIX))
def test_bench_quick_prints_the_scenario(scenario: str, tmp_path: Path) -> None:
    """`python -m bench --quick --only SCENARIO` exits 0 and prints the scenario's rows."""
    proc = subprocess.run(
        [sys.executable, "-m", "bench", "--quick", "--only", scenario, "--scratch",
         str(tmp_path)],
        cwd=ROOT, capture_output=True, text=True, timeout=200, check=False,
    )
    assert 0 == proc.returncode, proc.stderr[-3000:]
    assert "FAILED TO RUN" not in proc.stdout
    prefix = ROW_PREFIX[scenario]
    assert any(line.startswith(prefix) for line in proc.stdout.splitlines()), (
        f"no row for {prefix!r} in:\n{proc.stdout}"
    )
