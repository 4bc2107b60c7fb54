"""The benchmark suite's quick mode runs end to end (a smoke test: no timing assertions)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SCENARIO_ROWS = ("1 economy:", "2 pacing:", "3 throughput:", "4 scan:", "5 memory:", "6 latency:")


@pytest.mark.timeout(240)
def test_bench_quick_prints_every_scenario(tmp_path: Path) -> None:
    """`python -m bench --quick` exits 0 and prints a row for every scenario."""
    proc = subprocess.run(
        [sys.executable, "-m", "bench", "--quick", "--scratch", str(tmp_path)],
        cwd=ROOT, capture_output=True, text=True, timeout=200, check=False,
    )
    assert 0 == proc.returncode, proc.stderr[-3000:]
    assert "FAILED TO RUN" not in proc.stdout
    for prefix in SCENARIO_ROWS:
        assert any(line.startswith(prefix) for line in proc.stdout.splitlines()), (
            f"no row for {prefix!r} in:\n{proc.stdout}"
        )
