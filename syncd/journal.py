"""The journal: what syncd knows about each path and what it owes the remote, in SQLite.

One row per local path maps it to the remote file that holds its content (``Synced``) and to the
latest failure for its current version (``Failure``). Beside the rows: upload intents, written
before an upload starts so that reconcile can adopt or delete what a crash left behind, and
tombstones, remote files this journal created and still has to delete.

Paths are stored as BLOBs of their filesystem bytes (``os.fsencode``): a non-UTF-8 name decodes
to lone surrogates that a TEXT column cannot hold, and BLOBs sort by memcmp, the byte order the
scanner walks in. The database runs in WAL mode so ``syncd status`` can read while the daemon
writes; one daemon per journal is enforced with ``flock`` on ``<journal>.lock``. Every public
write is one transaction.

The journal and its lock are private (0600) whatever the umask; SQLite gives its ``-wal`` and
``-shm`` files the database's mode. A file at the journal's path that another program made (an
SQLite database without syncd's tables) is refused before anything is written to it.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import itertools
import os
import sqlite3
import stat
import threading
import time
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType
from typing import Any

from syncd.errors import JournalError, JournalLockedError, JournalMismatchError
from syncd.model import (
    Copy,
    Failure,
    FileRow,
    Intent,
    JournalCounts,
    LocalStat,
    Synced,
    Tombstone,
)

CHUNK_ROWS = 500  # rows per iter_rows query: flat memory, and the lock is released in between
SCAN_CHUNK_ROWS = 5000  # rows per scan_rows query: plain tuples, a few ms under the lock
# (path bytes, size of a copy that proves the content or None, its mtime_ns, ino)
ScanRow = tuple[bytes, int | None, int | None, int | None]
BUSY_TIMEOUT_MS = 5000
_LOCK_TRIES = 5
_LOCK_RETRY_S = 0.02
_REBUILD = "move it aside and run `syncd rebuild`"
PRIVATE = 0o600
SIDE_FILES = ("-wal", "-shm", "-journal")  # SQLite's files beside the database
LOCK_SUFFIX = ".lock"
NOT_A_JOURNAL = "is not a syncd journal"
_OWN_TABLES = frozenset({"meta", "files", "intents", "tombstones"})

# Ordered: MIGRATIONS[n] takes a journal from user_version n to n + 1, in one transaction.
MIGRATIONS: list[str] = [
    """
    CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
    CREATE TABLE files (
        path BLOB PRIMARY KEY,
        file_id TEXT, remote_name TEXT, sha256 TEXT, size INTEGER, mtime_ns INTEGER,
        ino INTEGER, mime_type TEXT, synced_at REAL,
        fail_kind TEXT CHECK (fail_kind IN ('permanent', 'transient')),
        fail_message TEXT, fail_attempts INTEGER, fail_next REAL,
        fail_size INTEGER, fail_mtime_ns INTEGER, fail_ino INTEGER
    ) WITHOUT ROWID;
    CREATE INDEX files_failed ON files (path) WHERE fail_kind IS NOT NULL;
    -- AUTOINCREMENT: an intent id is never reused, so a stale drop cannot hit a newer intent.
    CREATE TABLE intents (
        id INTEGER PRIMARY KEY AUTOINCREMENT, path BLOB NOT NULL, remote_name TEXT NOT NULL,
        size INTEGER NOT NULL, mtime_ns INTEGER NOT NULL, ino INTEGER NOT NULL,
        started_at REAL NOT NULL
    );
    CREATE TABLE tombstones (
        file_id TEXT PRIMARY KEY, remote_name TEXT NOT NULL, path BLOB NOT NULL,
        reason TEXT NOT NULL, attempts INTEGER NOT NULL DEFAULT 0,
        next_attempt REAL NOT NULL DEFAULT 0, last_error TEXT NOT NULL DEFAULT ''
    ) WITHOUT ROWID;
    """,
    # 2: GA expiry, and copies the listing no longer shows (re-uploaded make-before-break).
    """
    ALTER TABLE files ADD COLUMN expires_at REAL;
    ALTER TABLE files ADD COLUMN renew_at REAL;
    ALTER TABLE files ADD COLUMN gone TEXT;
    CREATE INDEX files_renew ON files (renew_at) WHERE renew_at IS NOT NULL;
    CREATE INDEX files_gone ON files (path) WHERE gone IS NOT NULL;
    """,
]
SCHEMA_VERSION = len(MIGRATIONS)


_SYNCED_COLS = (
    "file_id, remote_name, sha256, size, mtime_ns, ino, mime_type, synced_at, expires_at"
)
_FILE_COLS = (
    "path, file_id, remote_name, sha256, size, mtime_ns, ino, mime_type, synced_at,"
    " fail_kind, fail_message, fail_attempts, fail_next, fail_size, fail_mtime_ns, fail_ino,"
    " expires_at, gone"
)
_FAIL_COLS = "fail_kind, fail_message, fail_attempts, fail_next, fail_size, fail_mtime_ns, fail_ino"
_TOMB_COLS = "file_id, remote_name, path, reason, attempts, next_attempt, last_error"


def _row(r: tuple[Any, ...]) -> FileRow:
    synced = Synced(*r[1:9], expires_at=r[16]) if r[1] is not None else None  # type: ignore[misc]
    failure = None
    if r[9] is not None:
        stat = LocalStat(*r[13:16]) if r[13] is not None else None
        failure = Failure(r[9], r[10], r[11], r[12], stat)
    return FileRow(os.fsdecode(r[0]), synced, failure, r[17] if synced else None)


def _tombstone(r: tuple[Any, ...]) -> Tombstone:
    return Tombstone(r[0], r[1], os.fsdecode(r[2]), r[3], r[4], r[5], r[6])


def _lock_path(journal_path: Path) -> Path:
    return journal_path.with_name(journal_path.name + LOCK_SUFFIX)


def _private(fd: int) -> None:
    """Make an opened file 0600 (a file of another user is left as it is)."""
    with contextlib.suppress(PermissionError):
        if stat.S_IMODE(os.fstat(fd).st_mode) != PRIVATE:
            os.fchmod(fd, PRIVATE)


def _create_private(path: Path) -> None:
    """Create an empty journal file 0600 if there is none (SQLite would use the umask)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, PRIVATE)
    except FileExistsError:
        return
    except OSError as exc:
        raise JournalError(f"cannot create journal {path}: {exc.strerror or exc}") from exc
    try:
        _private(fd)
    finally:
        os.close(fd)


def _tighten(path: Path) -> None:
    """Make a journal an older syncd left readable by others, and its side files, 0600.

    By path, never by opening them: closing any descriptor of a database file drops this
    process's POSIX locks on it (SQLite's own among them), and another reader could then rebuild
    the ``-shm`` under the daemon's mapping (SIGBUS). A side file is changed only if it is a
    regular file, not a link planted beside the journal.
    """
    for name in (path, *(path.with_name(path.name + s) for s in SIDE_FILES)):
        try:
            info = os.stat(name) if name == path else os.lstat(name)
            if stat.S_ISREG(info.st_mode) and stat.S_IMODE(info.st_mode) != PRIVATE:
                os.chmod(name, PRIVATE)
        except OSError:
            continue  # gone, or another user's: left as it is


def _read_pid(fd: int) -> int:
    """The pid a lock holder wrote (0 if it has not written it yet)."""
    text = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
    return int(text) if text.isdigit() else 0


def lock_holder(journal_path: Path) -> int | None:
    """The pid of the live process holding the journal's lock, or None if nobody holds it.

    0 means a holder that has not written its pid yet (it is starting at this instant).
    """
    try:
        fd = os.open(_lock_path(Path(journal_path)), os.O_RDONLY)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise JournalError(f"cannot read the lock of journal {journal_path}: {exc}") from exc
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return _read_pid(fd)
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    finally:
        os.close(fd)


def _take_lock(journal_path: Path) -> int:
    """Create the parent directory and hold ``<journal>.lock`` exclusively; return its fd."""
    directory = journal_path.parent
    try:
        directory.mkdir(parents=True, exist_ok=True)
        # CLOEXEC: a child process the daemon starts must not inherit (and outlive) the lock.
        fd = os.open(_lock_path(journal_path), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, PRIVATE)
        _private(fd)
    except OSError as exc:
        raise JournalError(
            f"cannot write in journal directory {directory}: {exc.strerror or exc}; make it"
            " writable by this user, or set [state] journal to a path that is"
        ) from exc
    try:
        if not _try_flock(fd):
            raise JournalLockedError(
                f"journal {journal_path} is in use by syncd pid {_read_pid(fd)}; stop that"
                " process first (or use another [state] journal)"
            )
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
    except BaseException as exc:
        os.close(fd)
        if isinstance(exc, OSError):
            raise JournalError(f"cannot lock journal {journal_path}: {exc}") from exc
        raise
    return fd


def _try_flock(fd: int) -> bool:
    # `syncd status` probing with lock_holder holds a shared lock for microseconds: a daemon
    # starting at that instant tries again briefly instead of refusing to start.
    for attempt in range(_LOCK_TRIES):
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            if attempt + 1 < _LOCK_TRIES:
                time.sleep(_LOCK_RETRY_S)
    return False


def _release_lock(fd: int) -> None:
    # An empty lock file after a clean exit: a pid left in it means a crash, not a holder.
    with contextlib.suppress(OSError):
        os.ftruncate(fd, 0)
    os.close(fd)  # closing the last descriptor releases the flock


def _error(path: Path, exc: BaseException) -> JournalError:
    """Translate a sqlite3 error into a one-line JournalError naming the journal and the fix."""
    text = str(exc)
    if "disk is full" in text:
        return JournalError(f"journal {path}: disk full; free space on its filesystem")
    if "readonly database" in text:
        return JournalError(f"journal {path} is read-only; make it writable by this user")
    if "unable to open" in text:
        return JournalError(f"cannot open journal {path}: {text}")
    if "not a database" in text or "malformed" in text:
        return JournalError(f"journal {path} is corrupt ({text}); {_REBUILD}")
    if "locked" in text or "busy" in text:
        return JournalError(f"journal {path} is busy ({text}); another process is writing it")
    return JournalError(f"journal {path}: {text}")


class Journal:
    """The SQLite journal; one object shared by every thread of the daemon."""

    def __init__(
        self, path: Path, conn: sqlite3.Connection, lock_fd: int | None, readonly: bool
    ) -> None:
        self.path = path
        self._conn: sqlite3.Connection | None = conn
        self._lock_fd = lock_fd
        self._readonly = readonly
        self._mutex = threading.Lock()  # sqlite3 connections must not run two statements at once
        self._counted: int | None = None  # data_version when the counters were last reset

    # -- opening and closing ---------------------------------------------------------------

    @classmethod
    def open(cls, path: Path, root: str, base_url: str, name_prefix: str = "") -> Journal:
        """Open (or create) the journal for writing, holding its lock until close()."""
        path = Path(path)
        lock_fd = _take_lock(path)
        try:
            if path.exists() and not os.access(path, os.W_OK, effective_ids=True):
                raise JournalError(f"journal {path} is read-only; make it writable by this user")
            _create_private(path)
            journal = cls(path, _connect(path, str(path), uri=False), lock_fd, readonly=False)
        except BaseException:
            _release_lock(lock_fd)
            raise
        try:
            journal._prepare(root, base_url, name_prefix)
        except BaseException:
            journal.close()
            raise
        return journal

    @classmethod
    def open_readonly(cls, path: Path) -> Journal:
        """Open an existing journal for reading while a daemon may be writing it (no lock)."""
        path = Path(path)
        if not path.is_file():
            raise JournalError(f"no journal at {path}: syncd has not run with this config yet")
        uri = f"file:{urllib.parse.quote(str(path.absolute()))}?mode=ro"
        journal = cls(path, _connect(path, uri, uri=True), None, readonly=True)
        try:
            journal._check_ours()
            version = journal._version()
            _check_not_newer(path, version)
            if version < SCHEMA_VERSION:
                raise JournalError(
                    f"journal {path} has schema version {version}, older than this syncd"
                    f" ({SCHEMA_VERSION}); run the syncd daemon once to upgrade it"
                )
        except BaseException:
            journal.close()
            raise
        return journal

    def close(self) -> None:
        """Close the database and release the lock; safe to call twice."""
        with self._mutex:
            conn, self._conn = self._conn, None
            if conn is not None:
                conn.close()
            if self._lock_fd is not None:
                _release_lock(self._lock_fd)
                self._lock_fd = None

    def __enter__(self) -> Journal:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def _prepare(self, root: str, base_url: str, name_prefix: str) -> None:
        self._check_ours()  # before the switch to WAL, which would already change the file
        _tighten(self.path)
        with self._mutex:
            conn = self._live()
            try:
                # Outside any transaction: SQLite cannot switch to WAL inside one.
                conn.execute("PRAGMA journal_mode=WAL")
                # NORMAL is durable across application crashes in WAL mode; a power cut may lose
                # the last commits, which reconcile repairs through intents and the listing.
                conn.execute("PRAGMA synchronous=NORMAL")
            except sqlite3.Error as exc:
                raise _error(self.path, exc) from exc
        self._migrate()
        self._bind(root, base_url, name_prefix)

    def _version(self) -> int:
        return int(self._select("PRAGMA user_version")[0][0])

    def _check_ours(self) -> None:
        """Refuse an SQLite database that syncd did not make: it is never migrated or bound.

        Ours: no tables yet (a new or empty file), or syncd's tables with a key/value ``meta``
        that is empty (bound next) or names a root.
        """
        tables = {name for (name,) in self._select(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'")}
        version = self._version()
        if not tables and version == 0:
            return
        if tables >= _OWN_TABLES and version > 0:
            columns = [row[1] for row in self._select("PRAGMA table_info(meta)")]
            if columns == ["key", "value"]:
                keys = {key for (key,) in self._select("SELECT key FROM meta")}
                if not keys or "root" in keys:
                    return
        raise JournalError(
            f"journal {self.path} {NOT_A_JOURNAL}: it is an SQLite database with"
            f" {len(tables)} table(s) another program made; point [state] journal at a new file"
            " (syncd never adds its tables to another database)"
        )

    def _migrate(self) -> None:
        version = self._version()
        _check_not_newer(self.path, version)
        for target in range(version + 1, SCHEMA_VERSION + 1):
            script = MIGRATIONS[target - 1]
            with self._mutex:
                conn = self._live()
                try:
                    # executescript commits first, so the transaction lives inside the script.
                    conn.executescript(
                        f"BEGIN IMMEDIATE;\n{script}\nPRAGMA user_version = {target};\nCOMMIT;"
                    )
                except sqlite3.Error as exc:
                    _rollback(conn)
                    raise _error(self.path, exc) from exc

    def _bind(self, root: str, base_url: str, name_prefix: str) -> None:
        with self._write() as conn:
            meta = dict(conn.execute("SELECT key, value FROM meta").fetchall())
            if "root" not in meta:
                conn.executemany(
                    "INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)",
                    [("root", root), ("base_url", base_url), ("name_prefix", name_prefix)],
                )
                return
        old_root, old_url = meta["root"], meta.get("base_url", "")
        if (old_root, old_url.rstrip("/")) != (root, base_url.rstrip("/")):
            raise JournalMismatchError(
                f"journal {self.path} belongs to root {old_root} at {old_url}; this config has"
                f" root {root} at {base_url}. Point [state] journal elsewhere, or delete the"
                " journal and run `syncd rebuild`"
            )
        old_prefix = meta.get("name_prefix", "")
        if old_prefix != name_prefix:
            raise JournalMismatchError(
                f"journal {self.path} was made with name_prefix {old_prefix!r}; this config has"
                f" {name_prefix!r}, which would rename every remote file. Restore the old prefix,"
                " point [state] journal elsewhere, or delete the journal and run `syncd rebuild`"
            )

    # -- transactions ----------------------------------------------------------------------

    def _live(self) -> sqlite3.Connection:
        if self._conn is None:
            raise JournalError(f"journal {self.path} is closed")
        return self._conn

    @contextlib.contextmanager
    def _transaction(self, begin: str) -> Iterator[sqlite3.Connection]:
        """The connection under the mutex, inside one transaction: all of it or none."""
        with self._mutex:
            conn = self._live()
            try:
                conn.execute(begin)
                yield conn
                conn.execute("COMMIT")
            except sqlite3.Error as exc:
                _rollback(conn)
                raise _error(self.path, exc) from exc
            except BaseException:
                _rollback(conn)
                raise

    def _read(self) -> contextlib.AbstractContextManager[sqlite3.Connection]:
        # A transaction even for reads: statements in it see one consistent snapshot.
        return self._transaction("BEGIN")

    def _write(self) -> contextlib.AbstractContextManager[sqlite3.Connection]:
        if self._readonly:
            raise JournalError(f"journal {self.path} is open read-only; it cannot be changed")
        # IMMEDIATE takes the write lock now, not half way through the transaction.
        return self._transaction("BEGIN IMMEDIATE")

    def _select(self, sql: str, *params: object) -> list[Any]:
        """One statement's rows. No BEGIN/COMMIT around it: a single statement already reads
        one snapshot, and the two round trips cost more than the SELECT on the upload path."""
        with self._mutex:
            try:
                return self._live().execute(sql, params).fetchall()
            except sqlite3.Error as exc:
                raise _error(self.path, exc) from exc

    # -- rows ------------------------------------------------------------------------------

    def get(self, path: str) -> FileRow | None:
        """The row for ``path``, or None."""
        rows = self._select(f"SELECT {_FILE_COLS} FROM files WHERE path = ?", os.fsencode(path))
        return _row(rows[0]) if rows else None

    def iter_rows(self, chunk_rows: int = CHUNK_ROWS) -> Iterator[FileRow]:
        """Every row in path byte order, read a chunk at a time (the lock is not held between)."""
        # Keyset pagination: each chunk starts after the last path seen, so rows added or removed
        # meanwhile neither shift nor repeat the rest, and each query uses the primary key.
        chunk = self._select(f"SELECT {_FILE_COLS} FROM files ORDER BY path LIMIT ?", chunk_rows)
        sql = f"SELECT {_FILE_COLS} FROM files WHERE path > ? ORDER BY path LIMIT ?"
        while True:
            yield from (_row(r) for r in chunk)
            if len(chunk) < chunk_rows:
                return
            chunk = self._select(sql, chunk[-1][0], chunk_rows)

    def scan_rows(self, racy_ns: int, chunk_rows: int = SCAN_CHUNK_ROWS) -> Iterator[ScanRow]:
        """Every path as the scan needs it, in byte order: (path bytes, size, mtime_ns, ino) of
        its synced copy, with size None unless that stat proves the content: the row has a
        copy, no failure, and an mtime older than ``racy_ns`` before the copy was recorded
        (``model.is_racy``). Plain tuples, a chunk at a time (the lock is not held between)."""
        return itertools.chain.from_iterable(self._scan_chunks(racy_ns, chunk_rows))

    def _scan_chunks(self, racy_ns: int, chunk_rows: int) -> Iterator[list[ScanRow]]:
        # CAST truncates toward zero as Python's int() does, on the same double product.
        cols = ("path, CASE WHEN file_id IS NOT NULL AND fail_kind IS NULL"
                " AND mtime_ns < CAST(synced_at * 1e9 AS INTEGER) - ? THEN size END,"
                " mtime_ns, ino FROM files")
        chunk = self._select(f"SELECT {cols} ORDER BY path LIMIT ?", racy_ns, chunk_rows)
        sql = f"SELECT {cols} WHERE path > ? ORDER BY path LIMIT ?"
        while True:
            yield chunk
            if len(chunk) < chunk_rows:
                return
            chunk = self._select(sql, racy_ns, chunk[-1][0], chunk_rows)

    def rows_under(self, dir_path: str) -> list[FileRow]:
        """Rows whose path lies below directory ``dir_path`` ("" is the root: every row)."""
        base = os.fsencode(dir_path.rstrip("/"))
        if not base:
            return list(self.iter_rows())
        # A BLOB range, not LIKE: names may hold % and _, and "dir2" must not match "dir/".
        # Every path starting with base + "/" sorts in [base + "/", base + "0"): "0" follows "/".
        sql = f"SELECT {_FILE_COLS} FROM files WHERE path >= ? AND path < ? ORDER BY path"
        return [_row(r) for r in self._select(sql, base + b"/", base + b"0")]

    def errors(self) -> list[FileRow]:
        """Rows with a failure (permanent or transient), in path order."""
        sql = f"SELECT {_FILE_COLS} FROM files WHERE fail_kind IS NOT NULL ORDER BY path"
        return [_row(r) for r in self._select(sql)]

    def file_ids(self) -> set[str]:
        """Every remote file_id this journal created and still tracks (rows and tombstones)."""
        sql = "SELECT file_id FROM files WHERE file_id NOTNULL UNION SELECT file_id FROM tombstones"
        return {r[0] for r in self._select(sql)}

    def commit_upload(self, path: str, synced: Synced, intent_id: int | None) -> None:
        """Record a finished upload; tombstone the file_id it replaces, in the same transaction."""
        key = os.fsencode(path)
        with self._write() as conn:
            old = conn.execute(
                "SELECT file_id, remote_name FROM files WHERE path = ?", (key,)
            ).fetchone()
            # REPLACE: failure and `gone` go back to NULL with the new copy.
            conn.execute(
                f"INSERT OR REPLACE INTO files (path, {_SYNCED_COLS}, renew_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (key, synced.file_id, synced.remote_name, synced.sha256, synced.size,
                 synced.mtime_ns, synced.ino, synced.mime_type, synced.synced_at,
                 synced.expires_at, synced.renew_at),  # not astuple(): it deep-copies each field
            )
            if intent_id is not None:
                conn.execute("DELETE FROM intents WHERE id = ?", (intent_id,))
            if old is not None and old[0] is not None and old[0] != synced.file_id:
                _insert_tombstone(conn, old[0], old[1], key, "replaced")
            # A file a row points to must never be deleted, whatever was owed before.
            conn.execute("DELETE FROM tombstones WHERE file_id = ?", (synced.file_id,))

    def update_stat(self, path: str, stat: LocalStat, verified_at: float) -> None:
        """Record a new size/mtime/inode for unchanged content (a touch); no-op without a copy.

        ``verified_at`` (when the content was hashed) becomes ``synced_at``, which ends a racy
        window: the stat now vouches for content read after the file's last write.
        """
        with self._write() as conn:
            conn.execute(
                "UPDATE files SET size = ?, mtime_ns = ?, ino = ?, synced_at = ?"
                " WHERE path = ? AND file_id IS NOT NULL",
                (stat.size, stat.mtime_ns, stat.ino, verified_at, os.fsencode(path)),
            )

    def record_failure(self, path: str, failure: Failure) -> None:
        """Set the path's failure, creating its row if needed; its synced copy stays as is."""
        if failure.kind not in ("permanent", "transient"):
            raise ValueError(f"failure kind must be permanent or transient, not {failure.kind!r}")
        stat = dataclasses.astuple(failure.stat) if failure.stat else (None, None, None)
        values = (failure.kind, failure.message, failure.attempts, failure.next_attempt, *stat)
        key = os.fsencode(path)
        with self._write() as conn:
            conn.execute("INSERT OR IGNORE INTO files (path) VALUES (?)", (key,))
            conn.execute(
                f"UPDATE files SET ({_FAIL_COLS}) = (?, ?, ?, ?, ?, ?, ?) WHERE path = ?",
                (*values, key),
            )

    def clear_failure(self, path: str) -> None:
        """Forget the path's failure; a row left with neither copy nor failure goes away."""
        key = os.fsencode(path)
        with self._write() as conn:
            conn.execute("DELETE FROM files WHERE path = ? AND file_id IS NULL", (key,))
            conn.execute(
                f"UPDATE files SET ({_FAIL_COLS}) = (NULL, NULL, NULL, NULL, NULL, NULL, NULL)"
                " WHERE path = ?",
                (key,),
            )

    def remove(self, path: str, reason: str = "removed") -> Tombstone | None:
        """Delete the row and tombstone its remote file in one transaction; return the tombstone."""
        key = os.fsencode(path)
        with self._write() as conn:
            old = conn.execute(
                "SELECT file_id, remote_name FROM files WHERE path = ?", (key,)
            ).fetchone()
            conn.execute("DELETE FROM files WHERE path = ?", (key,))
            if old is None or old[0] is None:
                return None
            _insert_tombstone(conn, old[0], old[1], key, reason)
            r = conn.execute(
                f"SELECT {_TOMB_COLS} FROM tombstones WHERE file_id = ?", (old[0],)
            ).fetchone()
        return _tombstone(r)

    def mark_gone(self, path: str, file_id: str, reason: str) -> bool:
        """Ask for ``path`` to be uploaded again because its copy ``file_id`` is gone or going.

        Only while the row still points at ``file_id``: a worker that committed a newer copy
        meanwhile has already done the job. The old id stays in the row until the new copy is
        committed (then it is tombstoned, so a copy that reappears is deleted). True if marked.
        """
        with self._write() as conn:
            cur = conn.execute(
                "UPDATE files SET gone = ? WHERE path = ? AND file_id = ? AND gone IS NULL",
                (reason, os.fsencode(path), file_id),
            )
            return cur.rowcount > 0

    def gone_paths(self) -> list[str]:
        """Paths whose copy is marked gone and not yet replaced."""
        rows = self._select("SELECT path FROM files WHERE gone IS NOT NULL ORDER BY path")
        return [os.fsdecode(r[0]) for r in rows]

    def due_renewals(self, now: float) -> list[tuple[str, str, float]]:
        """(path, file_id, expires_at) of copies due for renewal at ``now``, not yet marked."""
        rows = self._select(
            "SELECT path, file_id, expires_at FROM files"
            " WHERE renew_at IS NOT NULL AND renew_at <= ? AND gone IS NULL ORDER BY renew_at",
            now,
        )
        return [(os.fsdecode(r[0]), r[1], r[2]) for r in rows]

    def next_renewal(self) -> float | None:
        """When the next copy not yet marked becomes due for renewal, or None."""
        rows = self._select(
            "SELECT MIN(renew_at) FROM files WHERE renew_at IS NOT NULL AND gone IS NULL"
        )
        return None if rows[0][0] is None else float(rows[0][0])

    def forget(self, path: str) -> None:
        """Delete the row without a tombstone (its remote file is already gone)."""
        with self._write() as conn:
            conn.execute("DELETE FROM files WHERE path = ?", (os.fsencode(path),))

    # -- intents ---------------------------------------------------------------------------

    def add_intent(
        self, path: str, remote_name: str, stat: LocalStat, started_at: float
    ) -> Intent:
        """Record that an upload of ``stat``'s version is about to start; return it with its id."""
        with self._write() as conn:
            cur = conn.execute(
                "INSERT INTO intents (path, remote_name, size, mtime_ns, ino, started_at)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                (os.fsencode(path), remote_name, stat.size, stat.mtime_ns, stat.ino, started_at),
            )
            intent_id = cur.lastrowid
        assert intent_id is not None  # an INSERT into a rowid table always sets it
        return Intent(intent_id, path, remote_name, stat.size, stat.mtime_ns, stat.ino,
                      started_at)

    def drop_intent(self, intent_id: int) -> None:
        """Forget an intent (its upload failed cleanly, or reconcile resolved it)."""
        with self._write() as conn:
            conn.execute("DELETE FROM intents WHERE id = ?", (intent_id,))

    def intents(self) -> list[Intent]:
        """Every open intent, oldest first."""
        rows = self._select(
            "SELECT id, path, remote_name, size, mtime_ns, ino, started_at FROM intents ORDER BY id"
        )
        return [Intent(r[0], os.fsdecode(r[1]), *r[2:]) for r in rows]

    # -- tombstones ------------------------------------------------------------------------

    def add_tombstone(self, file_id: str, remote_name: str, path: str, reason: str) -> None:
        """Owe a DELETE for ``file_id``; adding one already owed changes nothing."""
        with self._write() as conn:
            _insert_tombstone(conn, file_id, remote_name, os.fsencode(path), reason)

    def tombstones(self, due_before: float | None = None) -> list[Tombstone]:
        """Owed deletions, soonest first; only those due at ``due_before`` if given."""
        due = float("inf") if due_before is None else due_before
        sql = f"SELECT {_TOMB_COLS} FROM tombstones WHERE next_attempt <= ?"
        return [_tombstone(r) for r in self._select(sql + " ORDER BY next_attempt, file_id", due)]

    def drop_tombstone(self, file_id: str) -> None:
        """The DELETE happened (or the file was already gone): forget the tombstone."""
        with self._write() as conn:
            conn.execute("DELETE FROM tombstones WHERE file_id = ?", (file_id,))

    def defer_tombstone(self, file_id: str, next_attempt: float, message: str) -> None:
        """A DELETE failed: count the attempt and retry no earlier than ``next_attempt``."""
        with self._write() as conn:
            conn.execute(
                "UPDATE tombstones SET attempts = attempts + 1, next_attempt = ?, last_error = ?"
                " WHERE file_id = ?",
                (next_attempt, message, file_id),
            )

    # -- totals and meta -------------------------------------------------------------------

    def counts(self) -> JournalCounts:
        """Totals for status output, from one consistent snapshot.

        The daemon asks twice a second: a writable journal keeps them as counters (temporary
        triggers of this connection count its own writes; ``data_version`` tells when another
        connection wrote, and then everything is counted again). A reader counts every row.
        """
        with self._read() as conn:  # the counters live in the temp schema: no write lock
            if self._readonly:
                return _count(conn)
            version = conn.execute("PRAGMA data_version").fetchone()[0]
            row = conn.execute(_COUNTERS_READ).fetchone() if self._counted == version else None
            if row is None or row[-1] != len(_COUNTER_TRIGGERS):
                counts = _count(conn)
                _reset_counters(conn, counts)
                self._counted = version
                return counts
        synced, synced_bytes, errors, retrying, intents, tombstones, reuploads, _ = row
        return JournalCounts(synced, synced_bytes, errors, retrying, intents, tombstones,
                             reuploads)

    def iter_copies(self, chunk_rows: int = 5000) -> Iterator[Copy]:
        """Every row with a remote copy, as reconcile needs it, in path byte order, a chunk at
        a time (like :meth:`iter_rows`, without building a FileRow for each of a million)."""
        sql = ("SELECT path, file_id, synced_at, expires_at, gone IS NOT NULL FROM files"
               " WHERE file_id IS NOT NULL AND path > ? ORDER BY path LIMIT ?")
        last = b""
        while True:
            chunk = self._select(sql, last, chunk_rows)
            yield from ((os.fsdecode(r[0]), r[1], r[2], r[3], bool(r[4])) for r in chunk)
            if len(chunk) < chunk_rows:
                return
            last = chunk[-1][0]

    def get_meta(self, key: str) -> str | None:
        """A meta value, or None if unset."""
        rows = self._select("SELECT value FROM meta WHERE key = ?", key)
        return str(rows[0][0]) if rows else None

    def set_meta(self, key: str, value: str) -> None:
        """Set a meta value."""
        with self._write() as conn:
            conn.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (key, value))


def _connect(path: Path, target: str, *, uri: bool) -> sqlite3.Connection:
    """Connect and check the file is a sound SQLite database."""
    try:
        # isolation_level=None: the journal issues BEGIN/COMMIT itself, one per public call.
        conn = sqlite3.connect(
            target,
            uri=uri,
            check_same_thread=False,
            isolation_level=None,
            timeout=BUSY_TIMEOUT_MS / 1000,
        )
    except sqlite3.Error as exc:
        raise _error(path, exc) from exc
    try:
        conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        result = [r[0] for r in conn.execute("PRAGMA quick_check").fetchall()]
    except sqlite3.Error as exc:
        conn.close()
        raise _error(path, exc) from exc
    if result != ["ok"]:
        conn.close()
        raise JournalError(f"journal {path} is corrupt ({'; '.join(result[:3])}); {_REBUILD}")
    return conn


def _check_not_newer(path: Path, version: int) -> None:
    if version > SCHEMA_VERSION:
        raise JournalError(
            f"journal {path} has schema version {version}, newer than this syncd"
            f" ({SCHEMA_VERSION}); upgrade syncd"
        )


def _insert_tombstone(
    conn: sqlite3.Connection, file_id: str, remote_name: str, key: bytes, reason: str
) -> None:
    # OR IGNORE: a tombstone already owed keeps its attempts and schedule.
    conn.execute(
        "INSERT OR IGNORE INTO tombstones (file_id, remote_name, path, reason) VALUES (?, ?, ?, ?)",
        (file_id, remote_name, key, reason),
    )


def _rollback(conn: sqlite3.Connection) -> None:
    if conn.in_transaction:
        with contextlib.suppress(sqlite3.Error):
            conn.execute("ROLLBACK")


# Counters for counts(): one row in this connection's temp schema, kept by temp triggers.
_FILE_TERMS = {  # counter: what one row of files adds to it ({0}: OLD or NEW)
    "synced": "({0}.file_id IS NOT NULL AND {0}.fail_kind IS NULL)",
    "synced_bytes": "(CASE WHEN {0}.file_id IS NOT NULL AND {0}.fail_kind IS NULL"
                    " THEN IFNULL({0}.size, 0) ELSE 0 END)",
    "errors": "({0}.fail_kind IS 'permanent')",
    "retrying": "({0}.fail_kind IS 'transient')",
    "reuploads": "({0}.gone IS NOT NULL)",
}


def _files_delta(minus: str | None, plus: str | None) -> str:
    """``counter = counter - term(minus) + term(plus)`` for every counter of files."""
    return ", ".join(
        f"{name} = {name}" + (f" - {term.format(minus)}" if minus else "")
        + (f" + {term.format(plus)}" if plus else "")
        for name, term in _FILE_TERMS.items()
    )


_COUNTER_TRIGGERS = {
    "files_ins": ("AFTER INSERT ON main.files", _files_delta(None, "NEW")),
    "files_del": ("AFTER DELETE ON main.files", _files_delta("OLD", None)),
    "files_upd": ("AFTER UPDATE OF file_id, size, fail_kind, gone ON main.files",
                  _files_delta("OLD", "NEW")),
    "intents_ins": ("AFTER INSERT ON main.intents", "intents = intents + 1"),
    "intents_del": ("AFTER DELETE ON main.intents", "intents = intents - 1"),
    "tombs_ins": ("AFTER INSERT ON main.tombstones", "tombstones = tombstones + 1"),
    "tombs_del": ("AFTER DELETE ON main.tombstones", "tombstones = tombstones - 1"),
}
_COUNTERS_READ = (
    "SELECT synced, synced_bytes, errors, retrying, intents, tombstones, reuploads,"
    " (SELECT COUNT(*) FROM temp.sqlite_master WHERE type = 'trigger'"
    " AND name LIKE 'syncd_count_%') FROM temp.syncd_counts"
)


def _count(conn: sqlite3.Connection) -> JournalCounts:
    """Count every row (the only way for a reader; the daemon does it when counters reset)."""
    synced, synced_bytes, errors, retrying, reuploads = conn.execute(
        "SELECT"
        " COUNT(*) FILTER (WHERE file_id IS NOT NULL AND fail_kind IS NULL),"
        " TOTAL(size) FILTER (WHERE file_id IS NOT NULL AND fail_kind IS NULL),"
        " COUNT(*) FILTER (WHERE fail_kind = 'permanent'),"
        " COUNT(*) FILTER (WHERE fail_kind = 'transient'),"
        " COUNT(*) FILTER (WHERE gone IS NOT NULL)"
        " FROM files"
    ).fetchone()
    intents = conn.execute("SELECT COUNT(*) FROM intents").fetchone()[0]
    tombstones = conn.execute("SELECT COUNT(*) FROM tombstones").fetchone()[0]
    return JournalCounts(
        synced, int(synced_bytes), errors, retrying, intents, tombstones, reuploads
    )


def _reset_counters(conn: sqlite3.Connection, counts: JournalCounts) -> None:
    """(Re)create the counters at ``counts`` and the triggers that keep them."""
    # A REPLACE that deletes a row fires the delete trigger only with recursive triggers on.
    conn.execute("PRAGMA recursive_triggers = ON")
    conn.execute(
        "CREATE TEMP TABLE IF NOT EXISTS syncd_counts (synced INTEGER, synced_bytes INTEGER,"
        " errors INTEGER, retrying INTEGER, intents INTEGER, tombstones INTEGER,"
        " reuploads INTEGER)"
    )
    conn.execute("DELETE FROM temp.syncd_counts")
    conn.execute("INSERT INTO temp.syncd_counts VALUES (?, ?, ?, ?, ?, ?, ?)",
                 dataclasses.astuple(counts))
    for name, (when, change) in _COUNTER_TRIGGERS.items():
        conn.execute(f"DROP TRIGGER IF EXISTS temp.syncd_count_{name}")
        conn.execute(f"CREATE TEMP TRIGGER syncd_count_{name} {when}"
                     f" BEGIN UPDATE syncd_counts SET {change}; END")
