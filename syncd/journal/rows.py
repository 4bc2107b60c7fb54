"""The ``files`` table: one row per local path, mapping it to the remote file that holds its
content (``Synced``) and to the latest failure for its current version (``Failure``).

Paths are stored as BLOBs of their filesystem bytes (``os.fsencode``): a non-UTF-8 name decodes
to lone surrogates that a TEXT column cannot hold, and BLOBs sort by memcmp, the byte order the
scanner walks in. Long reads go a chunk at a time by keyset, releasing the mutex in between.
"""

from __future__ import annotations

import dataclasses
import itertools
import os
from collections.abc import Iterator
from typing import Any

from syncd.journal.store import Store
from syncd.journal.tombstones import TOMB_COLS, insert_tombstone, tombstone
from syncd.model import Copy, Failure, FileRow, LocalStat, Synced, Tombstone

CHUNK_ROWS = 500  # rows per iter_rows query: flat memory, and the lock is released in between
SCAN_CHUNK_ROWS = 5000  # rows per scan_rows query: plain tuples, a few ms under the lock
# (path bytes, size of a copy that proves the content or None, its mtime_ns, ino)
ScanRow = tuple[bytes, int | None, int | None, int | None]

_SYNCED_COLS = (
    "file_id, remote_name, sha256, size, mtime_ns, ino, mime_type, synced_at, expires_at"
)
_FILE_COLS = (
    "path, file_id, remote_name, sha256, size, mtime_ns, ino, mime_type, synced_at,"
    " fail_kind, fail_message, fail_attempts, fail_next, fail_size, fail_mtime_ns, fail_ino,"
    " expires_at, gone"
)
_FAIL_COLS = "fail_kind, fail_message, fail_attempts, fail_next, fail_size, fail_mtime_ns, fail_ino"


def _row(r: tuple[Any, ...]) -> FileRow:
    synced = Synced(*r[1:9], expires_at=r[16]) if r[1] is not None else None  # type: ignore[misc]
    failure = None
    if r[9] is not None:
        stat = LocalStat(*r[13:16]) if r[13] is not None else None
        failure = Failure(r[9], r[10], r[11], r[12], stat)
    return FileRow(os.fsdecode(r[0]), synced, failure, r[17] if synced else None)


class Rows(Store):
    """Reading and writing the rows; a write that owes a DELETE tombstones in the same
    transaction."""

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
                insert_tombstone(conn, old[0], old[1], key, "replaced")
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
            insert_tombstone(conn, old[0], old[1], key, reason)
            r = conn.execute(
                f"SELECT {TOMB_COLS} FROM tombstones WHERE file_id = ?", (old[0],)
            ).fetchone()
        return tombstone(r)

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
