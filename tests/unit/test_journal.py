"""The SQLite journal on real files: round trips, byte order, atomicity, locks, binding, damage."""

from __future__ import annotations

import contextlib
import os
import re
import sqlite3
import subprocess
import sys
import textwrap
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from syncd.errors import JournalError, JournalLockedError, JournalMismatchError
from syncd.journal import SCHEMA_VERSION, Journal, lock_holder
from syncd.journal import schema as journal_schema
from syncd.journal.store import journal_error
from syncd.model import Failure, FileRow, Intent, JournalCounts, LocalStat, Synced, Tombstone

ROOT = "/srv/docs"
URL = "https://api.anthropic.com"
REPO = Path(__file__).resolve().parents[2]
LATIN1 = os.fsdecode(b"caf\xe9.txt")  # not UTF-8: decodes to a lone surrogate


def synced(file_id: str = "file_1", size: int = 10, name: str = "a.txt") -> Synced:
    return Synced(file_id, name, "ab" * 32, size, 1_700_000_000_000_000_000, 42, "text/plain", 1.5)


def open_journal(path: Path, **kwargs: str) -> Journal:
    args = {"root": ROOT, "base_url": URL, "name_prefix": ""} | kwargs
    return Journal.open(path, args["root"], args["base_url"], args["name_prefix"])


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "state" / "state.db"


@pytest.fixture
def journal(db: Path) -> Iterator[Journal]:
    with open_journal(db) as j:
        yield j


def raw(path: Path, statement: str) -> list[tuple[object, ...]]:
    """Run one statement on the file behind the journal through a plain sqlite3 connection."""
    with contextlib.closing(sqlite3.connect(path, isolation_level=None)) as conn:
        return conn.execute(statement).fetchall()


def run_python(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


# -- round trips ---------------------------------------------------------------------------


def test_commit_upload_round_trip(journal: Journal) -> None:
    """A committed upload reads back as the same Synced value, with no failure."""
    journal.commit_upload("docs/a.txt", synced(), None)
    assert FileRow("docs/a.txt", synced(), None) == journal.get("docs/a.txt")
    assert LocalStat(10, 1_700_000_000_000_000_000, 42) == synced().stat


def test_get_missing_is_none(journal: Journal) -> None:
    """An unknown path has no row."""
    assert None is journal.get("nope")


def test_non_utf8_path_round_trips(journal: Journal, db: Path) -> None:
    """A path with non-UTF-8 bytes is stored as those bytes and returned intact."""
    journal.commit_upload(LATIN1, synced(), None)
    journal.add_tombstone("file_9", "r", LATIN1, "removed")
    intent = journal.add_intent(LATIN1, "r", LocalStat(3, 0, 0), 2.0)
    assert journal.get(LATIN1).path == LATIN1  # type: ignore[union-attr]
    assert [r.path for r in journal.iter_rows()] == [LATIN1]
    assert [t.path for t in journal.tombstones()] == [LATIN1]
    assert [intent] == journal.intents()
    assert raw(db, "SELECT path FROM files") == [(b"caf\xe9.txt",)]


def test_record_and_clear_failure_keep_synced(journal: Journal) -> None:
    """A failure sits beside the synced copy and clearing it leaves the copy."""
    failure = Failure("transient", "503 overloaded", 2, 99.0, LocalStat(11, 5, 42))
    journal.commit_upload("a", synced(), None)
    journal.record_failure("a", failure)
    assert FileRow("a", synced(), failure) == journal.get("a")
    journal.clear_failure("a")
    assert FileRow("a", synced(), None) == journal.get("a")


def test_failure_without_synced_copy(journal: Journal) -> None:
    """A path that never uploaded can carry a failure; clearing it leaves no row."""
    failure = Failure("permanent", "413 too large", 1, 0.0, None)
    journal.record_failure("big.bin", failure)
    assert FileRow("big.bin", None, failure) == journal.get("big.bin")
    journal.clear_failure("big.bin")
    assert None is journal.get("big.bin")


def test_record_failure_replaces_previous(journal: Journal) -> None:
    """Only the latest failure is kept."""
    journal.record_failure("a", Failure("transient", "first", 1, 5.0, None))
    latest = Failure("permanent", "second", 2, 0.0, LocalStat(1, 2, 3))
    journal.record_failure("a", latest)
    assert latest == journal.get("a").failure  # type: ignore[union-attr]


def test_record_failure_rejects_unknown_kind(journal: Journal) -> None:
    """A failure kind other than permanent/transient is a programming error."""
    with pytest.raises(ValueError, match="kind"):
        journal.record_failure("a", Failure("maybe", "?", 1, 0.0, None))


def test_commit_upload_clears_failure_and_intent(journal: Journal) -> None:
    """A successful upload clears the path's failure and drops its intent."""
    journal.record_failure("a", Failure("transient", "timeout", 3, 50.0, None))
    intent = journal.add_intent("a", "a.txt", LocalStat(10, 0, 0), 1.0)
    other = journal.add_intent("b", "b.txt", LocalStat(5, 0, 0), 1.0)
    journal.commit_upload("a", synced(), intent.id)
    assert FileRow("a", synced(), None) == journal.get("a")
    assert [other] == journal.intents()


def test_intents_round_trip(journal: Journal) -> None:
    """Intents come back in creation order with fresh ids, and can be dropped."""
    first = journal.add_intent("a", "a.txt", LocalStat(1, 0, 0), 10.0)
    second = journal.add_intent("b", "b.txt", LocalStat(2, 0, 0), 11.0)
    assert Intent(first.id, "a", "a.txt", 1, 0, 0, 10.0) == first
    assert [first, second] == journal.intents()
    journal.drop_intent(first.id)
    assert [second] == journal.intents()


def test_intent_ids_are_not_reused(journal: Journal) -> None:
    """A dropped intent's id is never handed out again, so a stale drop cannot hit a new one."""
    first = journal.add_intent("a", "a.txt", LocalStat(1, 0, 0), 1.0)
    journal.drop_intent(first.id)
    assert first.id < journal.add_intent("a", "a.txt", LocalStat(1, 0, 0), 2.0).id


def test_update_stat_records_touch(journal: Journal) -> None:
    """A touch records the new mtime and inode and keeps file_id and hash."""
    journal.commit_upload("a", synced(), None)
    journal.update_stat("a", LocalStat(10, 7, 99), 2.5)
    expected = Synced("file_1", "a.txt", "ab" * 32, 10, 7, 99, "text/plain", 2.5)
    assert expected == journal.get("a").synced  # type: ignore[union-attr]


def test_update_stat_without_copy_is_noop(journal: Journal) -> None:
    """update_stat on an unknown path creates nothing."""
    journal.update_stat("ghost", LocalStat(1, 2, 3), 1.0)
    assert None is journal.get("ghost")


def test_commit_upload_replacing_tombstones_old_id(journal: Journal, db: Path) -> None:
    """Replacing a file_id tombstones the old id, and both survive a reopen."""
    journal.commit_upload("a", synced("file_old", name="old-name"), None)
    journal.commit_upload("a", synced("file_new"), None)
    journal.close()
    with open_journal(db) as again:
        assert again.get("a").synced.file_id == "file_new"  # type: ignore[union-attr]
        assert [Tombstone("file_old", "old-name", "a", "replaced", 0, 0.0)] == again.tombstones()


def test_commit_upload_same_id_adds_no_tombstone(journal: Journal) -> None:
    """Recommitting the same file_id (e.g. adopting an orphan) owes no delete."""
    journal.commit_upload("a", synced("file_1"), None)
    journal.commit_upload("a", synced("file_1", size=11), None)
    assert journal.tombstones() == []


def test_commit_upload_lifts_tombstone_on_its_own_id(journal: Journal) -> None:
    """A file_id a row points to is never left owing a delete."""
    journal.add_tombstone("file_1", "a.txt", "a", "orphan")
    journal.commit_upload("a", synced("file_1"), None)
    assert journal.tombstones() == []


def test_commit_upload_is_atomic(db: Path) -> None:
    """If any statement of commit_upload fails, none of it is kept."""
    with open_journal(db) as j:
        j.commit_upload("a", synced("file_old"), None)
        intent = j.add_intent("a", "a.txt", LocalStat(10, 0, 0), 1.0)
    raw(
        db,
        "CREATE TRIGGER no_tombs BEFORE INSERT ON tombstones BEGIN SELECT RAISE(ABORT, 'x'); END",
    )
    with open_journal(db) as j:
        with pytest.raises(JournalError):
            j.commit_upload("a", synced("file_new"), intent.id)
        assert j.get("a").synced.file_id == "file_old"  # type: ignore[union-attr]
        assert [intent] == j.intents()


def test_remove_tombstones_file_id(journal: Journal) -> None:
    """remove deletes the row and returns the tombstone it now owes."""
    journal.commit_upload("a", synced("file_1"), None)
    tomb = journal.remove("a")
    assert Tombstone("file_1", "a.txt", "a", "removed", 0, 0.0) == tomb
    assert None is journal.get("a")
    assert [tomb] == journal.tombstones()


def test_remove_without_copy_returns_none(journal: Journal) -> None:
    """Removing a path that never uploaded owes nothing."""
    journal.record_failure("a", Failure("permanent", "bad", 1, 0.0, None))
    assert None is journal.remove("a", reason="ignored")
    assert (journal.get("a"), journal.tombstones()) == (None, [])


def test_forget_leaves_no_tombstone(journal: Journal) -> None:
    """forget deletes the row and owes no delete."""
    journal.commit_upload("a", synced(), None)
    journal.forget("a")
    assert (None, [], set()) == (journal.get("a"), journal.tombstones(), journal.file_ids())


def test_file_ids_include_tombstones(journal: Journal) -> None:
    """file_ids covers rows' ids and ids still owed a delete."""
    journal.commit_upload("a", synced("file_a"), None)
    journal.commit_upload("b", synced("file_b"), None)
    journal.remove("b")
    journal.add_tombstone("file_x", "x", "x", "orphan")
    assert {"file_a", "file_b", "file_x"} == journal.file_ids()


def test_tombstone_lifecycle(journal: Journal) -> None:
    """add is idempotent, defer counts attempts and schedules, due filters, drop forgets."""
    journal.add_tombstone("file_1", "one", "p1", "removed")
    journal.add_tombstone("file_1", "other", "p9", "replaced")
    journal.add_tombstone("file_2", "two", "p2", "orphan")
    journal.defer_tombstone("file_1", 500.0, "503")
    deferred = Tombstone("file_1", "one", "p1", "removed", 1, 500.0, "503")
    due_now = Tombstone("file_2", "two", "p2", "orphan", 0, 0.0)
    assert [due_now, deferred] == journal.tombstones()
    assert [due_now] == journal.tombstones(due_before=100.0)
    assert [due_now, deferred] == journal.tombstones(due_before=500.0)
    journal.drop_tombstone("file_2")
    assert [deferred] == journal.tombstones()


def test_meta_round_trip(journal: Journal) -> None:
    """Meta values are free-form strings; the binding is recorded at creation."""
    assert None is journal.get_meta("last_scan")
    journal.set_meta("last_scan", "1700000000.5")
    journal.set_meta("last_scan", "1700000001.5")
    assert journal.get_meta("last_scan") == "1700000001.5"
    assert tuple(journal.get_meta(k) for k in ("root", "base_url", "name_prefix")) == (
        ROOT,
        URL,
        "",
    )


def test_errors_and_counts(journal: Journal) -> None:
    """errors lists failed rows in path order; counts splits rows by state."""
    permanent = Failure("permanent", "413", 1, 0.0, None)
    transient = Failure("transient", "503", 2, 9.0, None)
    journal.commit_upload("ok1", synced("f1", size=100), None)
    journal.commit_upload("ok2", synced("f2", size=23), None)
    journal.commit_upload("z-retry", synced("f3", size=5), None)
    journal.record_failure("z-retry", transient)
    journal.record_failure("b-bad", permanent)
    journal.add_intent("ok1", "ok1", LocalStat(100, 0, 0), 1.0)
    journal.add_tombstone("f0", "old", "old", "removed")
    assert [
        FileRow("b-bad", None, permanent),
        FileRow("z-retry", synced("f3", size=5), transient),
    ] == (journal.errors())
    assert JournalCounts(2, 123, 1, 1, 1, 1) == journal.counts()


# -- order and ranges ----------------------------------------------------------------------


def test_iter_rows_is_byte_order_and_chunked(journal: Journal) -> None:
    """iter_rows yields every row once, in byte order, across many chunks."""
    names = [f"d{i % 7}/F{i:04d}.txt" for i in range(1200)]
    names += [LATIN1, "Zeta", "a", "a/b", "a.b", "a-b", "é", os.fsdecode(b"\xff\xfe"), "~"]
    names += [f"x{i}" for i in range(25)]
    for i, name in enumerate(names):
        journal.commit_upload(name, synced(f"file_{i}"), None)
    expected = sorted(names, key=os.fsencode)
    assert expected == [row.path for row in journal.iter_rows(chunk_rows=100)]
    assert expected == [row.path for row in journal.iter_rows()]


def test_iter_rows_releases_lock_between_chunks(journal: Journal) -> None:
    """Other calls can run while an iteration is under way (no deadlock, rows keep coming)."""
    for i in range(30):
        journal.commit_upload(f"p{i:02d}", synced(f"file_{i}"), None)
    seen = []
    for row in journal.iter_rows(chunk_rows=10):
        journal.set_meta("last_scan", row.path)  # would deadlock if the lock were held
        seen.append(row.path)
    assert [f"p{i:02d}" for i in range(30)] == seen


def test_iter_rows_empty(journal: Journal) -> None:
    """An empty journal iterates nothing."""
    assert list(journal.iter_rows()) == []


def test_rows_under_is_a_byte_prefix(journal: Journal) -> None:
    """rows_under matches dir + "/" exactly: no LIKE wildcards, no sibling prefixes."""
    names = [
        "dir/x",
        "dir/sub/y",
        "dir2/x",
        "dir",
        "dir.txt",
        "dirx/a",
        "d%r/x",
        "d_r/x",
        "dar/x",
        "dir0/x",
        "dir/" + LATIN1,
    ]
    for i, name in enumerate(names):
        journal.commit_upload(name, synced(f"file_{i}"), None)
    below = ["dir/" + LATIN1, "dir/sub/y", "dir/x"]  # byte order: "c" < "s" < "x"
    assert below == [r.path for r in journal.rows_under("dir")]
    assert below == [r.path for r in journal.rows_under("dir/")]
    assert [r.path for r in journal.rows_under("d%r")] == ["d%r/x"]
    assert [r.path for r in journal.rows_under("d_r")] == ["d_r/x"]
    assert journal.rows_under("di") == []
    assert sorted(names, key=os.fsencode) == [r.path for r in journal.rows_under("")]


# -- concurrency and durability ------------------------------------------------------------


def test_threads_share_one_journal(journal: Journal, db: Path) -> None:
    """Worker threads writing at once through one Journal lose nothing."""

    def work(t: int) -> None:
        for i in range(100):
            intent = journal.add_intent(f"t{t}/{i}", "n", LocalStat(i, 0, 0), 1.0)
            journal.commit_upload(f"t{t}/{i}", synced(f"file_{t}_{i}"), intent.id)

    threads = [threading.Thread(target=work, args=(t,)) for t in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert (journal.counts().synced, journal.intents()) == (800, [])
    assert raw(db, "PRAGMA integrity_check") == [("ok",)]


def test_wal_mode_is_on(journal: Journal, db: Path) -> None:
    """The journal runs in WAL mode, so readers do not block the daemon."""
    assert raw(db, "PRAGMA journal_mode") == [("wal",)]


def test_integrity_after_many_writes(journal: Journal, db: Path) -> None:
    """A long run of mixed writes leaves a sound database."""
    for i in range(2000):
        path = f"p/{i % 300}"
        journal.commit_upload(path, synced(f"file_{i}"), None)
        if i % 3 == 0:
            journal.record_failure(path, Failure("transient", "x", i, 1.0, None))
        if i % 5 == 0:
            journal.remove(path)
    for tomb in journal.tombstones():
        journal.drop_tombstone(tomb.file_id)
    journal.close()
    assert raw(db, "PRAGMA integrity_check") == [("ok",)]


def test_disk_full_is_a_clear_error(journal: Journal) -> None:
    """SQLITE_FULL becomes a JournalError naming the journal and the disk, and nothing is kept."""
    assert journal._conn is not None
    pages = journal._conn.execute("PRAGMA page_count").fetchone()[0]
    journal._conn.execute(f"PRAGMA max_page_count = {pages}")
    with pytest.raises(JournalError, match="disk full") as info:
        journal.commit_upload("big", synced(name="n" * 100_000), None)
    assert str(journal.path) in str(info.value)
    assert None is journal.get("big")


# -- read-only access ----------------------------------------------------------------------


def test_readonly_sees_writer_and_refuses_writes(journal: Journal, db: Path) -> None:
    """A read-only journal sees a live writer's commits and cannot change anything."""
    journal.commit_upload("a", synced("file_a"), None)
    with Journal.open_readonly(db) as reader:
        assert [r.path for r in reader.iter_rows()] == ["a"]
        journal.commit_upload("b", synced("file_b"), None)
        assert [r.path for r in reader.iter_rows()] == ["a", "b"]
        assert reader.counts().synced == 2
        with pytest.raises(JournalError, match="read-only"):
            reader.set_meta("x", "y")
        with pytest.raises(JournalError, match="read-only"):
            reader.remove("a")
    assert [r.path for r in journal.iter_rows()] == ["a", "b"]


def test_readonly_after_daemon_stopped(db: Path) -> None:
    """A read-only open works on a journal nobody has open."""
    with open_journal(db) as j:
        j.commit_upload("a", synced(), None)
    with Journal.open_readonly(db) as reader:
        assert reader.get_meta("root") == ROOT
        assert FileRow("a", synced(), None) == reader.get("a")


def test_readonly_missing_journal(tmp_path: Path) -> None:
    """Reading a journal that does not exist says syncd has not run, and creates nothing."""
    path = tmp_path / "none.db"
    with pytest.raises(JournalError, match=r"no journal at .*has not run"):
        Journal.open_readonly(path)
    assert list(tmp_path.iterdir()) == []


def test_closed_journal_refuses(db: Path) -> None:
    """Using a closed journal is a JournalError, and closing twice is harmless."""
    j = open_journal(db)
    j.close()
    j.close()
    with pytest.raises(JournalError, match="closed"):
        j.get("a")


# -- the process lock ----------------------------------------------------------------------


def test_second_open_in_process_is_locked(journal: Journal, db: Path) -> None:
    """A second Journal on the same file is refused with the holder's pid."""
    with pytest.raises(JournalLockedError, match=f"in use by syncd pid {os.getpid()};"):
        open_journal(db)


def test_lock_across_processes(journal: Journal, db: Path) -> None:
    """Another process cannot open a held journal, and can once it is closed."""
    code = f"""
        from pathlib import Path
        from syncd.errors import JournalLockedError
        from syncd.journal import Journal
        try:
            Journal.open(Path({str(db)!r}), {ROOT!r}, {URL!r}).close()
            print("opened")
        except JournalLockedError as exc:
            print(exc)
    """
    held = run_python(code)
    expected = f"journal {db} is in use by syncd pid {os.getpid()}; stop that process first"
    assert expected in held.stdout, held.stderr
    journal.close()
    assert run_python(code).stdout.strip() == "opened"


def test_lock_holder(db: Path) -> None:
    """lock_holder names the live holder's pid, and None before and after."""
    assert None is lock_holder(db)
    with open_journal(db):
        assert os.getpid() == lock_holder(db)
    assert None is lock_holder(db)


def test_lock_holder_sees_other_process(db: Path) -> None:
    """lock_holder reports a daemon in another process by its pid."""
    code = f"""
        import os, sys
        from pathlib import Path
        from syncd.journal import Journal
        j = Journal.open(Path({str(db)!r}), {ROOT!r}, {URL!r})
        print(os.getpid(), flush=True)
        sys.stdin.readline()
        j.close()
    """
    with subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(code)],
        cwd=REPO,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    ) as proc:
        assert proc.stdout is not None
        holder = int(proc.stdout.readline())
        held = lock_holder(db)
        proc.communicate("\n", timeout=60)
    assert (holder, 0) == (held, proc.returncode)
    assert None is lock_holder(db)


def test_failed_open_releases_lock(db: Path) -> None:
    """An open refused for a mismatch does not leave the lock held."""
    open_journal(db).close()
    with pytest.raises(JournalMismatchError):
        open_journal(db, root="/elsewhere")
    assert None is lock_holder(db)
    open_journal(db).close()


# -- binding -------------------------------------------------------------------------------


def test_other_root_is_refused(db: Path) -> None:
    """A journal made for one root refuses another, naming both and the fix."""
    open_journal(db).close()
    with pytest.raises(JournalMismatchError) as info:
        open_journal(db, root="/b")
    message = str(info.value)
    assert f"journal {db} belongs to root {ROOT} at {URL}; this config has root /b" in message
    assert "syncd rebuild" in message


def test_other_base_url_is_refused(db: Path) -> None:
    """A journal made for one remote refuses another."""
    open_journal(db).close()
    with pytest.raises(JournalMismatchError, match=r"http://127.0.0.1:9"):
        open_journal(db, base_url="http://127.0.0.1:9")


def test_trailing_slash_on_base_url_is_the_same_remote(db: Path) -> None:
    """A base URL differing only by a trailing slash is the same remote."""
    open_journal(db).close()
    open_journal(db, base_url=URL + "/").close()


def test_other_name_prefix_is_refused(db: Path) -> None:
    """Changing name_prefix is refused: every remote name would change."""
    open_journal(db, name_prefix="docs").close()
    with pytest.raises(JournalMismatchError, match=r"name_prefix 'docs'.*'other'"):
        open_journal(db, name_prefix="other")


# -- schema, damage, permissions -----------------------------------------------------------


def test_migrates_empty_file(db: Path) -> None:
    """An empty (version 0) file is migrated to the current schema."""
    db.parent.mkdir(parents=True)
    db.touch()
    with open_journal(db) as j:
        j.commit_upload("a", synced(), None)
    assert raw(db, "PRAGMA user_version") == [(SCHEMA_VERSION,)]
    tables = {r[0] for r in raw(db, "SELECT name FROM sqlite_master WHERE type='table'")}
    assert {"meta", "files", "intents", "tombstones"} <= tables


def test_failed_migration_changes_nothing(db: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A migration that fails part way is rolled back whole; the version stays."""
    open_journal(db).close()
    bad = [*journal_schema.MIGRATIONS, "CREATE TABLE extra (a); THIS IS NOT SQL;"]
    monkeypatch.setattr(journal_schema, "MIGRATIONS", bad)
    monkeypatch.setattr(journal_schema, "SCHEMA_VERSION", len(bad))
    with pytest.raises(JournalError):
        open_journal(db)
    assert raw(db, "PRAGMA user_version") == [(SCHEMA_VERSION,)]
    assert raw(db, "SELECT name FROM sqlite_master WHERE name = 'extra'") == []


def test_newer_schema_is_refused(db: Path) -> None:
    """A journal from a newer syncd is refused by both open paths, and left untouched."""
    open_journal(db).close()
    raw(db, "PRAGMA user_version = 99")
    expected = f"journal {db} has schema version 99, newer than this syncd ({SCHEMA_VERSION})"
    with pytest.raises(JournalError, match="upgrade syncd") as info:
        open_journal(db)
    assert expected in str(info.value)
    with pytest.raises(JournalError, match="upgrade syncd"):
        Journal.open_readonly(db)
    assert raw(db, "PRAGMA user_version") == [(99,)]


def test_garbage_file_is_corrupt(db: Path) -> None:
    """A file that is not SQLite is reported as corrupt with the rebuild advice."""
    db.parent.mkdir(parents=True)
    db.write_bytes(b"this is not a database, just garbage\x00\xff" * 200)
    with pytest.raises(JournalError, match=r"corrupt.*syncd rebuild") as info:
        open_journal(db)
    assert str(db) in str(info.value)
    with pytest.raises(JournalError, match="corrupt"):
        Journal.open_readonly(db)
    assert None is lock_holder(db)


def test_damaged_pages_are_corrupt(db: Path) -> None:
    """A database whose pages were overwritten fails quick_check and is refused."""
    with open_journal(db) as j:
        for i in range(300):
            j.commit_upload(f"dir/{i:04d}", synced(f"file_{i}"), None)
    data = bytearray(db.read_bytes())
    page = 4096
    data[2 * page : len(data)] = b"\xa5" * (len(data) - 2 * page)
    db.write_bytes(bytes(data))
    with pytest.raises(JournalError, match=r"corrupt.*syncd rebuild"):
        open_journal(db)


def test_creates_missing_directory(tmp_path: Path) -> None:
    """The journal's directory is created when missing."""
    path = tmp_path / "a" / "b" / "state.db"
    open_journal(path).close()
    assert path.is_file()


def test_directory_that_is_a_file(tmp_path: Path) -> None:
    """A journal whose parent cannot be a directory fails with the directory and the fix."""
    (tmp_path / "plain").write_text("x")
    with pytest.raises(JournalError, match=r"journal directory .*plain.*writable") as info:
        open_journal(tmp_path / "plain" / "state.db")
    assert "[state] journal" in str(info.value)


@pytest.mark.usefixtures("file_permissions")
def test_unwritable_directory(tmp_path: Path) -> None:
    """An unwritable directory fails with the directory and the fix."""
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    try:
        expected = f"journal directory {re.escape(str(locked))}: .*writable"
        with pytest.raises(JournalError, match=expected):
            open_journal(locked / "state.db")
    finally:
        locked.chmod(0o700)


@pytest.mark.usefixtures("file_permissions")
def test_readonly_journal_file(db: Path) -> None:
    """A journal file this user cannot write is refused at open, not at the first write."""
    open_journal(db).close()
    db.chmod(0o400)
    try:
        with pytest.raises(JournalError, match="read-only"):
            open_journal(db)
    finally:
        db.chmod(0o600)


def test_error_translation_names_journal_and_problem() -> None:
    """Each sqlite3 failure the daemon must act on becomes a one-line JournalError."""
    path = Path("/x/state.db")
    cases = {
        "database or disk is full": "journal /x/state.db: disk full",
        "attempt to write a readonly database": "journal /x/state.db is read-only",
        "unable to open database file": "cannot open journal /x/state.db",
        "file is not a database": "journal /x/state.db is corrupt",
        "database is locked": "journal /x/state.db is busy",
    }
    for text, expected in cases.items():
        message = str(journal_error(path, sqlite3.OperationalError(text)))
        assert message.startswith(expected), message
        assert "\n" not in message
