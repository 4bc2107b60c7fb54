"""Journal.counts() kept as counters: equal to a full count after every kind of change, and
cheap when nothing changed (the daemon's status line asks for them twice a second)."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from syncd.errors import JournalError
from syncd.journal import Journal
from syncd.model import Failure, JournalCounts, LocalStat
from tests.unit.test_journal import open_journal, synced

STAT = LocalStat(10, 1_700_000_000_000_000_000, 42)


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "state.db"


@pytest.fixture
def journal(db: Path) -> Iterator[Journal]:
    with open_journal(db) as j:
        yield j


def full_count(db: Path) -> JournalCounts:
    """What a separate reader counts from scratch (as `syncd status` does)."""
    with Journal.open_readonly(db) as reader:
        return reader.counts()


def failure(kind: str) -> Failure:
    return Failure(kind, "boom", 1, 99.0, STAT)


def seed(j: Journal) -> None:
    j.commit_upload("a", synced("file_a", size=10), None)
    j.commit_upload("b", synced("file_b", size=20), None)
    j.commit_upload("c", synced("file_c", size=30), None)


CHANGES: dict[str, Callable[[Journal], object]] = {
    "new copy": lambda j: j.commit_upload("d", synced("file_d", size=5), None),
    "replaced copy": lambda j: j.commit_upload("a", synced("file_a2", size=11), None),
    "same copy again": lambda j: j.commit_upload("a", synced("file_a", size=12), None),
    "copy with its intent": lambda j: j.commit_upload(
        "e", synced("file_e"), j.add_intent("e", "e", STAT, 1.0).id),
    "touch": lambda j: j.update_stat("b", LocalStat(99, 1, 2), 2.0),
    "touch without copy": lambda j: j.update_stat("zz", LocalStat(99, 1, 2), 2.0),
    "permanent failure": lambda j: j.record_failure("b", failure("permanent")),
    "transient failure": lambda j: j.record_failure("b", failure("transient")),
    "failure of a new path": lambda j: j.record_failure("new", failure("permanent")),
    "failure then cleared": lambda j: (j.record_failure("b", failure("transient")),
                                       j.clear_failure("b")),
    "failure of a new path cleared": lambda j: (j.record_failure("n", failure("transient")),
                                                j.clear_failure("n")),
    "failure replaced": lambda j: (j.record_failure("b", failure("transient")),
                                   j.record_failure("b", failure("permanent"))),
    "removed": lambda j: j.remove("c"),
    "forgotten": lambda j: j.forget("c"),
    "gone": lambda j: j.mark_gone("a", "file_a", "missing"),
    "gone then replaced": lambda j: (j.mark_gone("a", "file_a", "missing"),
                                     j.commit_upload("a", synced("file_a3"), None)),
    "intent": lambda j: j.add_intent("x", "x", STAT, 1.0),
    "intent dropped": lambda j: j.drop_intent(j.add_intent("x", "x", STAT, 1.0).id),
    "tombstone": lambda j: j.add_tombstone("file_t", "t", "t", "orphan"),
    "tombstone twice": lambda j: (j.add_tombstone("file_t", "t", "t", "orphan"),
                                  j.add_tombstone("file_t", "t", "t", "orphan")),
    "tombstone paid": lambda j: (j.add_tombstone("file_t", "t", "t", "orphan"),
                                 j.drop_tombstone("file_t")),
    "tombstone deferred": lambda j: (j.add_tombstone("file_t", "t", "t", "orphan"),
                                     j.defer_tombstone("file_t", 5.0, "later")),
    "tombstone lifted by its copy": lambda j: (j.add_tombstone("file_t", "t", "t", "orphan"),
                                               j.commit_upload("t", synced("file_t"), None)),
}


@pytest.mark.parametrize("change", CHANGES, ids=list(CHANGES))
def test_counts_equal_a_full_count_after_each_change(journal: Journal, db: Path,
                                                     change: str) -> None:
    """Whatever changed, the daemon's counts equal a reader's count from scratch."""
    journal.counts()  # the counters exist before the change
    seed(journal)
    CHANGES[change](journal)
    assert full_count(db) == journal.counts()


def test_counts_see_another_connections_commit(journal: Journal, db: Path) -> None:
    """A write by another connection (a repair by hand, say) is counted too."""
    seed(journal)
    journal.counts()
    with sqlite3.connect(db) as other:
        other.execute("DELETE FROM files WHERE path = ?", (b"a",))
    other.close()
    assert full_count(db) == journal.counts()
    assert 2 == journal.counts().synced


def test_a_failed_transaction_leaves_the_counts_alone(journal: Journal, db: Path) -> None:
    """A write rolled back changes no counter."""
    seed(journal)
    journal.counts()
    with pytest.raises(JournalError), journal._write() as conn:
        conn.execute("DELETE FROM files")
        conn.execute("INSERT INTO no_such_table VALUES (1)")
    assert JournalCounts(3, 60, 0, 0, 0, 0, 0) == journal.counts()


def test_unchanged_counts_do_not_read_the_tables(journal: Journal) -> None:
    """Asking again with nothing changed reads no table (it used to count every row)."""
    seed(journal)
    journal.counts()
    statements: list[str] = []
    journal._live().set_trace_callback(statements.append)
    journal.counts()
    journal._live().set_trace_callback(None)
    scans = [s for s in statements if any(f"FROM {t}" in s for t in
                                          ("files", "intents", "tombstones"))]
    assert [] == scans


def test_counts_of_many_rows(journal: Journal, db: Path) -> None:
    """Bulk changes (a first sync, a mass removal) keep the counters exact."""
    for i in range(300):
        journal.commit_upload(f"p{i:03}", synced(f"file_{i}", size=i), None)
    for i in range(0, 300, 3):
        journal.remove(f"p{i:03}")
    assert full_count(db) == journal.counts()
