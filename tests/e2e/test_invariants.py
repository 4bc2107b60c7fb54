"""The invariants of docs/INVARIANTS.md, proved end to end (emulator over loopback)."""

from __future__ import annotations

import os
import subprocess
import sys
from functools import partial
from pathlib import Path

import httpx
import pytest

from syncd.emulator.faults import Faults
from syncd.journal import Journal
from syncd.service.loop import run_daemon
from tests import syncenv
from tests.syncenv import API_KEY, Bench, TwoFolderBench, bench, wait_until

pytestmark = pytest.mark.timeout(120)


@pytest.fixture(autouse=True, params=[1, 2], ids=["one-folder", "two-folders"])
def folders(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> int:
    """Every invariant is proved twice: for a daemon of one folder, and for a folder that
    shares its daemon (and request budget) with another, which must stay exact throughout."""
    monkeypatch.setattr(sys.modules[__name__], "bench", partial(syncenv.bench,
                                                                folders=request.param))
    return int(request.param)


def test_1_foreign_files_are_never_deleted(tmp_path: Path) -> None:
    """Foreign files (one even named like ours) survive uploads, edits, deletes and reconciles."""
    with bench(tmp_path) as b:
        b.write("docs/a.txt", b"ours")
        b.write("b.txt", b"b")
        b.sync_once()
        b.write("docs/a.txt", b"ours, edited")
        (b.root / "b.txt").unlink()
        b.sync_once()
        (b.root / "docs" / "a.txt").unlink()
        assert 0 == b.sync_once()
        assert b.foreign_intact()
        assert {} == b.remote()


class MakeBeforeBreak(httpx.HTTPTransport):
    """Checks, at every DELETE, that the new copy is stored and committed to the journal."""

    def __init__(self, b: Bench) -> None:
        super().__init__()
        self.b = b
        self.checked: list[bool] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if request.method == "DELETE":
            old_id = request.url.path.rsplit("/", 1)[1]
            stored = {f.id: f for f in self.b.emu.stored() if not f.deleted}
            name = stored[old_id].filename
            newer = [f.id for f in stored.values() if f.filename == name and f.id != old_id]
            with Journal.open_readonly(self.b.settings().journal_path) as journal:
                row = journal.get(self.b.decode(name) or name)
            self.checked.append(
                len(newer) == 1 and row is not None and row.synced is not None
                and row.synced.file_id == newer[0]
            )
        return super().handle_request(request)


def test_2_make_before_break(tmp_path: Path) -> None:
    """Every replaced file's old copy is deleted only after the new one is stored and committed."""
    with bench(tmp_path) as b:
        for i in range(10):
            b.write(f"f{i}.txt", b"v1 %d" % i)
        b.sync_once()
        for i in range(10):
            b.write(f"f{i}.txt", b"version two %d" % i)
        transport = MakeBeforeBreak(b)
        b.client_options = {"transport": transport}
        assert 0 == b.sync_once()
        assert [True] * 10 == transport.checked
        b.assert_converged()


def test_3_lost_responses_leave_no_duplicate(tmp_path: Path) -> None:
    """Uploads whose responses are lost are adopted or deleted: one copy per file remains."""
    with bench(tmp_path, faults=Faults(lose_response_rate=0.5)) as b:
        for i in range(30):
            b.write(f"f{i}.txt", b"%d" % i * 50)
        b.sync_once()
        b.emu.set_faults(Faults())
        assert 0 == b.sync_once()
        b.assert_converged()
        with Journal.open_readonly(b.settings().journal_path) as journal:
            assert ([], 0) == (journal.intents(), journal.counts().tombstones)


def test_4_a_file_changing_during_upload_is_not_kept(tmp_path: Path) -> None:
    """A file appended to while its upload is in flight ends with its final content only."""
    with bench(tmp_path, faults=Faults(latency_seconds=0.5)) as b:
        b.sync_once()
        with b.running():
            b.write("grow.bin", os.urandom(4 * 1024 * 1024))
            wait_until(lambda: b.emu.stats()["upload"] >= 1, what="upload started")
            with open(b.root / "grow.bin", "ab") as out:
                out.write(b"tail")
            wait_until(b.converged, what="final content mirrored")
        b.assert_converged()


def test_6_permanent_error_waits_for_a_change(tmp_path: Path, folders: int) -> None:
    """A too-large file is an error (exit 1), not retried until it changes, then synced."""
    from syncd.emulator.app import EmulatorConfig, run_emulator

    cfg = EmulatorConfig(data_dir=tmp_path / "emu", api_key=API_KEY, max_file_bytes=1000)
    with run_emulator(cfg) as emu:
        b = (TwoFolderBench if folders == 2 else Bench)(tmp_path, emu)
        b.write("big.txt", b"x" * 5000)
        b.write("ok.txt", b"fine")
        assert 1 == b.sync_once()
        with Journal.open_readonly(b.settings().journal_path) as journal:
            [row] = journal.errors()
        assert ("big.txt", "permanent") == (row.path, row.failure and row.failure.kind)
        emu.reset_stats()
        assert 1 == b.sync_once()
        assert {"list": folders} == b.counts()  # one probe per folder, nothing uploaded
        b.write("big.txt", b"small now")
        assert 0 == b.sync_once()
        b.assert_converged()


def test_6_transient_errors_retry_and_converge(tmp_path: Path) -> None:
    """With every third request failing with 5xx, nothing is dropped."""
    with bench(tmp_path, faults=Faults(error_rate=0.3)) as b:
        for i in range(30):
            b.write(f"f{i}.txt", b"%d" % i)
        b.sync_once()
        b.emu.set_faults(Faults())
        assert 0 == b.sync_once()
        b.assert_converged()


def test_8_the_key_never_appears(tmp_path: Path, folders: int) -> None:
    """Debug JSON logs, status output and the journal file never contain the API key."""
    with bench(tmp_path, faults=Faults(error_rate=0.2, lose_response_rate=0.2)) as b:
        for i in range(10):
            b.write(f"f{i}.txt", b"%d" % i)
        config = tmp_path / "c.toml"
        state = b.tmp / "state"
        where = (f'[state]\njournal = "{state / "journal.db"}"\n'
                 if folders == 1 else "".join(
                     f'[[folder]]\nname = "{n}"\nroot = "{r}"\nname_prefix = "{n}/"\n'
                     f'journal = "{state / (n + ".db")}"\n'
                     for n, r in (("main", b.root), ("other", b.tmp / "other"))))
        config.write_text(
            (f'root = "{b.root}"\n' if folders == 1 else "")
            + f'[remote]\nbase_url = "{b.emu.base_url}"\n'
            "requests_per_minute = 60000\nburst = 100\n"
            '[log]\nlevel = "debug"\nformat = "json"\n' + where
        )
        env = {**os.environ, "ANTHROPIC_API_KEY": API_KEY}
        outputs = [
            subprocess.run(
                [sys.executable, "-m", "syncd", *cmd, "--config", str(config)],
                env=env, capture_output=True, text=True, timeout=120,
            )
            for cmd in (["sync"], ["sync"], ["status", "--json"], ["ls", "--json"], ["errors"])
        ]
        journal_bytes = b"".join(p.read_bytes() for p in (b.tmp / "state").iterdir())
    text = "".join(o.stdout + o.stderr for o in outputs)
    assert '"event": "uploaded"' in text  # the logs were captured
    assert API_KEY not in text
    assert API_KEY.encode() not in journal_bytes


class Revocable(httpx.HTTPTransport):
    """Sends a wrong key once `revoked` is set, as if the key were revoked mid-run."""

    revoked = False

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if self.revoked:
            request.headers["x-api-key"] = "sk-ant-revoked"
        return super().handle_request(request)


def test_6_a_revoked_key_stops_the_daemon_without_marking_files(tmp_path: Path) -> None:
    """A 401 mid-run is the key's fault: the daemon stops; no path is put in error state."""
    import threading

    from syncd.errors import AuthenticationFailed

    with bench(tmp_path) as b:
        transport = Revocable()
        b.client_options = {"transport": transport}
        with b.daemon() as daemon:
            stop, ready = threading.Event(), threading.Event()
            raised: list[BaseException] = []

            def run() -> None:
                try:
                    run_daemon(daemon, stop, on_ready=ready.set)
                except AuthenticationFailed as exc:
                    raised.append(exc)

            runner = threading.Thread(target=run, daemon=True)
            runner.start()
            assert ready.wait(30)  # watching: the new file will be seen
            transport.revoked = True
            b.write("after.txt", b"uploaded with a revoked key")
            runner.join(timeout=30)
            errors = daemon.journal.errors()
        assert (1, []) == (len(raised), errors)
