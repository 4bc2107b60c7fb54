"""Convergence under faults and crashes: no loss, no duplicate, no orphan, foreign files intact."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from syncd.emulator.faults import Faults
from syncd.remote.pacer import Pacer
from tests.conftest import Recorder
from tests.syncenv import API_KEY, Bench, bench, wait_until

pytestmark = pytest.mark.timeout(180)


def populate(b: Bench, n: int = 60) -> None:
    for i in range(n):
        b.write(f"d{i % 4}/f{i}.txt", b"payload %d " % i * (i + 1))


@pytest.mark.parametrize(
    "faults",
    [
        Faults(error_rate=0.1),
        Faults(drop_upload_rate=0.3),
        Faults(lose_response_rate=0.3),
        Faults(error_rate=0.1, drop_upload_rate=0.1, lose_response_rate=0.1),
    ],
    ids=["5xx-10pct", "dropped-connections", "lost-responses", "all-of-them"],
)
def test_sync_converges_under_faults(tmp_path: Path, faults: Faults) -> None:
    """Create, modify and delete under injected faults: the remote ends exactly like the folder."""
    with bench(tmp_path, faults=faults) as b:
        populate(b)
        b.sync_once()
        for i in range(0, 60, 5):
            b.write(f"d{i % 4}/f{i}.txt", b"changed %d" % i)
        for i in range(1, 60, 10):
            (b.root / f"d{i % 4}" / f"f{i}.txt").unlink()
        b.sync_once()
        b.emu.set_faults(Faults())
        assert 0 == b.sync_once()  # a clean pass: any leftover intent is resolved
        b.assert_converged()


def test_429_storm_pauses_and_converges(tmp_path: Path) -> None:
    """Under a tight rate limit, 429s pause every worker; all files land exactly once."""
    rec = Recorder()
    rec.now = time.time()
    storm = Faults(rate_limit_rpm=120, rate_limit_burst=3)
    with bench(tmp_path, faults=storm, clock=rec.clock) as b:
        b.sleep = rec.sleep  # type: ignore[method-assign]
        # Our pacer is set too fast on purpose, so the service's 429s do the limiting.
        b.client_options = {"pacer": Pacer(6000, burst=50, clock=rec.clock, sleep=rec.sleep)}
        populate(b, 40)
        assert 0 == b.sync_once()
        b.assert_converged()
        stats = b.emu.stats()
        assert 0 < stats["status:upload:429"] < stats["status:upload:200"]
        assert max(rec.sleeps) >= 1.0  # the service's retry-after (whole seconds) was waited


def write_config(b: Bench, path: Path) -> Path:
    path.write_text(
        f'root = "{b.root}"\n'
        f'[remote]\nbase_url = "{b.emu.base_url}"\nrequests_per_minute = 60000\nburst = 100\n'
        f'[sync]\nsettle_seconds = 0.2\nworkers = 4\n'
        f'[state]\njournal = "{b.tmp / "state" / "journal.db"}"\n'
    )
    return path


def test_sigkill_during_upload_burst_then_restart(tmp_path: Path) -> None:
    """SIGKILL of `syncd run` mid-burst, then a restart: converged, no duplicate, no orphan."""
    with bench(tmp_path, faults=Faults(latency_seconds=0.02)) as b:
        populate(b, 200)
        config = write_config(b, tmp_path / "syncd.toml")
        env = {**os.environ, "ANTHROPIC_API_KEY": API_KEY}
        proc = subprocess.Popen(
            [sys.executable, "-m", "syncd", "run", "--config", str(config)],
            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        try:
            wait_until(lambda: b.emu.stats()["upload"] >= 40, timeout=60, what="uploads started")
        finally:
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=10)
        b.emu.set_faults(Faults())
        done = subprocess.run(
            [sys.executable, "-m", "syncd", "sync", "--config", str(config)],
            env=env, capture_output=True, text=True, timeout=120,
        )
        assert 0 == done.returncode, done.stderr
        b.assert_converged()
