"""The watcher's handler driven by synthetic watchdog events (no inotify)."""

from __future__ import annotations

from pathlib import Path

from watchdog.events import DirDeletedEvent, FileModifiedEvent, FileMovedEvent

from syncd.errors import JournalError
from syncd.local.watcher import Hints, _Handler


def test_an_event_that_cannot_be_handled_asks_for_a_rescan_and_the_handler_lives_on(
    tmp_path: Path,
) -> None:
    """`mark_under` reads the journal; a journal that cannot be read must not kill the
    observer thread: the event becomes a rescan, and the next event is handled."""
    marked: list[str] = []
    rescans: list[str] = []

    def unreadable(_rel_dir: str) -> None:
        raise JournalError("journal is closed")

    handler = _Handler(tmp_path, Hints(marked.append, unreadable, rescans.append))
    handler.dispatch(DirDeletedEvent(str(tmp_path / "new")))
    handler.dispatch(FileModifiedEvent(str(tmp_path / "a.txt")))
    assert (["a.txt"], ["a watcher event could not be handled"]) == (marked, rescans)


def test_a_move_marks_both_ends_and_a_path_outside_root_is_not_marked(tmp_path: Path) -> None:
    marked: list[str] = []
    handler = _Handler(tmp_path, Hints(marked.append, lambda _: None, lambda _: None))
    handler.dispatch(FileMovedEvent(str(tmp_path / "d/a.txt"), str(tmp_path / "d/b.txt")))
    handler.dispatch(FileModifiedEvent(str(tmp_path.parent / "elsewhere.txt")))
    assert ["d/a.txt", "d/b.txt"] == marked
