"""Bugs the simulation found, each kept as a distilled scenario and as a replay of its seed.

The scenarios steer the race the seed hit by hand: the client's retry sleep (an injected
parameter) is where the folder changes between two attempts of one upload.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from syncd.emulator.faults import Faults
from syncd.journal import Journal
from syncd.model import Failure, Synced
from syncd.service.loop import run_daemon
from tests.sim.runner import run_many
from tests.syncenv import Bench, bench, wait_until

pytestmark = pytest.mark.timeout(180)


def on_retry(*steps: Callable[[], object]) -> Callable[[float], None]:
    """A retry sleep that runs ``steps[n]`` before the n-th retry (and then nothing)."""
    pending = list(steps)

    def sleep(_seconds: float) -> None:
        if pending:
            pending.pop(0)()

    return sleep


def journal_state(b: Bench) -> tuple[list[str], int, int]:
    """Paths in error, open intents, owed deletions."""
    with Journal.open_readonly(b.tmp / "state" / "journal.db") as journal:
        counts = journal.counts()
        return [r.path for r in journal.errors()], counts.intents, counts.tombstones


def test_lost_upload_then_file_deleted_leaves_no_orphan(tmp_path: Path) -> None:
    """Seed lost/3: a lost response, then the file vanishes before the retry: the stored copy
    is still found and deleted (the intent used to be dropped with the retry's error)."""
    with bench(tmp_path, faults=Faults(lose_response_rate=1.0)) as b:
        doomed = b.write("dir/doomed.txt", b"uploaded, answer lost, then deleted")
        b.sleep = on_retry(doomed.unlink)  # type: ignore[method-assign]
        code = b.sync_once()
        b.emu.set_faults(Faults())
        assert (0, {}, ([], 0, 0)) == (code, b.remote(), journal_state(b))


def test_file_deleted_between_attempts_is_not_an_error(tmp_path: Path) -> None:
    """Seeds errors/3, ratelimit/2: a file deleted while its upload retries is forgotten, not
    listed in `syncd errors` as "cannot read: No such file" for the whole backoff."""
    with bench(tmp_path, faults=Faults(drop_upload_rate=1.0)) as b:
        doomed = b.write("doomed.txt", b"never stored, then deleted")
        b.sleep = on_retry(doomed.unlink)  # type: ignore[method-assign]
        with b.daemon() as daemon:
            daemon.syncer.process("doomed.txt")
            errors = [row.path for row in daemon.journal.errors()]
        assert [] == errors


def test_file_changed_between_intent_and_attempt_leaves_no_orphan(tmp_path: Path) -> None:
    """Seed lost/1: a growing file, a lost response, and a retry that read a bigger version:
    that copy did not match the intent's size, so reconcile never found it. Now an attempt
    sends only the version its intent names."""
    with bench(tmp_path, faults=Faults(lose_response_rate=1.0)) as b:
        growing = b.write("log/growing.txt", b"first version")

        def grow() -> None:
            with open(growing, "ab") as fh:
                fh.write(b", and more written while the upload retried")

        b.sleep = on_retry(grow, lambda: b.emu.set_faults(Faults()))  # type: ignore[method-assign]
        first = b.sync_once()
        second = b.sync_once()  # the fix takes a second look at the changed file
        assert (0, ([], 0, 0)) == (second, journal_state(b)), first
        b.assert_converged()


class RootAwayOnFirstList(httpx.HTTPTransport):
    """Renames the root away right after the start-up listing, as a moment's unmount would."""

    def __init__(self, root: Path) -> None:
        super().__init__()
        self.root = root
        self.away = root.with_name("root.away")
        self.moved = False

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = super().handle_request(request)
        if request.url.path == "/v1/files" and request.method == "GET" and not self.moved:
            self.moved = True
            os.rename(self.root, self.away)
        return response


def test_root_gone_during_start_up_is_not_fatal(tmp_path: Path) -> None:
    """Seed chaos/105: the root vanished between the start-up check and the first scan; the
    daemon exited (code 2). Now the scan is refused like a rescan and retried once it is back."""
    with bench(tmp_path) as b:
        b.write("a.txt", b"a")
        transport = RootAwayOnFirstList(b.root)
        b.client_options = {"transport": transport}
        stop = threading.Event()
        outcome: list[object] = []
        with b.daemon(rescan_interval_seconds=0.5) as daemon:

            def run() -> None:
                try:
                    outcome.append(run_daemon(daemon, stop))
                except Exception as exc:
                    outcome.append(exc)

            runner = threading.Thread(target=run, daemon=True)
            runner.start()
            wait_until(transport.away.exists, what="the root moved away")
            time.sleep(0.3)  # the start-up scan meets the missing root
            os.rename(transport.away, b.root)
            b.write("b.txt", b"written once the root was back")
            wait_until(lambda: bool(outcome) or b.converged(), what="converged or exited")
            stop.set()
            runner.join(timeout=30)
        assert [0] == outcome
        b.assert_converged()


def test_directory_move_never_walks_into_a_symlink(tmp_path: Path) -> None:
    """Seed none/125 (and 3 more profiles of it): a directory holding a symlink to a directory
    was moved; watchdog reports the link as a moved directory, the watcher walked through it,
    and files outside root were uploaded under `dir/link/...`. Links to directories are never
    followed, whatever marks the path."""
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_bytes(b"not for the workspace")
    with bench(tmp_path) as b:
        b.write("d/sub/a.txt", b"a")
        os.symlink(outside, b.root / "d" / "link")
        os.symlink("../..", b.root / "d" / "sub" / "to-root")
        with b.running():
            wait_until(b.converged, what="the first pass")
            os.rename(b.root / "d", b.root / "moved")
            wait_until(b.converged, timeout=10, what="remote == local, nothing via links")
            time.sleep(1.0)  # time for a wrongly walked link to show up
            b.assert_converged()


def test_cli_prints_non_utf8_paths_under_a_strict_utf8_locale(tmp_path: Path) -> None:
    """Found while widening the sim's CLI checks: `syncd errors` and `syncd ls` crashed with
    UnicodeEncodeError on a non-UTF-8 path wherever Python's stdout is strict (a UTF-8 locale
    other than C); they now print the name's bytes as they are on disk."""
    raw = b"caf\xe9-big.bin"
    path = os.fsdecode(raw)
    root = tmp_path / "root"
    root.mkdir()
    journal_path = tmp_path / "journal.db"
    with Journal.open(journal_path, str(root), "http://127.0.0.1:9") as journal:
        journal.record_failure(path, Failure("permanent", "413 request_too_large", 1, 0.0, None))
        journal.commit_upload(path + ".old", Synced("file_1", "n", "0" * 64, 1, 1, 1,
                                                    "text/plain", 1.0), None)
    config = tmp_path / "syncd.toml"
    config.write_text(f'root = "{root}"\n[remote]\nbase_url = "http://127.0.0.1:9"\n'
                      f'[state]\njournal = "{journal_path}"\n')
    env = {**os.environ, "PYTHONIOENCODING": "utf-8:strict"}

    def cli(*args: str) -> tuple[int, bool]:
        done = subprocess.run([sys.executable, "-m", "syncd", *args, "--config", str(config)],
                              env=env, capture_output=True, timeout=60)
        return done.returncode, raw in done.stdout

    assert [(1, True), (0, True)] == [cli("errors"), cli("ls")]


@pytest.mark.timeout(300)
def test_seeds_that_found_bugs_converge(tmp_path: Path) -> None:
    """The seeds that first showed these bugs, replayed end to end (2 at a time)."""
    runs = [("lost", 3), ("lost", 1), ("errors", 3), ("ratelimit", 2), ("chaos", 105),
            ("crash", 111), ("none", 125)]
    results = run_many(runs, tmp_path, jobs=2)
    assert [] == [r.report() for r in results if not r.ok]
