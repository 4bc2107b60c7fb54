"""What the watcher asks the kernel for (real inotify)."""

from __future__ import annotations

import errno
import os
import queue
import time
from collections import Counter
from pathlib import Path

import pytest
from structlog.testing import capture_logs
from watchdog.observers.api import EventQueue, ObservedWatch
from watchdog.observers.inotify_c import InotifyFD

from syncd.local import watcher
from syncd.local.openwrites import OpenWrites
from syncd.local.watcher import (
    OVERFLOW_REASON,
    WATCHED_EVENTS,
    Hints,
    OverflowEmitter,
    overflow_hint,
    start_watcher,
    stop_watcher,
    watcher_alive,
)
from tests.syncenv import bench, wait_until


def watch(root: Path, marked: Counter[str]) -> Hints:
    return Hints(lambda p: marked.update([p]), lambda _: None, lambda _: None)


def test_reads_do_not_reach_the_handler(tmp_path: Path) -> None:
    """Opening and reading files (as syncd itself does) produces no marks at all."""
    (tmp_path / "a.txt").write_bytes(b"content")
    marked: Counter[str] = Counter()
    observer = start_watcher(tmp_path, watch(tmp_path, marked))
    assert observer is not None
    try:
        for _ in range(50):
            (tmp_path / "a.txt").read_bytes()
        (tmp_path / "b.txt").write_bytes(b"sentinel")  # events arrive in order: b after reads
        wait_until(lambda: marked["b.txt"] > 0, 30, "the sentinel")
    finally:
        stop_watcher(observer)
    assert 0 == marked["a.txt"]


def test_a_creation_alone_holds_nothing_and_a_write_does(tmp_path: Path) -> None:
    """watchdog reports every file it finds under a new directory as created, with no close to
    follow (once per level of a deep tree): only a write opens a hold. Real inotify: a file
    written at the bottom of a chain made in one go is marked and never held."""
    writes = OpenWrites(settle_max=600)
    marked: Counter[str] = Counter()
    observer = start_watcher(tmp_path, Hints(lambda p: marked.update([p]), lambda _: None,
                                             lambda _: None, writes))
    assert observer is not None
    bottom = tmp_path.joinpath(*"abcdefghij" * 4)
    try:
        bottom.mkdir(parents=True)
        (bottom / "bottom.txt").write_bytes(b"written and closed")
        rel = str((bottom / "bottom.txt").relative_to(tmp_path))
        (tmp_path / "sentinel").write_bytes(b"")
        wait_until(lambda: marked["sentinel"] > 0 and marked[rel] > 0, 30, "both marks")
        held_after_close = writes.hold_until(rel)
        with open(tmp_path / "open.log", "wb") as fh:
            fh.write(b"half")
            fh.flush()
            wait_until(lambda: writes.hold_until("open.log") is not None, 30, "the write")
    finally:
        stop_watcher(observer)
    assert held_after_close is None


# --- issue 11: an inotify queue overflow is answered with one rescan ---------------------------


def _max_queued_events() -> int:
    return int(Path("/proc/sys/fs/inotify/max_queued_events").read_text())


def _drain_until(events: EventQueue, path: Path, timeout: float) -> None:
    """Take events off ``events`` until one for ``path`` (bounded)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            event, _watch = events.get(timeout=0.5)
        except queue.Empty:
            continue
        if os.fsdecode(event.src_path) == str(path):
            return
    raise AssertionError(f"timed out after {timeout} s waiting for an event on {path}")


def test_an_inotify_overflow_asks_for_one_rescan(tmp_path: Path) -> None:
    """Real inotify: more events than the kernel queue holds, queued while nothing reads the
    instance, overflow it; watchdog re-adds its watches and the watcher asks for exactly one
    rescan, with one warning naming the sysctl. Events after the overflow still arrive."""
    reasons: list[str] = []
    hints = Hints(lambda _: None, lambda _: None, reasons.append)
    fd = InotifyFD()  # a real inotify instance whose reader thread starts only later
    events = EventQueue()
    watch = ObservedWatch(str(tmp_path), recursive=True, event_filter=list(WATCHED_EVENTS))
    emitter = OverflowEmitter(events, watch, event_filter=list(WATCHED_EVENTS), inotify_fd=fd,
                              on_overflow=overflow_hint(hints))
    emitter.start()  # adds the watches
    try:
        with open(tmp_path / "a.txt", "wb", buffering=0) as a, \
                open(tmp_path / "b.txt", "wb", buffering=0) as b:
            for _ in range(_max_queued_events()):  # alternate: equal neighbours would merge
                a.write(b"a")
                b.write(b"b")
        with capture_logs() as logs:
            fd.start()  # reads the full queue: its last event is the overflow
            wait_until(lambda: bool(reasons), 30, "the overflow")
            sentinel = tmp_path / "after.txt"
            sentinel.write_bytes(b"after the overflow")
            _drain_until(events, sentinel, 30)
    finally:
        emitter.stop()
        emitter.join(5)
        fd.stop()
        fd.join(5)
    warnings = [e for e in logs if e["log_level"] == "warning"]
    assert [OVERFLOW_REASON] == reasons
    assert 1 == len(warnings)
    assert "fs.inotify.max_queued_events" in warnings[0]["fix"]


def test_overflows_before_the_rescan_coalesce_into_one(tmp_path: Path) -> None:
    """Three overflows before the loop's next turn: the daemon runs one rescan for them."""
    with bench(tmp_path) as b, b.daemon() as daemon:
        overflowed = overflow_hint(daemon.hints())
        for _ in range(3):
            overflowed()
        with capture_logs() as logs:
            for _turn in range(5):  # the loop's turns, bounded
                if daemon.wants_rescan():
                    daemon.rescan()
    rescans = [e.get("reason") for e in logs if e["event"] == "rescanning"]
    assert [OVERFLOW_REASON] == rescans


WATCHES_NEEDED = 25_000


def _enough_watches() -> None:
    """Raise the per-user watch limit if it is too low and this process may; else skip."""
    limit = Path("/proc/sys/fs/inotify/max_user_watches")
    if int(limit.read_text()) >= WATCHES_NEEDED:
        return
    try:
        limit.write_text(str(WATCHES_NEEDED * 2))
    except OSError as exc:
        pytest.skip(f"fs.inotify.max_user_watches is below {WATCHES_NEEDED} and cannot be "
                    f"raised here ({exc}); run `sudo sysctl fs.inotify.max_user_watches=524288`")


def _twenty_thousand_directories(root: Path) -> list[Path]:
    """20 x 10 x 10 x 10 leaves (22,220 directories, 4 deep); returns the leaves."""
    leaves = [root / f"a{a:02d}" / f"b{b}" / f"c{c}" / f"d{d}"
              for a in range(20) for b in range(10) for c in range(10) for d in range(10)]
    for leaf in leaves:
        leaf.mkdir(parents=True)
    return leaves


@pytest.mark.timeout(240)
def test_twenty_thousand_directories_idle_without_overflow(tmp_path: Path) -> None:
    """A tree of 20,000+ directories is watched whole; reading all of it (as a rescan does)
    overflows nothing, so no rescan is asked for; an edit at the bottom is marked."""
    _enough_watches()
    root = tmp_path / "root"
    leaves = _twenty_thousand_directories(root)
    deep = leaves[-1] / "deep.txt"
    deep.write_bytes(b"before")
    marked: Counter[str] = Counter()
    reasons: list[str] = []
    observer = start_watcher(root, Hints(lambda p: marked.update([p]), lambda _: None,
                                         reasons.append))
    assert observer is not None
    try:
        kinds = {type(e) for e in observer.emitters}
        for turn in range(3):  # idle, by events: each round ends when its sentinel arrives
            for dirpath, _dirs, files in os.walk(root):
                for name in files:
                    (Path(dirpath) / name).read_bytes()
            (root / f"sentinel{turn}").write_bytes(b"")
            wait_until(lambda r=turn: marked[f"sentinel{r}"] > 0, 60, "the sentinel")
        idle_reasons = list(reasons)
        deep.write_bytes(b"edited deep in the tree")
        rel = str(deep.relative_to(root))
        wait_until(lambda: marked[rel] > 0, 60, "the deep edit")
    finally:
        stop_watcher(observer)
    assert {OverflowEmitter} == kinds
    assert [] == idle_reasons


def _inotify_instances() -> int:
    fds = Path("/proc/self/fd")
    return sum(1 for fd in fds.iterdir()
               if os.path.exists(fd) and "inotify" in os.readlink(fd))


def test_a_refused_watcher_leaves_no_inotify_instance_behind(tmp_path: Path) -> None:
    """A root the kernel will not watch (here: missing) gives None, and the inotify instance
    and reader thread made for it are released: the loop retries every minute."""
    before = _inotify_instances()
    hints = Hints(lambda _: None, lambda _: None, lambda _: None)
    observers = [start_watcher(tmp_path / "missing", hints) for _ in range(3)]
    assert [None, None, None] == observers
    assert before == _inotify_instances()


def test_no_inotify_instance_left_means_scans_only_with_the_fix(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """inotify_init refused (fs.inotify.max_user_instances reached): no watcher, the sysctl
    named in the log, and no exception out of start_watcher (the loop retries later)."""

    def refused() -> None:
        raise OSError(errno.EMFILE, "Too many open files")

    monkeypatch.setattr(watcher, "InotifyFD", refused)
    with capture_logs() as logs:
        observer = start_watcher(tmp_path, watch(tmp_path, Counter()))
    reasons = [e.get("reason", "") for e in logs if e["event"] == "watcher unavailable"]
    assert (None, True) == (observer, any("max_user_instances" in r for r in reasons))


@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")
def test_a_dead_inotify_reader_makes_the_watcher_count_as_dead(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The inotify reader thread killed by an event it cannot handle leaves the observer and
    the emitter running with no event ever again: the loop's supervision must see it."""
    def poisoned(self: object, event: object) -> None:
        raise RuntimeError("a watchdog bug on this event")

    monkeypatch.setattr(watcher.InotifyFD, "handle_event", poisoned)
    observer = start_watcher(tmp_path, watch(tmp_path, Counter()))
    assert observer is not None
    try:
        alive_before = watcher_alive(observer)
        (tmp_path / "a.txt").write_bytes(b"the event that kills the reader")
        wait_until(lambda: not watcher_alive(observer), what="the dead reader noticed")
        emitters_alive = all(e.is_alive() for e in observer.emitters)
        assert (True, True, True) == (alive_before, observer.is_alive(), emitters_alive)
    finally:
        stop_watcher(observer)


def test_a_dead_emitter_makes_the_watcher_count_as_dead(tmp_path: Path) -> None:
    """An emitter thread that ended (killed by an exception) leaves the observer thread running
    with nothing to dispatch: the loop's supervision must see the watcher as dead."""
    observer = start_watcher(tmp_path, watch(tmp_path, Counter()))
    assert observer is not None
    try:
        alive_before = watcher_alive(observer)
        (emitter,) = observer.emitters
        emitter.stop()
        emitter.join(10)
        assert (True, True, False) == (alive_before, observer.is_alive(), watcher_alive(observer))
    finally:
        stop_watcher(observer)
