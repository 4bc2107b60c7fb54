"""The journal's schema 2: expiring copies, renewals and copies marked gone (real SQLite files)."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from syncd import journal as journal_module
from syncd.journal import Journal
from syncd.remote.expiry import mark_expiring
from tests.unit.test_journal import ROOT, URL, open_journal, synced


@pytest.fixture
def journal(tmp_path: Path) -> Iterator[Journal]:
    with open_journal(tmp_path / "j.db") as j:
        yield j


def test_mark_gone_only_while_the_row_holds_that_copy(journal: Journal) -> None:
    """A copy replaced since the plan was made is not marked: the worker already won."""
    journal.commit_upload("a.txt", synced("file_1"), None)
    journal.commit_upload("a.txt", synced("file_2"), None)
    marked = [journal.mark_gone("a.txt", "file_1", "missing"),
              journal.mark_gone("a.txt", "file_2", "missing"),
              journal.mark_gone("a.txt", "file_2", "missing")]
    row = journal.get("a.txt")
    assert ([False, True, False], "missing", "file_2") == (
        marked, row.gone if row else None, row.synced.file_id if row and row.synced else None)


def test_a_new_copy_clears_gone_and_tombstones_the_old_one(journal: Journal) -> None:
    """Make before break: the gone copy's id stays until the new one commits, then is owed."""
    journal.commit_upload("a.txt", synced("file_1"), None)
    journal.mark_gone("a.txt", "file_1", "missing")
    journal.commit_upload("a.txt", synced("file_2"), None)
    row = journal.get("a.txt")
    assert (None, ["file_1"], 0) == (
        row.gone if row else "?", [t.file_id for t in journal.tombstones()],
        journal.counts().reuploads)


def test_copies_are_due_for_renewal_at_80_percent_of_their_lifetime(journal: Journal) -> None:
    """renew_at = synced_at + 0.8 * lifetime; due copies are marked 'renew', lapsed 'expired'."""
    journal.commit_upload("a.txt", replace(synced("file_a"), synced_at=0.0, expires_at=100.0),
                          None)
    journal.commit_upload("b.txt", replace(synced("file_b", name="b.txt"), synced_at=0.0,
                                           expires_at=1000.0), None)
    journal.commit_upload("c.txt", synced("file_c", name="c.txt"), None)  # never expires
    queued: list[str] = []
    assert (80.0, 0) == (journal.next_renewal(), mark_expiring(journal, queued.append, 79.0))
    assert 1 == mark_expiring(journal, queued.append, 80.0)
    assert 1 == mark_expiring(journal, queued.append, 1001.0)
    reasons = {p: (r.gone if (r := journal.get(p)) else None) for p in ("a.txt", "b.txt", "c.txt")}
    assert (["a.txt", "b.txt"], {"a.txt": "renew", "b.txt": "expired", "c.txt": None}) == (
        queued, reasons)
    assert (None, 2) == (journal.next_renewal(), journal.counts().reuploads)


def test_a_version_1_journal_is_migrated_in_place(tmp_path: Path) -> None:
    """A journal written by syncd 0.1 (schema 1) opens, keeps its rows, and gains schema 2."""
    db = tmp_path / "old.db"
    conn = sqlite3.connect(db)
    conn.executescript(journal_module.MIGRATIONS[0] + "PRAGMA user_version = 1;")
    conn.executemany("INSERT INTO meta VALUES (?, ?)",
                     [("root", ROOT), ("base_url", URL), ("name_prefix", "")])
    conn.execute("INSERT INTO files (path, file_id, remote_name, sha256, size, mtime_ns, ino,"
                 " mime_type, synced_at) VALUES (?, 'file_1', 'a.txt', 'ab', 1, 2, 3, 't', 4.0)",
                 (b"a.txt",))
    conn.commit()
    conn.close()
    with Journal.open(db, ROOT, URL) as journal:
        row = journal.get("a.txt")
        assert ("file_1", None, None) == (
            row.synced.file_id if row and row.synced else None,
            row.synced.expires_at if row and row.synced else "?", row.gone if row else "?")
    assert [(journal_module.SCHEMA_VERSION,)] == sqlite3.connect(db).execute(
        "PRAGMA user_version").fetchall()
