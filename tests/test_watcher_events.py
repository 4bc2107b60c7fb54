"""What the watcher asks the kernel for (real inotify)."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from syncd.openwrites import OpenWrites
from syncd.watcher import Hints, start_watcher, stop_watcher
from tests.syncenv import wait_until


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
