"""syncd as a service: sd_notify, signals, logs, metrics, manifest, config check, demo."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from syncd.emulator.faults import Faults
from syncd.journal import Journal
from tests.syncenv import API_KEY, Bench, bench, wait_until

pytestmark = pytest.mark.timeout(180)


def write_config(b: Bench, path: Path, extra: str = "", sync: str = "") -> Path:
    path.write_text(
        f'root = "{b.root}"\n[remote]\nbase_url = "{b.emu.base_url}"\n'
        "requests_per_minute = 60000\nburst = 100\n"
        f"[sync]\nsettle_seconds = 0.2\nshutdown_timeout_seconds = 5\n{sync}"
        f'[state]\njournal = "{b.tmp / "state" / "j.db"}"\n'
        f'manifest = "{b.tmp / "state" / "manifest.json"}"\n'
        '[log]\nformat = "json"\n' + extra
    )
    return path


def start(config: Path, **env: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "syncd", "run", "--config", str(config)],
        env={**os.environ, "ANTHROPIC_API_KEY": API_KEY, **env},
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )


def finish(proc: subprocess.Popen[str], timeout: float = 30) -> tuple[int, str]:
    proc.send_signal(signal.SIGTERM)
    _out, err = proc.communicate(timeout=timeout)
    return proc.returncode, err


def test_sd_notify_ready_watchdog_stopping_in_order(tmp_path: Path) -> None:
    """READY=1 comes once the start-up scan is queued, WATCHDOG=1 repeats, STOPPING=1 on TERM."""
    with bench(tmp_path) as b:
        b.write("a.txt", b"a")
        config = write_config(b, tmp_path / "c.toml")
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        sock.bind(str(tmp_path / "notify.sock"))
        sock.settimeout(0.5)
        proc = start(config, NOTIFY_SOCKET=str(tmp_path / "notify.sock"), WATCHDOG_USEC="400000")
        messages: list[str] = []
        scanned_at_ready: list[bool] = []
        try:
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline and messages.count("WATCHDOG=1") < 3:
                try:
                    message = sock.recv(4096).decode()
                except TimeoutError:
                    continue
                messages.extend(message.split("\n"))
                if message.startswith("READY=1"):
                    with Journal.open_readonly(b.tmp / "state" / "j.db") as journal:
                        scanned_at_ready.append(journal.get_meta("last_scan") is not None)
        finally:
            code, _err = finish(proc)
        while True:
            try:
                messages.extend(sock.recv(4096).decode().split("\n"))
            except TimeoutError:
                break
    kinds = [m.split("=")[0] for m in messages if m.split("=")[0] != "STATUS"]
    assert ([True], 0) == (scanned_at_ready, code)
    assert "READY" == kinds[0] and kinds.count("WATCHDOG") >= 3 and "STOPPING" == kinds[-1]
    statuses = [m for m in messages if m.startswith("STATUS=")]
    assert statuses[0].startswith("STATUS=starting") and any("synced" in s for s in statuses)


def test_sigterm_mid_burst_exits_0_and_restart_converges(tmp_path: Path) -> None:
    """SIGTERM during a burst: exit 0 within the drain deadline; a restart finishes the job."""
    with bench(tmp_path, faults=Faults(latency_seconds=0.05)) as b:
        for i in range(150):
            b.write(f"f{i}.txt", b"%d" % i)
        config = write_config(b, tmp_path / "c.toml")
        proc = start(config)
        wait_until(lambda: b.emu.stats()["upload"] >= 20, what="burst under way")
        code, err = finish(proc, timeout=5 + 10)
        assert 0 == code, err
        with Journal.open_readonly(b.tmp / "state" / "j.db") as journal:
            assert "ok" == journal._select("PRAGMA integrity_check")[0][0]
        b.emu.set_faults(Faults())
        done = subprocess.run(
            [sys.executable, "-m", "syncd", "sync", "--config", str(config)],
            env={**os.environ, "ANTHROPIC_API_KEY": API_KEY}, capture_output=True, timeout=120,
        )
        assert 0 == done.returncode
        b.assert_converged()


def test_sighup_picks_up_a_new_ignore_pattern(tmp_path: Path) -> None:
    """After SIGHUP with ignore = ["*.log"], a new .log is not uploaded and a synced one goes."""
    with bench(tmp_path) as b:
        b.write("keep.txt", b"k")
        b.write("old.log", b"o")
        config = write_config(b, tmp_path / "c.toml")
        proc = start(config)
        try:
            wait_until(lambda: len(b.remote()) == 2, what="first sync")
            config.write_text(config.read_text().replace(
                "[sync]\n", '[sync]\nignore = ["*.log"]\n'))
            proc.send_signal(signal.SIGHUP)
            wait_until(lambda: "old.log" not in b.remote(), what="old.log deleted")
            b.write("new.log", b"n")
            b.write("new.txt", b"t")
            wait_until(lambda: "new.txt" in b.remote(), what="new.txt uploaded")
            time.sleep(0.5)  # a wrongly uploaded new.log would arrive with new.txt
        finally:
            code, err = finish(proc)
        assert 0 == code, err
        assert ["keep.txt", "new.txt"] == sorted(b.remote())


def test_json_logs_parse_and_hide_the_key(tmp_path: Path) -> None:
    """Every stderr line of `syncd run` is a JSON object; none contains the key."""
    with bench(tmp_path, faults=Faults(error_rate=0.2)) as b:
        for i in range(10):
            b.write(f"f{i}.txt", b"%d" % i)
        config = write_config(b, tmp_path / "c.toml", extra='level = "debug"\n')
        proc = start(config)
        wait_until(lambda: len(b.remote()) == 10, what="sync")
        code, err = finish(proc)
    lines = [json.loads(line) for line in err.splitlines()]
    assert 0 == code
    assert {"uploaded", "scanned", "reconciled", "stopped"} <= {e["event"] for e in lines}
    assert API_KEY not in err


def metrics_on(port: int) -> str:
    return f'[metrics]\nlisten = "127.0.0.1:{port}"\n'


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_metrics_endpoint_is_scraped_and_parsed(tmp_path: Path) -> None:
    """[metrics] listen serves Prometheus text with files, bytes, requests and queue depth."""
    port = free_port()
    with bench(tmp_path) as b:
        for i in range(5):
            b.write(f"f{i}.txt", b"12345")
        config = write_config(b, tmp_path / "c.toml", extra=metrics_on(port))
        proc = start(config)
        try:
            wait_until(lambda: len(b.remote()) == 5, what="sync")
            wait_until(lambda: _scrape(port).get("syncd_files_synced_total") == 5.0,
                       what="metrics updated")
            samples = _scrape(port)
        finally:
            code, _ = finish(proc)
    assert 0 == code
    assert 25.0 == samples["syncd_bytes_uploaded_total"]
    assert samples["syncd_last_reconcile_timestamp_seconds"] > 0
    assert "syncd_queue_depth" in samples and "syncd_requests_total" in samples


def _scrape(port: int) -> dict[str, float]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as resp:
            text = resp.read().decode()
    except OSError:
        return {}
    totals: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            totals[sample.name] = totals.get(sample.name, 0.0) + sample.value
    return totals


def test_metrics_port_in_use_is_one_line_exit_2(tmp_path: Path) -> None:
    """A metrics port already taken: one line naming [metrics] listen, exit 2."""
    with bench(tmp_path) as b, socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        config = write_config(b, tmp_path / "c.toml", extra=metrics_on(port))
        proc = start(config)
        _out, err = proc.communicate(timeout=30)
    assert 2 == proc.returncode and "[metrics] listen" in err and "Traceback" not in err


def test_manifest_maps_paths_to_file_ids(tmp_path: Path) -> None:
    """After a sync the manifest holds every synced path with its file_id, size and sha256."""
    with bench(tmp_path) as b:
        b.write("docs/a.pdf", b"%PDF-1.4 x")
        b.write("b.txt", b"b")
        config = write_config(b, tmp_path / "c.toml")
        result = subprocess.run(
            [sys.executable, "-m", "syncd", "sync", "--config", str(config)],
            env={**os.environ, "ANTHROPIC_API_KEY": API_KEY}, capture_output=True, timeout=60,
        )
        manifest = json.loads((b.tmp / "state" / "manifest.json").read_text())
        stored = {f.id: f for f in b.emu.stored() if not f.foreign}
    assert 0 == result.returncode
    assert ["b.txt", "docs/a.pdf"] == sorted(manifest["files"])
    entry = manifest["files"]["docs/a.pdf"]
    assert (stored[entry["file_id"]].sha256, "application/pdf") == (entry["sha256"],
                                                                    entry["mime_type"])
    assert ("document", "document") == (entry["block"], manifest["files"]["b.txt"]["block"])


def test_config_check_reports_each_item(tmp_path: Path) -> None:
    """config check names the key source (not the key), the root, the journal; --online lists."""
    with bench(tmp_path) as b:
        config = write_config(b, tmp_path / "c.toml")
        result = subprocess.run(
            [sys.executable, "-m", "syncd", "config", "check", "--online", "--config", str(config)],
            env={**os.environ, "ANTHROPIC_API_KEY": API_KEY}, capture_output=True, text=True,
            timeout=60,
        )
    assert 0 == result.returncode, result.stdout
    assert "API key from environment variable ANTHROPIC_API_KEY" in result.stdout
    assert API_KEY not in result.stdout and b.emu.base_url in result.stdout


def test_demo_once_runs_end_to_end(tmp_path: Path) -> None:
    """`syncd demo --once` mirrors the sample folder and prints the path -> file_id table."""
    result = subprocess.run(
        [sys.executable, "-m", "syncd", "demo", "--once"], capture_output=True, text=True,
        timeout=120, env={**os.environ, "TMPDIR": str(tmp_path)},
    )
    assert 0 == result.returncode, result.stderr
    rows = [line.split() for line in result.stdout.splitlines() if "file_011C" in line]
    assert ["README.txt", "notes/2026/ideas.md", "prices.csv", "report.pdf"] == [
        r[0] for r in rows
    ]


def test_watchdog_pings_stop_when_the_janitor_stalls(tmp_path: Path) -> None:
    """The loop vouches for the janitor only while it turns: a stalled one means no WATCHDOG=1."""
    import threading

    from syncd.service.loop import JANITOR_STALL, Janitor

    with bench(tmp_path) as b, b.daemon() as daemon:
        stop, entered, release = threading.Event(), threading.Event(), threading.Event()

        def wedged(quiet: float = 0.0) -> int:
            entered.set()
            release.wait(10)  # a turn stuck on the network
            return 0

        daemon.run_deletions = wedged  # type: ignore[method-assign]
        janitor = Janitor(daemon, stop, first_reconcile=600.0)
        before_start = janitor.healthy()
        janitor.start()
        running = janitor.healthy()
        assert entered.wait(10)
        janitor.heartbeat -= JANITOR_STALL + 1  # as if the turn had lasted that long
        stalled = janitor.healthy()
        stop.set()
        release.set()
        janitor.join(10)
    assert (False, True, False) == (before_start, running, stalled)
