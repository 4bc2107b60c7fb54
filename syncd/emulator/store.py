"""The emulator's disk-backed file store: metadata in SQLite, content as one file per id.

Layout under the data directory::

    meta.sqlite3      one row per file ever created (deleted files stay as tombstones),
                      plus a ``meta`` table holding the secret that signs page cursors
    files/<id>        the content of each live file
    tmp/              uploads in flight; emptied at start

Rows are never removed: a deleted file's row keeps its place in the order so that a paging
cursor naming it stays valid forever. Order is the AUTOINCREMENT ``seq``, not ``created_at``,
so files created in the same microsecond still have a stable order.

Each row belongs to one workspace; every lookup is made within one. A file past its
``expires_at`` is gone: not listed, not found, not counted against the storage quota (which
covers every workspace, as the service's per-organization quota does).
"""

from __future__ import annotations

import hashlib
import os
import secrets
import shutil
import sqlite3
import string
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import BinaryIO

DEFAULT_WORKSPACE = "wrkspc_emulator"  # the key's workspace unless --workspace-id says

_BASE62 = string.digits + string.ascii_uppercase + string.ascii_lowercase
_COLUMNS = ("id, filename, mime_type, size, sha256, created_at, downloadable, is_foreign,"
            " deleted_at, expires_at, scope_type, scope_id, seq")
_SCHEMA = f"""
CREATE TABLE IF NOT EXISTS files (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    filename TEXT NOT NULL,
    mime_type TEXT NOT NULL,
    size INTEGER NOT NULL,
    sha256 TEXT NOT NULL,
    created_at TEXT NOT NULL,
    downloadable INTEGER NOT NULL,
    is_foreign INTEGER NOT NULL,
    deleted_at REAL,
    expires_at REAL,
    scope_type TEXT,
    scope_id TEXT,
    workspace TEXT NOT NULL DEFAULT '{DEFAULT_WORKSPACE}'
);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""
# Columns added after the first release; a data dir made before them gets them on open.
_ADDED_COLUMNS = {
    "expires_at": "REAL", "scope_type": "TEXT", "scope_id": "TEXT",
    "workspace": f"TEXT NOT NULL DEFAULT '{DEFAULT_WORKSPACE}'",
}
# A live file: not deleted and not expired.
_LIVE = "deleted_at IS NULL AND (expires_at IS NULL OR expires_at > :now)"
# What a listing shows: live files, and deleted ones while they linger ("shortly after").
_VISIBLE = ("(deleted_at IS NULL OR deleted_at > :cutoff)"
            " AND (expires_at IS NULL OR expires_at > :now)")


def new_id(prefix: str) -> str:
    """A fresh id in the service's style: ``<prefix>_011C`` + 20 base62 characters."""
    return f"{prefix}_011C" + "".join(secrets.choice(_BASE62) for _ in range(20))


def rfc3339(epoch: float) -> str:
    """RFC 3339 with microseconds and a Z, as the service writes times."""
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass(frozen=True)
class FileScope:
    """Where a file came from when the service wrote it, e.g. an agent session."""

    type: str
    id: str


@dataclass(frozen=True)
class StoredFile:
    """One file as the emulator holds it, with what the API does not show (sha256, foreign)."""

    id: str
    filename: str
    mime_type: str
    size: int
    sha256: str
    created_at: str
    downloadable: bool
    foreign: bool
    deleted: bool
    expires_at: str | None = None
    scope: FileScope | None = None

    def api_object(self) -> dict[str, object]:
        """The File object of anthropic-version 2023-06-01."""
        return {
            "id": self.id,
            "type": "file",
            "filename": self.filename,
            "mime_type": self.mime_type,
            "size_bytes": self.size,
            "created_at": self.created_at,
            "downloadable": self.downloadable,
        }

    def ga_object(self) -> dict[str, object]:
        """The File object of anthropic-version 2026-10-21: adds ``expires_at`` and ``scope``."""
        scope = None if self.scope is None else {"type": self.scope.type, "id": self.scope.id}
        return {**self.api_object(), "expires_at": self.expires_at, "scope": scope}


@dataclass(frozen=True)
class Page:
    """One page of a listing, newest first; ``last_seq`` is the order key of its last file."""

    files: list[StoredFile]
    has_more: bool
    last_seq: int | None = None


@dataclass(frozen=True)
class NewFile:
    """What a new file is besides its bytes."""

    filename: str
    mime_type: str
    workspace: str
    downloadable: bool = False
    foreign: bool = False
    expires_in: int | None = None
    scope: FileScope | None = None


class UnknownCursor(LookupError):
    """A paging cursor names a file id this workspace never had."""


class QuotaExceeded(Exception):
    """Storing the file would take the organization past its storage quota."""


class UploadSink:
    """A temp file that hashes and counts what is written to it, then moves into the store."""

    def __init__(self, tmp_dir: Path) -> None:
        self.path = tmp_dir / f"{secrets.token_hex(8)}.part"
        self._file: BinaryIO = self.path.open("xb")
        self._hash = hashlib.sha256()
        self.size = 0

    def write(self, chunk: bytes) -> None:
        """Append a chunk."""
        self._file.write(chunk)
        self._hash.update(chunk)
        self.size += len(chunk)

    def finish(self) -> str:
        """Close the file and return the hex sha256 of everything written."""
        self._file.close()
        return self._hash.hexdigest()

    def abort(self) -> None:
        """Close and remove the temp file; safe to call more than once."""
        self._file.close()
        self.path.unlink(missing_ok=True)


MARKER = ".syncd-emulator"
# What an emulator from before the marker leaves in its directory: adopted as its own.
_OWN_NAMES = {"meta.sqlite3", "meta.sqlite3-wal", "meta.sqlite3-shm", "files", "tmp"}


class ForeignDataDir(ValueError):
    """The data directory holds files the emulator did not make."""


def claim_data_dir(data_dir: Path) -> None:
    """Make ``data_dir`` the emulator's (new or empty), or check it already is; else raise.

    The emulator deletes inside its data directory (unfinished uploads at start), so it must
    never adopt a directory that holds anything else: ``--data ~`` would wipe ``~/tmp``.
    """
    marker = data_dir / MARKER
    if marker.is_file():
        return
    data_dir.mkdir(parents=True, exist_ok=True)
    names = set(os.listdir(data_dir))
    made_before_markers = "meta.sqlite3" in names and names <= _OWN_NAMES
    if names and not made_before_markers:
        raise ForeignDataDir(
            f"{data_dir} holds files the emulator did not make; give a new or empty directory"
        )
    marker.write_text("a syncd emulator's data directory\n")


class FileStore:
    """Thread-safe store of files; survives restarts of the process on the same directory."""

    def __init__(self, data_dir: Path, clock: Callable[[], float], linger_seconds: float) -> None:
        self._dir = data_dir
        self._clock = clock
        self._linger = linger_seconds
        self._lock = threading.Lock()
        claim_data_dir(data_dir)  # only a directory the emulator made is ever cleaned
        self.files_dir = data_dir / "files"
        self.tmp_dir = data_dir / "tmp"
        self.files_dir.mkdir(parents=True, exist_ok=True)
        # Parts left by a process that died mid-upload were never committed.
        shutil.rmtree(self.tmp_dir, ignore_errors=True)
        self.tmp_dir.mkdir()
        self._db = sqlite3.connect(data_dir / "meta.sqlite3", check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.executescript(_SCHEMA)
        self._add_missing_columns()
        self.cursor_secret = self._secret()

    def _add_missing_columns(self) -> None:
        have = {row[1] for row in self._db.execute("PRAGMA table_info(files)")}
        for name, decl in _ADDED_COLUMNS.items():
            if name not in have:
                self._db.execute(f"ALTER TABLE files ADD COLUMN {name} {decl}")
        self._db.commit()

    def _secret(self) -> bytes:
        with self._db:
            self._db.execute("INSERT OR IGNORE INTO meta (key, value) VALUES ('cursor_secret', ?)",
                             (secrets.token_hex(32),))
            row = self._db.execute("SELECT value FROM meta WHERE key = 'cursor_secret'").fetchone()
        return bytes.fromhex(str(row[0]))

    def close(self) -> None:
        """Close the database."""
        with self._lock:
            self._db.close()

    def new_sink(self) -> UploadSink:
        """A temp file for an incoming upload."""
        return UploadSink(self.tmp_dir)

    def commit(self, sink: UploadSink, new: NewFile, quota_bytes: int | None = None) -> StoredFile:
        """Move a finished upload into place and record it; returns the new file.

        Raises QuotaExceeded (and drops the upload) if live files would then hold more than
        ``quota_bytes`` bytes across all workspaces.
        """
        now = self._clock()
        expires = None if new.expires_in is None else now + new.expires_in
        stored = StoredFile(
            id=new_id("file"), filename=new.filename, mime_type=new.mime_type, size=sink.size,
            sha256=sink.finish(), created_at=rfc3339(now), downloadable=new.downloadable,
            foreign=new.foreign, deleted=False,
            expires_at=None if expires is None else rfc3339(expires), scope=new.scope,
        )
        target = self.files_dir / stored.id
        try:
            with self._transaction() as db:
                if quota_bytes is not None and self._used(db, now) + sink.size > quota_bytes:
                    raise QuotaExceeded()
                os.replace(sink.path, target)
                db.execute(
                    "INSERT INTO files (id, filename, mime_type, size, sha256, created_at,"
                    " downloadable, is_foreign, expires_at, scope_type, scope_id, workspace)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (stored.id, new.filename, new.mime_type, stored.size, stored.sha256,
                     stored.created_at, new.downloadable, new.foreign, expires,
                     None if new.scope is None else new.scope.type,
                     None if new.scope is None else new.scope.id, new.workspace),
                )
        except BaseException:
            sink.abort()
            target.unlink(missing_ok=True)
            raise
        return stored

    @staticmethod
    def _used(db: sqlite3.Connection, now: float) -> int:
        row = db.execute(f"SELECT COALESCE(SUM(size), 0) FROM files WHERE {_LIVE}",
                         {"now": now}).fetchone()
        return int(row[0])

    def used_bytes(self) -> int:
        """Bytes held by live files in every workspace (what the quota counts)."""
        with self._lock:
            return self._used(self._db, self._clock())

    def add_bytes(self, content: bytes, new: NewFile) -> StoredFile:
        """Store ``content`` as a new file (used to seed files "another program" made)."""
        sink = self.new_sink()
        try:
            sink.write(content)
        except BaseException:
            sink.abort()
            raise
        return self.commit(sink, new)

    def get(self, workspace: str, file_id: str) -> StoredFile | None:
        """The live (not deleted, not expired) file with this id, or None."""
        rows = self._query(f"WHERE workspace = :ws AND id = :id AND {_LIVE}",
                           {"ws": workspace, "id": file_id})
        return rows[0][1] if rows else None

    def expired(self, workspace: str, file_id: str) -> bool:
        """Whether this id names a file that was not deleted but is past its expiry."""
        with self._lock:
            row = self._db.execute(
                "SELECT 1 FROM files WHERE workspace = ? AND id = ? AND deleted_at IS NULL"
                " AND expires_at <= ?", (workspace, file_id, self._clock())).fetchone()
        return row is not None

    def open_content(self, file_id: str) -> BinaryIO:
        """Open a file's content for reading (raises OSError if it is gone)."""
        return (self.files_dir / file_id).open("rb")

    def delete(self, workspace: str, file_id: str) -> bool:
        """Delete a live file: content now, listing after the linger time. False if not live."""
        now = self._clock()
        with self._transaction() as db:
            cursor = db.execute(
                "UPDATE files SET deleted_at = :now"
                f" WHERE workspace = :ws AND id = :id AND {_LIVE}",
                {"now": now, "ws": workspace, "id": file_id},
            )
            found = cursor.rowcount == 1
        if found:
            (self.files_dir / file_id).unlink(missing_ok=True)
        return found

    def listed(self, workspace: str) -> list[StoredFile]:
        """Every file the listing shows now (live and lingering), newest first."""
        rows = self._query(f"WHERE workspace = :ws AND {_VISIBLE} ORDER BY seq DESC",
                           {"ws": workspace})
        return [stored for _, stored in rows]

    def find_live_foreign(self, workspace: str, filename: str) -> StoredFile | None:
        """A live foreign file with this name, if any (makes seeding idempotent)."""
        rows = self._query(
            f"WHERE workspace = :ws AND filename = :name AND is_foreign = 1 AND {_LIVE} LIMIT 1",
            {"ws": workspace, "name": filename},
        )
        return rows[0][1] if rows else None

    def page(self, workspace: str, limit: int, after_id: str | None,
             before_id: str | None) -> Page:
        """``limit`` files older than ``after_id`` or newer than ``before_id``, newest first."""
        if before_id is not None:
            # The `limit` files nearest to the cursor are the oldest of the newer ones.
            rows = self._window(workspace, "seq > :seq", "ASC", self._seq_of(workspace, before_id),
                                limit)
            return Page([f for _, f in rows[:limit]][::-1], len(rows) > limit)
        after = None if after_id is None else self._seq_of(workspace, after_id)
        return self.page_before_seq(workspace, limit, after)

    def page_before_seq(self, workspace: str, limit: int, seq: int | None,
                        scope_id: str | None = None) -> Page:
        """``limit`` files ordered before ``seq`` (all when None), newest first."""
        where = "1 = 1" if seq is None else "seq < :seq"
        if scope_id is not None:
            where += " AND scope_id = :scope"
        rows = self._window(workspace, where, "DESC", seq, limit, scope_id)
        page = rows[:limit]
        return Page([f for _, f in page], len(rows) > limit, page[-1][0] if page else None)

    def by_ids(self, workspace: str, ids: Sequence[str],
               scope_id: str | None = None) -> list[StoredFile]:
        """The live files among ``ids``, newest first; the rest are left out."""
        args: dict[str, object] = {"ws": workspace, "scope": scope_id}
        args.update({f"id{i}": file_id for i, file_id in enumerate(ids)})
        marks = ", ".join(f":id{i}" for i in range(len(ids)))
        scoped = "" if scope_id is None else " AND scope_id = :scope"
        rows = self._query(
            f"WHERE workspace = :ws AND id IN ({marks}) AND {_LIVE}{scoped} ORDER BY seq DESC",
            args)
        return [stored for _, stored in rows]

    def _window(self, workspace: str, where: str, order: str, seq: int | None, limit: int,
                scope_id: str | None = None) -> list[tuple[int, StoredFile]]:
        args = {"ws": workspace, "seq": seq, "limit": limit + 1, "scope": scope_id}
        return self._query(
            f"WHERE workspace = :ws AND {_VISIBLE} AND {where} ORDER BY seq {order} LIMIT :limit",
            args)

    def _seq_of(self, workspace: str, file_id: str) -> int:
        with self._lock:
            row = self._db.execute("SELECT seq FROM files WHERE workspace = ? AND id = ?",
                                   (workspace, file_id)).fetchone()
        if row is None:
            raise UnknownCursor(file_id)
        return int(row[0])

    def _query(self, where: str, args: Mapping[str, object]) -> list[tuple[int, StoredFile]]:
        """Rows ``SELECT ... FROM files <where>``; ``:now`` and ``:cutoff`` are filled in."""
        now = self._clock()
        args = {"now": now, "cutoff": now - self._linger, **args}
        with self._lock:
            rows = self._db.execute(f"SELECT {_COLUMNS} FROM files {where}", args).fetchall()
        return [(int(row[-1]), _row_to_file(row[:-1])) for row in rows]

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        with self._lock, self._db:
            yield self._db


def _row_to_file(row: tuple[object, ...]) -> StoredFile:
    (file_id, filename, mime_type, size, sha256, created, downloadable, foreign, deleted_at,
     expires_at, scope_type, scope_id) = row
    return StoredFile(
        id=str(file_id),
        filename=str(filename),
        mime_type=str(mime_type),
        size=int(size),  # type: ignore[call-overload]
        sha256=str(sha256),
        created_at=str(created),
        downloadable=bool(downloadable),
        foreign=bool(foreign),
        deleted=deleted_at is not None,
        expires_at=None if expires_at is None else rfc3339(float(expires_at)),  # type: ignore[arg-type]
        scope=None if scope_type is None else FileScope(str(scope_type), str(scope_id)),
    )
