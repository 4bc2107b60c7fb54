"""The janitor's turn, with a daemon over the in-memory service (no sockets): owed deletions
paid, the periodic reconcile run when due, and tried again soon when it fails."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import cast

import pytest

from syncd.config import load_settings
from syncd.engine.mirror import Mirror
from syncd.errors import ServerError
from syncd.remote.client import FilesClient
from syncd.service.loop import RECONCILE_RETRY, Janitor
from tests.fakes import FakeFiles

INTERVAL = 600.0


@pytest.fixture
def daemon(tmp_path: Path) -> Iterator[tuple[Mirror, FakeFiles]]:
    root = tmp_path / "root"
    root.mkdir()
    settings = load_settings(
        None, root=root, remote={"base_url": "https://fake.invalid"},
        state={"journal": tmp_path / "state" / "journal.db"},
        sync={"reconcile_interval_seconds": INTERVAL},
    )
    fake = FakeFiles()
    with Mirror(settings, client=cast(FilesClient, fake)) as d:
        yield d, fake


def test_a_due_turn_pays_owed_deletions_and_reconciles(daemon: tuple[Mirror, FakeFiles]) -> None:
    d, fake = daemon
    old = fake.add("a.txt", 5)
    d.journal.add_tombstone(old.id, "a.txt", "a.txt", "replaced")
    janitor = Janitor(d, threading.Event(), first_reconcile=0.0)
    before = time.monotonic()
    next_due = janitor._turn(before - 1)
    ops = [call[0] for call in fake.calls]
    assert (["delete", "iter_files", "list_page"], [], {}) == (
        ops, d.journal.tombstones(), fake.files)
    assert before + INTERVAL <= next_due <= time.monotonic() + INTERVAL


def test_a_failed_reconcile_is_tried_again_soon_not_at_the_interval(
    daemon: tuple[Mirror, FakeFiles],
) -> None:
    d, fake = daemon
    fake.fail("list_page", ServerError("overloaded", error_type="overloaded_error"))
    janitor = Janitor(d, threading.Event(), first_reconcile=0.0)
    before = time.monotonic()
    next_due = janitor._turn(before - 1)
    assert before + RECONCILE_RETRY <= next_due < before + INTERVAL
    assert d.fatal is None


def test_a_turn_before_the_reconcile_is_due_sends_no_listing(
    daemon: tuple[Mirror, FakeFiles],
) -> None:
    d, fake = daemon
    later = time.monotonic() + 100
    assert (later, []) == (Janitor(d, threading.Event(), 100.0)._turn(later), fake.calls)
