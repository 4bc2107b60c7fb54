"""The emulator's disk-backed file store: metadata in SQLite, content as one file per id.

Layout under the data directory::

    meta.sqlite3      one row per file ever created (deleted files stay as tombstones)
    files/<id>        the content of each live file
    tmp/              uploads in flight; emptied at start

Rows are never removed: a deleted file's row keeps its place in the order so that a paging
cursor naming it stays valid forever. Order is the AUTOINCREMENT ``seq``, not ``created_at``,
so files created in the same microsecond still have a stable order.
"""

from __future__ import annotations

import hashlib
import os
import re
import secrets
import shutil
import sqlite3
import string
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

from python_multipart.exceptions import FormParserError
from python_multipart.multipart import MultipartParser

from syncd.names import filename_problem

if TYPE_CHECKING:
    from python_multipart.multipart import MultipartCallbacks

_BASE62 = string.digits + string.ascii_uppercase + string.ascii_lowercase
_COLUMNS = "id, filename, mime_type, size, sha256, created_at, downloadable, is_foreign, deleted_at"
_SCHEMA = """
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
    deleted_at REAL
)
"""


def new_id(prefix: str) -> str:
    """A fresh id in the service's style: ``<prefix>_011C`` + 20 base62 characters."""
    return f"{prefix}_011C" + "".join(secrets.choice(_BASE62) for _ in range(20))


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

    def api_object(self) -> dict[str, object]:
        """The File object the API returns for this file."""
        return {
            "id": self.id,
            "type": "file",
            "filename": self.filename,
            "mime_type": self.mime_type,
            "size_bytes": self.size,
            "created_at": self.created_at,
            "downloadable": self.downloadable,
        }


@dataclass(frozen=True)
class Page:
    """One page of a listing, newest first."""

    files: list[StoredFile]
    has_more: bool


class BadUpload(ValueError):
    """The body is not an acceptable upload; the message is meant for the client."""


class UploadTooLarge(Exception):
    """The file part grew past the size limit."""


class UnknownCursor(LookupError):
    """A paging cursor names a file id this store never issued."""


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


class FileStore:
    """Thread-safe store of files; survives restarts of the process on the same directory."""

    def __init__(self, data_dir: Path, clock: Callable[[], float], linger_seconds: float) -> None:
        self._dir = data_dir
        self._clock = clock
        self._linger = linger_seconds
        self._lock = threading.Lock()
        self.files_dir = data_dir / "files"
        self.tmp_dir = data_dir / "tmp"
        self.files_dir.mkdir(parents=True, exist_ok=True)
        # Parts left by a process that died mid-upload were never committed.
        shutil.rmtree(self.tmp_dir, ignore_errors=True)
        self.tmp_dir.mkdir()
        self._db = sqlite3.connect(data_dir / "meta.sqlite3", check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute(_SCHEMA)
        self._db.commit()

    def close(self) -> None:
        """Close the database."""
        with self._lock:
            self._db.close()

    def new_sink(self) -> UploadSink:
        """A temp file for an incoming upload."""
        return UploadSink(self.tmp_dir)

    def commit(
        self, sink: UploadSink, filename: str, mime_type: str, *, downloadable: bool = False,
        foreign: bool = False,
    ) -> StoredFile:
        """Move a finished upload into place and record it; returns the new file."""
        stored = StoredFile(
            id=new_id("file"), filename=filename, mime_type=mime_type, size=sink.size,
            sha256=sink.finish(), created_at=self._timestamp(), downloadable=downloadable,
            foreign=foreign, deleted=False,
        )
        target = self.files_dir / stored.id
        try:
            os.replace(sink.path, target)
            with self._transaction() as db:
                db.execute(
                    f"INSERT INTO files ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, NULL)",
                    (stored.id, filename, mime_type, stored.size, stored.sha256,
                     stored.created_at, downloadable, foreign),
                )
        except BaseException:
            sink.abort()
            target.unlink(missing_ok=True)
            raise
        return stored

    def _timestamp(self) -> str:
        # RFC 3339 with microseconds and a Z, as the service writes it.
        return datetime.fromtimestamp(self._clock(), UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")

    def add_bytes(
        self, filename: str, content: bytes, mime_type: str, *, downloadable: bool, foreign: bool
    ) -> StoredFile:
        """Store ``content`` as a new file (used to seed files "another program" made)."""
        sink = self.new_sink()
        try:
            sink.write(content)
        except BaseException:
            sink.abort()
            raise
        return self.commit(sink, filename, mime_type, downloadable=downloadable, foreign=foreign)

    def get(self, file_id: str) -> StoredFile | None:
        """The live (not deleted) file with this id, or None."""
        rows = self._query(f"SELECT {_COLUMNS} FROM files WHERE id = ? AND deleted_at IS NULL",
                           (file_id,))
        return rows[0] if rows else None

    def open_content(self, file_id: str) -> BinaryIO:
        """Open a file's content for reading (raises OSError if it is gone)."""
        return (self.files_dir / file_id).open("rb")

    def delete(self, file_id: str) -> bool:
        """Delete a live file: content now, listing after the linger time. False if not live."""
        with self._transaction() as db:
            cursor = db.execute(
                "UPDATE files SET deleted_at = ? WHERE id = ? AND deleted_at IS NULL",
                (self._clock(), file_id),
            )
            found = cursor.rowcount == 1
        if found:
            (self.files_dir / file_id).unlink(missing_ok=True)
        return found

    def listed(self) -> list[StoredFile]:
        """Every file the listing shows now (live and lingering), newest first."""
        sql = f"SELECT {_COLUMNS} FROM files WHERE {self._visible()} ORDER BY seq DESC"
        return self._query(sql, (self._linger_cutoff(),))

    def find_live_foreign(self, filename: str) -> StoredFile | None:
        """A live foreign file with this name, if any (makes seeding idempotent)."""
        rows = self._query(
            f"SELECT {_COLUMNS} FROM files WHERE filename = ? AND is_foreign = 1"
            " AND deleted_at IS NULL LIMIT 1",
            (filename,),
        )
        return rows[0] if rows else None

    def page(self, limit: int, after_id: str | None, before_id: str | None) -> Page:
        """``limit`` files older than ``after_id`` or newer than ``before_id``, newest first."""
        cutoff = self._linger_cutoff()
        if after_id is not None:
            seq = self._seq_of(after_id)
            where, order, args = "seq < ?", "DESC", [cutoff, seq, limit + 1]
        elif before_id is not None:
            seq = self._seq_of(before_id)
            # The `limit` files nearest to the cursor are the oldest of the newer ones.
            where, order, args = "seq > ?", "ASC", [cutoff, seq, limit + 1]
        else:
            where, order, args = "1 = 1", "DESC", [cutoff, limit + 1]
        rows = self._query(
            f"SELECT {_COLUMNS} FROM files WHERE {self._visible()} AND {where}"
            f" ORDER BY seq {order} LIMIT ?",
            tuple(args),
        )
        files = rows[:limit]
        if order == "ASC":
            files.reverse()
        return Page(files=files, has_more=len(rows) > limit)

    def _seq_of(self, file_id: str) -> int:
        with self._lock:
            row = self._db.execute("SELECT seq FROM files WHERE id = ?", (file_id,)).fetchone()
        if row is None:
            raise UnknownCursor(file_id)
        return int(row[0])

    def _linger_cutoff(self) -> float:
        return self._clock() - self._linger

    @staticmethod
    def _visible() -> str:
        # Deleted rows stay listed while they linger, like the service's "shortly after".
        return "(deleted_at IS NULL OR deleted_at > ?)"

    def _query(self, sql: str, args: tuple[object, ...]) -> list[StoredFile]:
        with self._lock:
            rows = self._db.execute(sql, args).fetchall()
        return [_row_to_file(row) for row in rows]

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        with self._lock, self._db:
            yield self._db


def _row_to_file(row: tuple[object, ...]) -> StoredFile:
    file_id, filename, mime_type, size, sha256, created, downloadable, foreign, deleted_at = row
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
    )


_PARAM_RE = re.compile(rb';\s*([^\s=;]+)\s*=\s*("(?:[^"\\]|\\.)*"|[^;]*)')


def _disposition_params(value: bytes) -> dict[bytes, str]:
    """Parameters of a Content-Disposition header, unquoted and decoded as UTF-8."""
    params: dict[bytes, str] = {}
    for key, raw in _PARAM_RE.findall(value):
        if len(raw) >= 2 and raw[:1] == b'"' and raw[-1:] == b'"':
            raw = re.sub(rb"\\(.)", rb"\1", raw[1:-1])
        # surrogateescape turns bad UTF-8 into lone surrogates, which filename_problem refuses.
        params.setdefault(key.lower(), raw.strip().decode("utf-8", "surrogateescape"))
    return params


class MultipartIngest:
    """Streams the one ``file`` part of a multipart/form-data body into the store.

    Memory stays flat whatever the file size: each chunk goes to a temp file and the hash.
    Feed it the body chunk by chunk, then ``commit()``; ``abort()`` in a ``finally``.
    """

    def __init__(self, store: FileStore, boundary: bytes, max_bytes: int) -> None:
        self._store = store
        self._max_bytes = max_bytes
        self._parser = MultipartParser(boundary, self._callbacks())
        self._sink: UploadSink | None = None
        self._filename = ""
        self._mime_type = ""
        self._in_file = False
        self._ended = False
        self._headers: dict[bytes, bytes] = {}
        self._field = b""
        self._value = b""

    def feed(self, chunk: bytes) -> None:
        """Parse the next chunk of the body (raises BadUpload or UploadTooLarge)."""
        try:
            self._parser.write(chunk)
        except FormParserError as exc:
            raise BadUpload("Invalid multipart/form-data body") from exc

    def commit(self) -> StoredFile:
        """Check the body was complete and held a file, then store it."""
        try:
            self._parser.finalize()
        except FormParserError as exc:
            raise BadUpload("Invalid multipart/form-data body") from exc
        if self._sink is None:
            raise BadUpload("file: Field required")
        if not self._ended or self._in_file:
            raise BadUpload("Invalid multipart/form-data body: it ends before the closing boundary")
        return self._store.commit(self._sink, self._filename, self._mime_type)

    def abort(self) -> None:
        """Remove whatever was not committed (a no-op after ``commit``)."""
        if self._sink is not None:
            self._sink.abort()

    def _callbacks(self) -> MultipartCallbacks:
        return {
            "on_part_begin": self._part_begin, "on_header_field": self._header_field,
            "on_header_value": self._header_value, "on_header_end": self._header_end,
            "on_headers_finished": self._headers_finished, "on_part_data": self._part_data,
            "on_part_end": self._part_end, "on_end": self._end,
        }

    def _part_begin(self) -> None:
        self._headers = {}

    def _header_field(self, data: bytes, start: int, end: int) -> None:
        self._field += data[start:end]

    def _header_value(self, data: bytes, start: int, end: int) -> None:
        self._value += data[start:end]

    def _header_end(self) -> None:
        self._headers[self._field.strip().lower()] = self._value.strip()
        self._field, self._value = b"", b""

    def _headers_finished(self) -> None:
        params = _disposition_params(self._headers.get(b"content-disposition", b""))
        if params.get(b"name") != "file":
            return  # other form fields are ignored
        if self._sink is not None:
            raise BadUpload("file: exactly one part named `file` is allowed")
        filename = params.get(b"filename")
        if filename is None:
            raise BadUpload("file: the part must be a file (Content-Disposition needs a filename)")
        problem = filename_problem(filename)
        if problem is not None:
            raise BadUpload(problem)
        mime_type = self._headers.get(b"content-type", b"").decode("latin-1").strip()
        if len(mime_type) > 255:
            raise BadUpload("file: the part's Content-Type is longer than 255 characters")
        self._filename = filename
        self._mime_type = mime_type or "application/octet-stream"
        self._sink = self._store.new_sink()
        self._in_file = True

    def _part_data(self, data: bytes, start: int, end: int) -> None:
        if self._in_file and self._sink is not None:
            self._sink.write(data[start:end])
            if self._sink.size > self._max_bytes:
                raise UploadTooLarge()

    def _part_end(self) -> None:
        self._in_file = False

    def _end(self) -> None:
        self._ended = True
