"""The one sqlite3 connection behind a mutex, and the transactions every part goes through.

``Store`` is the base the journal's parts (rows, intents, tombstones, meta, counts, schema)
build on: each public write is one transaction (``_write``), a multi-statement read one
snapshot (``_read``), and a single statement needs neither (``_select``, ``_write_one``).
sqlite3 errors are translated here, once, into one-line ``JournalError``s naming the journal and
the fix.
"""

from __future__ import annotations

import contextlib
import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType
from typing import Any, Self

from syncd.errors import JournalError
from syncd.journal.lock import release_lock

BUSY_TIMEOUT_MS = 5000
_REBUILD = "move it aside and run `syncd rebuild`"


class Store:
    """The connection, the lock's fd and the mutex; closing releases both."""

    def __init__(
        self, path: Path, conn: sqlite3.Connection, lock_fd: int | None, readonly: bool
    ) -> None:
        self.path = path
        self._conn: sqlite3.Connection | None = conn
        self._lock_fd = lock_fd
        self._readonly = readonly
        self._mutex = threading.Lock()  # sqlite3 connections must not run two statements at once

    def close(self) -> None:
        """Close the database and release the lock; safe to call twice."""
        with self._mutex:
            conn, self._conn = self._conn, None
            if conn is not None:
                conn.close()
            if self._lock_fd is not None:
                release_lock(self._lock_fd)
                self._lock_fd = None

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

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
                rollback(conn)
                raise journal_error(self.path, exc) from exc
            except BaseException:
                rollback(conn)
                raise

    def _read(self) -> contextlib.AbstractContextManager[sqlite3.Connection]:
        # A transaction even for reads: statements in it see one consistent snapshot.
        return self._transaction("BEGIN")

    def _write(self) -> contextlib.AbstractContextManager[sqlite3.Connection]:
        if self._readonly:
            raise JournalError(f"journal {self.path} is open read-only; it cannot be changed")
        # IMMEDIATE takes the write lock now, not half way through the transaction.
        return self._transaction("BEGIN IMMEDIATE")

    def _write_one(self, sql: str, *params: object) -> int | None:
        """One statement that writes, as its own transaction (SQLite's autocommit is atomic and
        takes the write lock itself): the two round trips of BEGIN/COMMIT cost more than an
        intent's INSERT. Returns the row id it inserted, if any."""
        if self._readonly:
            raise JournalError(f"journal {self.path} is open read-only; it cannot be changed")
        with self._mutex:
            try:
                return self._live().execute(sql, params).lastrowid
            except sqlite3.Error as exc:
                raise journal_error(self.path, exc) from exc

    def _select(self, sql: str, *params: object) -> list[Any]:
        """One statement's rows. No BEGIN/COMMIT around it: a single statement already reads
        one snapshot, and the two round trips cost more than the SELECT on the upload path."""
        with self._mutex:
            try:
                return self._live().execute(sql, params).fetchall()
            except sqlite3.Error as exc:
                raise journal_error(self.path, exc) from exc


def connect(path: Path, target: str, *, uri: bool) -> sqlite3.Connection:
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
        raise journal_error(path, exc) from exc
    try:
        conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        result = [r[0] for r in conn.execute("PRAGMA quick_check").fetchall()]
    except sqlite3.Error as exc:
        conn.close()
        raise journal_error(path, exc) from exc
    if result != ["ok"]:
        conn.close()
        raise JournalError(f"journal {path} is corrupt ({'; '.join(result[:3])}); {_REBUILD}")
    return conn


def journal_error(path: Path, exc: BaseException) -> JournalError:
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


def rollback(conn: sqlite3.Connection) -> None:
    """Roll back the open transaction, if any; a failure to do so changes nothing."""
    if conn.in_transaction:
        with contextlib.suppress(sqlite3.Error):
            conn.execute("ROLLBACK")
