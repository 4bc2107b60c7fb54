"""The journal's tables, their migrations (``PRAGMA user_version``), and the check that a file
is a syncd journal at all.

A file at the journal's path that another program made (an SQLite database without syncd's
tables) is refused before anything is written to it: it is never migrated or bound.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from syncd.errors import JournalError
from syncd.journal.store import Store, journal_error, rollback

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


class Schema(Store):
    """Checking, and bringing up to date, the schema of the journal's file."""

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

    def _check_current(self) -> None:
        """Refuse to read a journal of another schema version (a reader cannot migrate)."""
        version = self._version()
        _check_not_newer(self.path, version)
        if version < SCHEMA_VERSION:
            raise JournalError(
                f"journal {self.path} has schema version {version}, older than this syncd"
                f" ({SCHEMA_VERSION}); run the syncd daemon once to upgrade it"
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
                    rollback(conn)
                    raise journal_error(self.path, exc) from exc


def _check_not_newer(path: Path, version: int) -> None:
    if version > SCHEMA_VERSION:
        raise JournalError(
            f"journal {path} has schema version {version}, newer than this syncd"
            f" ({SCHEMA_VERSION}); upgrade syncd"
        )
