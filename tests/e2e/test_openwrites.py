"""A file open for writing (a stalled download) is not uploaded until it is closed."""

from __future__ import annotations

from pathlib import Path

from syncd.local.openwrites import RECHECK, OpenWrites
from syncd.local.watcher import Hints, start_watcher, stop_watcher
from tests.conftest import Recorder
from tests.syncenv import bench, wait_until


def test_a_written_file_is_held_until_closed(recorder: Recorder) -> None:
    """written() holds the path (rechecked every RECHECK s); closed() releases it."""
    writes = OpenWrites(settle_max=60, clock=recorder.clock)
    writes.written("dl.iso")
    held = writes.hold_until("dl.iso")
    writes.closed("dl.iso")
    assert (recorder.now + RECHECK, None) == (held, writes.hold_until("dl.iso"))


def test_a_writer_that_never_closes_is_released_at_the_settle_cap(recorder: Recorder) -> None:
    """A log file kept open is synced settle_max seconds after its first write, as before."""
    writes = OpenWrites(settle_max=60, clock=recorder.clock)
    writes.written("app.log")
    recorder.now += 59.5
    almost = writes.hold_until("app.log")
    recorder.now += 0.5
    assert (recorder.now, None) == (almost, writes.hold_until("app.log"))


def test_inotify_reports_the_open_writer_and_its_close(tmp_path: Path) -> None:
    """With a real watch: a half-written file is held; closing it releases the hold."""
    writes = OpenWrites(settle_max=600)
    marked: list[str] = []
    observer = start_watcher(tmp_path, Hints(marked.append, lambda _: None, lambda _: None,
                                             writes))
    assert observer is not None
    try:
        with open(tmp_path / "download.bin", "wb") as fh:
            fh.write(b"first half")
            fh.flush()
            wait_until(lambda: writes.hold_until("download.bin") is not None, 10,
                       "the write to be seen")
        wait_until(lambda: writes.hold_until("download.bin") is None, 10, "the close")
    finally:
        stop_watcher(observer)
    assert "download.bin" in marked


def test_a_worker_defers_a_held_path_and_uploads_it_once_closed(tmp_path: Path) -> None:
    """While held, the worker sends nothing; after the close, one upload of the whole file."""
    with bench(tmp_path) as b:
        b.write("dl.bin", b"complete content")
        with b.daemon(settle_seconds=0) as daemon:
            daemon.ctx.writes = writes = OpenWrites(settle_max=600)
            writes.written("dl.bin")
            daemon.syncer.process("dl.bin")
            held = (b.emu.stats()["upload"], daemon.journal.get("dl.bin"))
            writes.closed("dl.bin")
            daemon.syncer.process("dl.bin")
            assert ((0, None), 1) == (held, b.emu.stats()["upload"])


def test_a_created_event_for_an_unchanged_synced_file_holds_nothing(tmp_path: Path) -> None:
    """watchdog reports every file under each new directory as "created" again, once per level
    of a deep tree: for a file already synced and unchanged, that is no write in progress, so
    it is neither held nor queued for later (a 300-deep tree kept one path pending for tens of
    seconds; found by the simulation)."""
    with bench(tmp_path) as b:
        b.write("deep/a/b/bottom.txt", b"at the bottom")
        with b.daemon(settle_seconds=0) as daemon:
            daemon.syncer.process("deep/a/b/bottom.txt")
            uploads = b.emu.stats()["upload"]
            daemon.ctx.writes = writes = OpenWrites(settle_max=600)
            writes.written("deep/a/b/bottom.txt")  # the synthetic "created"
            daemon.syncer.process("deep/a/b/bottom.txt")
            after = (daemon.queue.depth(), writes.hold_until("deep/a/b/bottom.txt"),
                     b.emu.stats()["upload"])
            assert ((0, 0), None, uploads) == after == ((0, 0), None, 1)
