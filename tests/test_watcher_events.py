"""What the watcher asks the kernel for (real inotify)."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

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
