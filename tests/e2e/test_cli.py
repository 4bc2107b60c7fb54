"""The command line on real journals: status, ls, errors, config errors and the journal lock."""

from __future__ import annotations

import errno
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from syncd.cli.main import main
from syncd.engine import oneshot
from syncd.local import watcher
from tests.syncenv import API_KEY, Bench, bench, wait_until

pytestmark = pytest.mark.timeout(120)


def config_for(b: Bench, path: Path, extra: str = "") -> Path:
    path.write_text(
        f'root = "{b.root}"\n[remote]\nbase_url = "{b.emu.base_url}"\n'
        "requests_per_minute = 60000\nburst = 100\n"
        f'[sync]\nsettle_seconds = 0.2\n[state]\njournal = "{b.tmp / "state" / "j.db"}"\n'
        + extra
    )
    return path


def run_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "syncd", *args], capture_output=True, text=True, timeout=60,
        env={**os.environ, "ANTHROPIC_API_KEY": API_KEY, **(env or {})},
    )


def test_status_ls_errors_read_the_journal(tmp_path: Path) -> None:
    """After a sync with one failure, status/ls/errors show the files, the map and the error."""
    from syncd.emulator.app import EmulatorConfig, run_emulator

    cfg = EmulatorConfig(data_dir=tmp_path / "emu", api_key=API_KEY, max_file_bytes=100)
    with run_emulator(cfg) as emu:
        b = Bench(tmp_path, emu)
        b.write("a.txt", b"alpha")
        b.write("sub/b.csv", b"x,y\n")
        b.write("huge.txt", b"h" * 500)
        config = config_for(b, tmp_path / "c.toml")
        assert 1 == run_cli("sync", "--config", str(config)).returncode
        status = json.loads(run_cli("status", "--json", "--config", str(config)).stdout)
        listing = json.loads(run_cli("ls", "--json", "--config", str(config)).stdout)
        sub = json.loads(run_cli("ls", "--json", "--config", str(config), "sub/").stdout)
        errors = run_cli("errors", "--config", str(config))
    assert (2, 0, 1) == (status["synced"], status["pending"], status["errors"])
    assert status["last_reconcile"].endswith("Z") and status["daemon_pid"] is None
    assert ["a.txt", "sub/b.csv"] == [e["path"] for e in listing]
    assert {"path", "file_id", "remote_name", "size", "sha256", "block"} <= set(listing[0])
    assert ["document", "container_upload"] == [e["block"] for e in listing]
    assert ("sub%2Fb.csv", 4) == (sub[0]["remote_name"], sub[0]["size"])
    assert 1 == errors.returncode and "huge.txt" in errors.stdout


def test_status_shows_both_lane_depths(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Files a scan found wait in the backlog, one the watcher then reported in the live lane:
    `syncd status` (text and JSON) shows both depths, beside the unchanged pending count."""
    from syncd.cli.report import print_status, status_data

    with bench(tmp_path) as b:
        for name in ["a.txt", "b.txt", "c.txt"]:
            b.write(name, b"x")
        with b.daemon() as daemon:
            daemon.scan()
            daemon.hints().mark("c.txt")
            daemon.publish_depth()
            data = status_data(daemon.settings)
            capsys.readouterr()
            print_status(daemon.settings)
            text = capsys.readouterr().out
    assert ({"live": 1, "backlog": 2}, 3) == (data["queue_lanes"], data["pending"])
    assert "queue lanes     live 1, backlog 2\n" in text, text


def test_status_without_a_journal_says_so(tmp_path: Path) -> None:
    """status on a config whose journal does not exist yet: one line, exit 2."""
    config = tmp_path / "c.toml"
    config.write_text(f'root = "{tmp_path}"\n[state]\njournal = "{tmp_path / "none.db"}"\n')
    result = run_cli("status", "--config", str(config))
    assert (2, 1) == (result.returncode, len(result.stderr.strip().splitlines()))
    assert "no journal" in result.stderr


@pytest.mark.parametrize(
    ("toml", "needle"),
    [
        ('root = "/tmp"\n[sync]\nwokers = 3\n', "unknown config key [sync] wokers"),
        ('root = "/tmp"\n[sync]\nworkers = "many"\n', "[sync] workers"),
        ("[sync]\nworkers = 2\n", "root"),
        ("root = \n", "not valid TOML"),
        ('root = "/tmp"\n[sync]\nbacklog_order = "oldest"\n', "[sync] backlog_order"),
        ('root = "/tmp"\n[sync]\nbacklog_share = 1.5\n', "[sync] backlog_share"),
        ('root = "/tmp"\n[sync]\nreconcile_budget_share = 0\n',
         "[sync] reconcile_budget_share"),
    ],
)
def test_bad_config_is_one_line_exit_2(tmp_path: Path, toml: str, needle: str) -> None:
    """Unknown keys, wrong types, values out of range, a missing root and bad TOML: one clear
    line, exit 2."""
    config = tmp_path / "c.toml"
    config.write_text(toml)
    result = run_cli("sync", "--config", str(config))
    assert (2, 1) == (result.returncode, len(result.stderr.strip().splitlines()))
    assert needle in result.stderr and "Traceback" not in result.stderr


def test_missing_key_names_anthropic_api_key(tmp_path: Path) -> None:
    """Without any key source, sync refuses before any request, naming ANTHROPIC_API_KEY."""
    config = tmp_path / "c.toml"
    config.write_text(f'root = "{tmp_path}"\n[state]\njournal = "{tmp_path / "j.db"}"\n')
    env = {k: v for k, v in os.environ.items() if k != "ANTHROPIC_API_KEY"}
    result = subprocess.run(
        [sys.executable, "-m", "syncd", "sync", "--config", str(config)],
        capture_output=True, text=True, timeout=60, env=env,
    )
    assert 2 == result.returncode and "ANTHROPIC_API_KEY" in result.stderr


@pytest.mark.parametrize("command", ["sync", "run"])
def test_rejected_key_is_a_clear_exit_2(tmp_path: Path, command: str) -> None:
    """A key the service rejects (`run`: at its start-up reconcile): exit 2 with 'rejected the
    API key', the key not shown."""
    with bench(tmp_path) as b:
        config = config_for(b, tmp_path / "c.toml")
        result = run_cli(command, "--config", str(config),
                         env={"ANTHROPIC_API_KEY": "sk-ant-wrong-123"})
    assert 2 == result.returncode and "rejected the API key" in result.stderr
    assert "sk-ant-wrong-123" not in result.stderr


def test_a_second_daemon_on_the_same_journal_refuses(tmp_path: Path) -> None:
    """While one daemon holds the journal, a second exits 2 naming the holder's pid."""
    with bench(tmp_path) as b:
        config = config_for(b, tmp_path / "c.toml")
        with b.running(), pytest.raises(SystemExit) as info:
            sys.exit(main(["sync", "--config", str(config)]))
        assert 2 == info.value.code


def test_journal_bound_to_another_root_refuses(tmp_path: Path) -> None:
    """Pointing an existing journal at another folder is refused (no mass delete)."""
    with bench(tmp_path) as b:
        b.write("a.txt", b"a")
        config = config_for(b, tmp_path / "c.toml")
        assert 0 == run_cli("sync", "--config", str(config)).returncode
        other = tmp_path / "other"
        other.mkdir()
        text = config.read_text().replace(f'root = "{b.root}"', f'root = "{other}"')
        config.write_text(text)
        result = run_cli("sync", "--config", str(config))
        assert 2 == result.returncode and "belongs to root" in result.stderr
        assert 1 == len(b.remote())


def test_watch_limit_falls_back_to_scans(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """When inotify refuses, the sysctl fix is logged and periodic scans still sync changes."""

    class Refusing(watcher.Observer):  # type: ignore[misc,valid-type]
        def start(self) -> None:
            raise OSError(errno.ENOSPC, "inotify watch limit reached")

    monkeypatch.setattr(watcher, "Observer", Refusing)
    with bench(tmp_path) as b, capture_logs() as logs, b.running(rescan_interval_seconds=0.3):
        b.write("late.txt", b"found by a scan")
        wait_until(b.converged, what="scan-only sync")
    fixes = [e["reason"] for e in logs if e["event"] == "watcher unavailable"]
    assert 1 == len(fixes) and "fs.inotify.max_user_watches" in fixes[0]


def test_journal_inside_root_is_not_uploaded(tmp_path: Path) -> None:
    """A journal inside the synced folder, its -wal/-shm and copies rebuild moved aside stay out."""
    with bench(tmp_path) as b:
        b.write("a.txt", b"a")
        b.write(".syncd/journal.db.broken-20261124T000000.000000Z", b"old journal")
        settings = b.settings()
        from syncd.config import load_settings
        from syncd.engine.mirror import Mirror

        inside = load_settings(None, **{**settings.model_dump(), "state": {
            "journal": b.root / ".syncd" / "journal.db"}})
        with Mirror(inside, client=b.client()) as daemon:
            assert 0 == oneshot.sync_once(daemon)
        assert ["a.txt"] == sorted(b.remote())


def test_fifo_and_outside_symlink_are_skipped(tmp_path: Path) -> None:
    """A FIFO is skipped with a warning; a symlink to a file outside root is not followed."""
    with bench(tmp_path) as b:
        b.write("a.txt", b"a")
        os.mkfifo(b.root / "pipe")
        (tmp_path / "secret.txt").write_bytes(b"outside")
        os.symlink(tmp_path / "secret.txt", b.root / "link.txt")
        with capture_logs() as logs:
            assert 0 == b.sync_once(follow_symlinks=True)
        assert ["a.txt"] == sorted(b.remote())
        skipped = [e["path"] for e in logs if e["event"] == "skipped"]
        assert ["pipe"] == skipped


def test_missing_root_directory_is_one_line_exit_2(tmp_path: Path) -> None:
    """A root that does not exist: one line naming it and the fix, exit 2, nothing deleted."""
    with bench(tmp_path) as b:
        config = config_for(b, tmp_path / "c.toml")
        b.root.rmdir()
        result = run_cli("sync", "--config", str(config))
    assert (2, 1) == (result.returncode, len(result.stderr.strip().splitlines()))
    assert str(b.root) in result.stderr and "fix `root`" in result.stderr


def test_watcher_is_retried_once_the_kernel_allows(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A watcher refused at start is tried again until it runs; changes then sync."""
    from syncd.service import loop

    refusals = [1]

    class RefusingOnce(watcher.Observer):  # type: ignore[misc,valid-type]
        def start(self) -> None:
            if refusals:
                refusals.pop()
                raise OSError(errno.ENOSPC, "inotify watch limit reached")
            super().start()

    monkeypatch.setattr(watcher, "Observer", RefusingOnce)
    monkeypatch.setattr(loop, "WATCHER_RETRY", 0.2)
    with bench(tmp_path) as b, capture_logs() as logs, b.running(rescan_interval_seconds=3600):
        wait_until(lambda: any(e["event"] == "watching" for e in logs), what="watcher up")
        b.write("by-event.txt", b"seen by inotify")
        wait_until(b.converged, what="event-driven sync")
    assert [] == refusals


def test_the_cli_does_not_load_the_emulator() -> None:
    """`syncd run` under systemd never serves HTTP: importing the CLI must not load the
    emulator or its web stack (starlette, uvicorn)."""
    probe = ("import sys, syncd.cli.main; print(sorted(m for m in ('starlette', 'uvicorn',"
             " 'syncd.emulator.app') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                         timeout=60, check=True).stdout
    assert "[]" == out.strip()
