"""Supervision and pauses: no thread dies unseen, every pause is named, nothing is skipped silently.

The daemon runs for real here: a real tree with a real inotify watch, a real SQLite journal and
the emulator over loopback. Faults are injected by making one method raise.
"""

from __future__ import annotations

import io
import itertools
import os
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from structlog.testing import capture_logs

from syncd import logs
from syncd.cli.report import print_errors, print_status, status_data
from syncd.engine import oneshot
from syncd.engine.dirtyqueue import DirtyQueue
from syncd.engine.mirror import Mirror, Options
from syncd.engine.worker import WorkerPool
from syncd.journal import Journal
from syncd.local import watcher
from syncd.service.loop import run_daemon, status_line
from syncd.service.notify import Notifier
from tests.syncenv import API_KEY, Bench, bench, wait_until

pytestmark = pytest.mark.timeout(120)


needs_permissions = pytest.mark.usefixtures("file_permissions")


class RecordingNotifier(Notifier):
    """A notifier whose watchdog is on and whose messages (and turns) are recorded in order."""

    def __init__(self) -> None:
        super().__init__(environ={"WATCHDOG_USEC": "2000"})
        self.sent: list[str] = []
        self.turns = 0

    def send(self, message: str) -> None:
        self.sent.append(message)

    def status(self, text: str) -> None:
        self.turns += 1
        super().status(text)


@contextmanager
def running(
    b: Bench, notifier: Notifier | None = None, **sync: Any
) -> Iterator[tuple[Mirror, list[object]]]:
    """The run loop in a thread; yields the daemon and, once stopped, its exit code."""
    daemon = b.daemon(**sync)
    stop, ready = threading.Event(), threading.Event()
    outcome: list[object] = []

    def run() -> None:
        try:
            outcome.append(run_daemon(daemon, stop, on_ready=ready.set, notifier=notifier))
        except BaseException as exc:  # the test reports it
            outcome.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    try:
        assert ready.wait(30), "daemon did not become ready"
        yield daemon, outcome
    finally:
        stop.set()
        thread.join(timeout=30)
        daemon.close()


def events(logs: list[dict[str, Any]], name: str) -> list[dict[str, Any]]:
    return [e for e in logs if e["event"] == name]


# --- item 11: the janitor and the workers survive a turn that fails ---------------------------


@pytest.mark.parametrize(
    "error",
    [httpx.DecodingError("garbled listing"), OSError(5, "Input/output error")],
    ids=["decoding-error", "oserror"],
)
def test_janitor_survives_a_failed_reconcile_and_still_deletes(
    tmp_path: Path, error: Exception
) -> None:
    """A reconcile raising a foreign exception is logged; the janitor still pays deletions."""
    with bench(tmp_path) as b, capture_logs() as logs:
        b.write("keep.txt", b"k")
        b.write("gone.txt", b"g")
        assert 0 == b.sync_once()
        with b.running(reconcile_interval_seconds=0.2) as daemon:
            raised = threading.Event()
            real = daemon.reconciler.run

            def flaky(*args: Any, **kwargs: Any) -> Any:
                if not raised.is_set():
                    raised.set()
                    raise error
                return real(*args, **kwargs)

            daemon.reconciler.run = flaky  # type: ignore[method-assign]
            assert raised.wait(10)
            (b.root / "gone.txt").unlink()
            wait_until(lambda: "gone.txt" not in b.remote(), what="deletion after the error")
        failed = events(logs, "janitor turn failed")
        b.assert_converged()
    assert [repr(error)] == [e["error"] for e in failed]


def test_the_loop_survives_a_failed_turn(tmp_path: Path) -> None:
    """A loop turn that raises (the manifest's disk is full) is logged; the loop turns on."""
    with bench(tmp_path) as b, capture_logs() as logs:
        with running(b) as (daemon, outcome):
            failures = [OSError(28, "No space left on device")]
            real = daemon.write_manifest

            def write_manifest() -> None:
                if failures:
                    raise failures.pop()
                real()

            daemon.write_manifest = write_manifest  # type: ignore[method-assign]
            b.write("a.txt", b"a")
            wait_until(lambda: not failures, what="the failed turn")
            b.write("b.txt", b"b")
            wait_until(b.converged, what="later changes synced")
        failed = events(logs, "loop turn failed")
    assert [0] == outcome
    assert [repr(OSError(28, "No space left on device"))] == [e["error"] for e in failed]


def test_a_worker_survives_an_error_outside_a_path() -> None:
    """An exception from the queue itself is logged; the worker lives and takes the next path."""
    queue = DirtyQueue(0.0, 0.0)
    done: list[str] = []

    class Recorder:
        def process(self, path: str) -> None:
            done.append(path)

    real_get, failures = queue.get, [RuntimeError("bug in the queue")]

    def get(timeout: float) -> str | None:
        if failures:
            raise failures.pop()
        return real_get(timeout)

    queue.get = get  # type: ignore[method-assign]
    pool = WorkerPool(Recorder(), queue, 1, lambda exc: None)  # type: ignore[arg-type]
    pool.start()
    try:
        queue.mark("a.txt")
        wait_until(lambda: done == ["a.txt"], timeout=10, what="the path processed")
        alive = pool.alive()
    finally:
        pool.stop(0.0)
    assert (["a.txt"], True) == (done, alive)


@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")
def test_worker_pool_names_a_dead_worker() -> None:
    """A worker ended by a BaseException is reported dead by name; the others live on."""
    queue = DirtyQueue(0.0, 0.0)

    class Dying:
        def process(self, path: str) -> None:
            raise SystemExit(3)

    pool = WorkerPool(Dying(), queue, 2, lambda exc: None)  # type: ignore[arg-type]
    pool.start()
    try:
        queue.mark("boom.txt")
        wait_until(lambda: not pool.alive(), timeout=10, what="a worker died")
        dead = pool.dead()
    finally:
        pool.stop(0.0)
    assert 1 == len(dead) and dead[0].startswith("syncd-worker-")


def _kill_janitor(daemon: Mirror, b: Bench) -> None:
    def die(quiet: float = 0.0) -> int:
        raise SystemExit(3)  # passes every catch-all: the thread ends

    daemon.run_deletions = die  # type: ignore[method-assign]


def _kill_a_worker(daemon: Mirror, b: Bench) -> None:
    real = daemon.syncer.process

    def process(path: str) -> None:
        if path == "boom.txt":
            raise SystemExit(3)
        real(path)

    daemon.syncer.process = process  # type: ignore[method-assign]
    b.write("boom.txt", b"kills the worker that takes it")


@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")
@pytest.mark.parametrize("kill", [_kill_janitor, _kill_a_worker], ids=["janitor", "worker"])
def test_a_dead_thread_stops_the_watchdog_and_is_named_everywhere(
    tmp_path: Path, kill: Callable[[Mirror, Bench], None]
) -> None:
    """A dead janitor or worker: no WATCHDOG=1 after it, STATUS= and status name it, exit 1."""
    notifier = RecordingNotifier()
    with bench(tmp_path) as b:
        b.write("a.txt", b"a")
        with running(b, notifier, workers=2) as (daemon, outcome):
            wait_until(b.converged, what="first sync")
            wait_until(lambda: "WATCHDOG=1" in notifier.sent, what="a first ping")
            kill(daemon, b)
            wait_until(lambda: any("died" in m for m in notifier.sent), what="STATUS names it")
            seen = next(i for i, m in enumerate(notifier.sent) if "died" in m)
            turns = notifier.turns
            wait_until(lambda: notifier.turns >= turns + 3, what="three more turns")
            paused = status_data(b.settings())["paused"]
    after = notifier.sent[seen:]
    assert [1] == outcome
    assert [] == [m for m in after if m == "WATCHDOG=1"]
    assert any("WATCHDOG=1" == m for m in notifier.sent[:seen])
    assert 1 == len([p for p in paused if "died" in p])


# --- item 13: a watcher thread that dies is restarted ------------------------------------------


def poison_once(
    monkeypatch: pytest.MonkeyPatch, owner: Any, name: str, hits: Callable[[Any], bool],
    error: BaseException,
) -> list[Any]:
    """Make ``owner.name(event)`` raise ``error`` for the first event ``hits`` accepts (the
    thread running it dies of it); return the events it was raised for."""
    real = getattr(owner, name)
    poisoned: list[Any] = []

    def method(self: Any, event: Any) -> None:
        if not poisoned and hits(event):
            poisoned.append(event)
            raise error
        real(self, event)

    monkeypatch.setattr(owner, name, method)
    return poisoned


def restarted_and_synced(tmp_path: Path, trigger: Callable[[Bench], str]) -> list[Any]:
    """A running daemon; ``trigger`` kills a watcher thread and names the file it made, which
    must still be synced, and so must a file written after. Returns the logs."""
    with bench(tmp_path) as b, capture_logs() as logs:
        b.write("a.txt", b"a")
        with b.running(rescan_interval_seconds=3600):
            wait_until(b.converged, what="first sync")
            missed = trigger(b)
            wait_until(lambda: missed in b.remote(), what="what the dead thread missed, synced")
            b.write("after.txt", b"seen by the restarted watcher")
            wait_until(b.converged, what="later changes synced")
    return logs


@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")
def test_a_dead_watcher_is_restarted_and_what_it_missed_is_scanned(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The observer thread killed by an event (a deep tree moved in) is restarted, then rescans."""
    poisoned = poison_once(
        monkeypatch, watcher._Handler, "on_any_event",
        lambda event: os.path.basename(os.fsdecode(event.src_path)) == "deep",
        RecursionError("maximum recursion depth exceeded"),
    )

    def move_a_tree_in(b: Bench) -> str:
        deep = tmp_path / "outside" / "deep" / "er"
        deep.mkdir(parents=True)
        (deep / "f.txt").write_bytes(b"in the tree moved in")
        os.rename(tmp_path / "outside" / "deep", b.root / "deep")
        return "deep/er/f.txt"

    logs = restarted_and_synced(tmp_path, move_a_tree_in)
    assert (1, 1) == (len(poisoned), len(events(logs, "watcher died; restarting")))


@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")
def test_a_dead_inotify_reader_is_restarted_and_what_it_missed_is_scanned(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The inotify reader thread killed by an event (a watchdog bug) is noticed although the
    observer and its emitter live on: the watcher is restarted and the file it missed synced."""
    poisoned = poison_once(
        monkeypatch, watcher.InotifyFD, "handle_event",
        lambda event: b"poison" in (event.name or b""),
        RuntimeError("a watchdog bug on this event"),
    )

    def write_the_poison(b: Bench) -> str:
        b.write("poison.txt", b"the event that kills the reader")
        return "poison.txt"

    logs = restarted_and_synced(tmp_path, write_the_poison)
    assert (1, 1) == (len(poisoned), len(events(logs, "watcher died; restarting")))


class CountingNotifier(Notifier):
    """A Notifier under a watchdog whose every ping is due (its clock leaps 1000 s a call),
    recording what it would send instead of sending it."""

    def __init__(self) -> None:
        super().__init__({"NOTIFY_SOCKET": "/nonexistent/notify", "WATCHDOG_USEC": "2000000"},
                         clock=itertools.count(0.0, 1000.0).__next__)
        self.sent: list[str] = []

    def send(self, message: str) -> None:
        self.sent.append(message)


def test_a_long_rescan_pings_the_watchdog_from_inside(tmp_path: Path) -> None:
    """The loop thread is busy for the whole of a rescan: a tree big enough to scan for longer
    than WatchdogSec would get a live daemon killed (and scanning again from the start). The
    scan pings at each directory it reads, so a rescan of 150 directories sends about 150."""
    notifier = CountingNotifier()
    with bench(tmp_path) as b, capture_logs() as logs:
        for i in range(150):
            b.write(f"d{i:03d}/f.txt", b"x")
        daemon = b.daemon(rescan_interval_seconds=3600)
        stop, ready = threading.Event(), threading.Event()
        thread = threading.Thread(target=run_daemon, args=(daemon, stop, ready.set, notifier),
                                  daemon=True)
        thread.start()
        try:
            assert ready.wait(30), "daemon did not become ready"
            wait_until(b.converged, what="first sync")
            before = notifier.sent.count("WATCHDOG=1")
            daemon.request_rescan("the test")
            wait_until(lambda: len(events(logs, "scanned")) == 2, what="the rescan")
            during = notifier.sent.count("WATCHDOG=1") - before
        finally:
            stop.set()
            thread.join(30)
            daemon.close()
    assert during >= 150


# --- item 14: the queue overflow storm ---------------------------------------------------------


def test_an_overflowing_scan_waits_for_the_queue_to_drain_before_rescanning(
    tmp_path: Path,
) -> None:
    """After marks were dropped the loop does not rescan at once, only below the low-water mark."""
    with bench(tmp_path) as b, b.daemon() as daemon:
        for i in range(20):
            b.write(f"f{i:02}.txt", b"%d" % i)
        daemon.queue.max_size = 6
        daemon.scan()
        full = (daemon.queue.overflowed, daemon.wants_rescan())
        for _ in range(3):  # three paths handed out and finished: 3 = max_size / 2 left
            path = daemon.queue.get(timeout=5)
            assert path is not None
            daemon.queue.done(path)
        drained = daemon.wants_rescan()
        daemon.rescan()
        again = daemon.wants_rescan()
    assert ((True, False), True, False) == (full, drained, again)


def test_sync_with_an_overflowing_queue_rescans_until_nothing_was_dropped(
    tmp_path: Path,
) -> None:
    """`sync` with 20 new files and room for 5 in the queue uploads all 20 and exits 0."""
    with bench(tmp_path) as b:
        for i in range(20):
            b.write(f"f{i:02}.txt", b"%d" % i)
        with b.daemon() as daemon:
            daemon.queue.max_size = 5
            code = oneshot.sync_once(daemon)
        assert 0 == code
        b.assert_converged()


def test_sync_deletes_more_files_than_the_queue_holds(tmp_path: Path) -> None:
    """20 synced files removed, room for 5 in the queue: `sync` deletes all 20 and exits 0."""
    with bench(tmp_path) as b:
        for i in range(20):
            b.write(f"f{i:02}.txt", b"%d" % i)
        assert 0 == b.sync_once()
        for i in range(20):
            (b.root / f"f{i:02}.txt").unlink()
        with b.daemon(Options(allow_mass_delete=True)) as daemon:
            daemon.queue.max_size = 5
            code = oneshot.sync_once(daemon)
        assert (0, {}) == (code, b.remote())
        b.assert_converged()


def test_sync_that_cannot_get_past_an_overflow_is_not_converged(tmp_path: Path) -> None:
    """Removed files the gate keeps refusing fill the queue every round: `sync` says so, exit 1."""
    with bench(tmp_path) as b:
        for i in range(20):
            b.write(f"f{i:02}.txt", b"%d" % i)
        assert 0 == b.sync_once()
        for i in range(20):
            (b.root / f"f{i:02}.txt").unlink()
        with b.daemon() as daemon:
            daemon.queue.max_size = 5

            def refuse(synced: int, root_problem: str | None) -> list[str]:
                daemon.gate.refused = "refusing to delete them (a test's gate)"
                return []

            daemon.gate.approve = refuse  # type: ignore[method-assign]
            code = oneshot.sync_once(daemon)
            problems = daemon.problems()
    assert 1 == code
    assert ["refusing to delete them (a test's gate)", "queue overflowed"] == [
        problems[0], problems[1][:16]
    ]


# --- item 17: a root that is not the directory first synced stops all work ---------------------


def _replace_root(b: Bench) -> Path:
    """Move the root aside and put another directory in its place (a failed mount, say)."""
    away = b.tmp / "root.away"
    os.rename(b.root, away)
    b.root.mkdir()
    b.write("a.txt", b"a")
    b.write("stranger.txt", b"a file of the directory that took the root's place")
    return away


def test_sync_in_a_replaced_root_does_nothing_and_says_why(tmp_path: Path) -> None:
    """A replaced root: no upload, no delete, exit 1, status paused; its return resumes."""
    with bench(tmp_path) as b:
        b.write("a.txt", b"a")
        b.write("b.txt", b"b")
        assert 0 == b.sync_once()
        away = _replace_root(b)
        b.emu.reset_stats()
        with b.daemon(Options(allow_mass_delete=True)) as daemon:
            code = oneshot.sync_once(daemon)
            problems = daemon.problems()
        sent = b.counts()
        status = status_data(b.settings())
        exit_status = print_status(b.settings())
        os.rename(b.root, tmp_path / "stranger")
        os.rename(away, b.root)
        back = b.sync_once()
        status_back = status_data(b.settings())["paused"]
        b.assert_converged()
    assert (1, {}) == (code, sent)
    assert 1 == len(problems) and "not the directory first synced" in problems[0]
    assert problems == status["paused"] and 1 == exit_status
    assert (0, []) == (back, status_back)


def test_accept_new_root_records_the_new_directory(tmp_path: Path) -> None:
    """`sync --accept-new-root` mirrors the replacement and later syncs take it as the root."""
    with bench(tmp_path) as b:
        b.write("a.txt", b"a")
        b.write("b.txt", b"b")
        assert 0 == b.sync_once()
        _replace_root(b)
        accepted = b.sync_once(Options(accept_new_root=True, allow_mass_delete=True))
        local = sorted(b.local())
        remote = sorted(b.remote())
        again = b.sync_once()
    assert (0, 0) == (accepted, again)
    assert ["a.txt", "stranger.txt"] == local == remote


def test_cli_sync_exit_code_and_accept_new_root_flag(tmp_path: Path) -> None:
    """`syncd sync` in a replaced root: exit 1, last line names the root; the flag accepts it."""
    with bench(tmp_path) as b:
        b.write("a.txt", b"a")
        config = tmp_path / "c.toml"
        config.write_text(
            f'root = "{b.root}"\n[remote]\nbase_url = "{b.emu.base_url}"\n'
            f'[sync]\nsettle_seconds = 0\n[state]\njournal = "{b.tmp / "state" / "j.db"}"\n'
            '[log]\nformat = "json"\n'
        )

        def sync(*flags: str) -> subprocess.CompletedProcess[str]:
            return subprocess.run(
                [sys.executable, "-m", "syncd", "sync", "--config", str(config), *flags],
                capture_output=True, text=True, timeout=60,
                env={**os.environ, "ANTHROPIC_API_KEY": API_KEY},
            )

        assert 0 == sync().returncode
        _replace_root(b)
        refused = sync()
        accepted = sync("--accept-new-root")
    last = refused.stderr.strip().splitlines()[-1]
    assert (1, 0) == (refused.returncode, accepted.returncode), accepted.stderr
    assert last.startswith(f"syncd: root {b.root} is not the directory first synced")


def test_running_daemon_pauses_everything_while_the_root_is_replaced(tmp_path: Path) -> None:
    """The loop: a replaced root pauses uploads and deletions, says so, and resumes on return."""
    with bench(tmp_path) as b:
        b.write("a.txt", b"a")
        with b.running() as daemon:
            wait_until(b.converged, what="first sync")
            uploads = b.emu.stats()["upload"]
            away = _replace_root(b)
            daemon.request_rescan("as a watcher hint or a timer would")
            wait_until(lambda: bool(status_data(b.settings())["paused"]), what="pause published")
            line = status_line(daemon)
            paused_uploads = b.emu.stats()["upload"]
            os.rename(b.root, tmp_path / "stranger")
            os.rename(away, b.root)
            b.write("c.txt", b"written while the root was away")
            wait_until(lambda: not status_data(b.settings())["paused"], what="resumed")
            wait_until(b.converged, what="converged after the root came back")
        b.assert_converged()
    assert uploads == paused_uploads
    assert "PAUSED: root" in line


# --- item 21: unreadable folders and files are reported, and `sync` does not wait on them -----


@contextmanager
def chmod(path: Path, mode: int) -> Iterator[None]:
    """Set ``path``'s mode for the block, then make it removable again."""
    os.chmod(path, mode)
    try:
        yield
    finally:
        os.chmod(path, 0o755)


def _errors_output(b: Bench, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    capsys.readouterr()
    code = print_errors(b.settings())
    return code, capsys.readouterr().out


@needs_permissions
def test_an_unreadable_folder_is_a_warning_and_a_row_in_errors(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A folder that cannot be listed: warned, listed by `syncd errors` and status, exit 1."""
    with bench(tmp_path) as b:
        b.write("ok.txt", b"ok")
        b.write("locked/a.txt", b"a")
        with chmod(b.root / "locked", 0), capture_logs() as logs:
            code = b.sync_once()
            errors = _errors_output(b, capsys)
            unreadable = status_data(b.settings())["unreadable"]
    assert 1 == code
    assert ["locked"] == [e["path"] for e in logs if e["event"] == "skipped"]
    assert 1 == errors[0] and "locked" in errors[1]
    assert ["locked"] == [u["path"] for u in unreadable]


@needs_permissions
def test_new_files_in_a_folder_without_search_permission_are_reported(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """r but no x: names show, stats do not; warned and listed, never skipped silently."""
    with bench(tmp_path) as b:
        b.write("ok.txt", b"ok")
        b.write("nox/new.txt", b"new")
        with chmod(b.root / "nox", 0o644), capture_logs() as logs:
            code = b.sync_once()
            errors = _errors_output(b, capsys)
    assert 1 == code
    assert ["nox"] == [e["path"] for e in logs if e["event"] == "skipped"]
    assert 1 == errors[0] and "nox" in errors[1]


@needs_permissions
def test_sync_reports_an_unreadable_file_without_waiting_for_its_backoff(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """One unreadable file: `sync` finishes at once with exit 1; `syncd errors` names the file."""
    with bench(tmp_path) as b:
        b.write("ok.txt", b"ok")
        secret = b.write("secret.txt", b"s")
        with chmod(secret, 0):
            codes: list[int] = []
            worker = threading.Thread(target=lambda: codes.append(b.sync_once()), daemon=True)
            worker.start()
            worker.join(timeout=30)
            errors = _errors_output(b, capsys)
        remote = sorted(b.remote())
    assert [1] == codes
    assert 1 == errors[0] and "secret.txt" in errors[1]
    assert ["ok.txt"] == remote


# --- item 23: every pause is named in status and STATUS= ---------------------------------------


def test_status_line_names_a_journal_pause(tmp_path: Path) -> None:
    """While the journal cannot be written, STATUS= says so with the reason."""
    with bench(tmp_path) as b, b.daemon() as daemon:
        daemon.on_journal_error(_journal_error("attempt to write a readonly database"))
        line = status_line(daemon)
    assert "PAUSED: journal not writable (attempt to write a readonly database)" in line


def _journal_error(message: str) -> Any:
    from syncd.errors import JournalError

    return JournalError(message)


def test_status_says_the_journal_is_not_writable_on_a_read_only_filesystem(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`syncd status` reads the journal; it names a read-only filesystem under it as a pause."""
    with bench(tmp_path) as b:
        b.write("a.txt", b"a")
        assert 0 == b.sync_once()
        journal_dir = os.fsdecode(b.settings().journal_path.parent)
        real = os.statvfs

        def statvfs(path: Any) -> os.statvfs_result:
            info = real(path)
            if os.fsdecode(path) != journal_dir:
                return info
            fields = list(info)
            fields[8] |= os.ST_RDONLY
            return os.statvfs_result(fields)

        monkeypatch.setattr(os, "statvfs", statvfs)
        paused = status_data(b.settings())["paused"]
        code = print_status(b.settings())
    assert ["journal not writable"] == [p[:20] for p in paused]
    assert 1 == code


def test_status_reads_pauses_from_one_list(tmp_path: Path) -> None:
    """Each pause the daemon publishes (root, deletions, threads) shows in `status`."""
    with bench(tmp_path) as b:
        assert 0 == b.sync_once()
        with Journal.open(b.settings().journal_path, os.fsdecode(b.root), b.emu.base_url) as j:
            j.set_meta("root_refused", "root X is not the directory first synced")
            j.set_meta("deletions_refused", "refusing to delete 9 of 10 remote files")
            j.set_meta("threads_dead", "janitor thread died")
        paused = status_data(b.settings())["paused"]
    assert [
        "root X is not the directory first synced",
        "refusing to delete 9 of 10 remote files",
        "janitor thread died",
    ] == paused


def test_a_log_line_to_a_closed_stream_is_dropped_and_the_worker_lives_on() -> None:
    """stderr closed under the daemon (or a broken pipe): logging the failure of a turn must not
    itself kill the worker; the line is dropped and the next path is processed."""
    stream = io.StringIO()
    logs.configure("info", "json", stream)
    stream.close()
    try:
        test_a_worker_survives_an_error_outside_a_path()
    finally:
        logs.configure("info", "json", sys.stderr)


def test_a_failure_after_the_threads_started_stops_every_one_of_them(tmp_path: Path) -> None:
    """Whatever fails once the workers and the janitor run (here the READY callback) stops
    them before run_daemon returns: no thread is left writing to a journal about to close."""
    with bench(tmp_path) as b, b.daemon() as daemon:
        b.write("a.txt", b"one")
        before = set(threading.enumerate())

        def ready() -> None:
            raise RuntimeError("READY could not be sent")

        with pytest.raises(RuntimeError, match="READY could not be sent"):
            run_daemon(daemon, threading.Event(), on_ready=ready)
        left = [t.name for t in set(threading.enumerate()) - before
                if t.name.startswith(("syncd-worker", "syncd-janitor"))]
        assert ([], True) == (left, daemon.drained)


def test_no_path_is_taken_once_a_fatal_error_stopped_the_daemon(tmp_path: Path) -> None:
    with bench(tmp_path) as b, b.daemon() as daemon:
        working_before = daemon.working()
        daemon.on_fatal(RuntimeError("the key was rejected"))
        daemon.on_fatal(RuntimeError("a second one"))
        assert (True, False, "the key was rejected") == (
            working_before, daemon.working(), str(daemon.fatal))
