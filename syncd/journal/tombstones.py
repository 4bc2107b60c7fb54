"""Tombstones: remote files this journal created and still has to delete.

A tombstone already owed keeps its attempts and schedule when it is owed again.
"""

from __future__ import annotations

import os
import sqlite3
from typing import Any

from syncd.journal.store import Store
from syncd.model import Tombstone

TOMB_COLS = "file_id, remote_name, path, reason, attempts, next_attempt, last_error"


def tombstone(r: tuple[Any, ...]) -> Tombstone:
    """A ``Tombstone`` from a row of ``TOMB_COLS``."""
    return Tombstone(r[0], r[1], os.fsdecode(r[2]), r[3], r[4], r[5], r[6])


def insert_tombstone(
    conn: sqlite3.Connection, file_id: str, remote_name: str, key: bytes, reason: str
) -> None:
    """Owe a DELETE for ``file_id``, inside the caller's transaction."""
    # OR IGNORE: a tombstone already owed keeps its attempts and schedule.
    conn.execute(
        "INSERT OR IGNORE INTO tombstones (file_id, remote_name, path, reason) VALUES (?, ?, ?, ?)",
        (file_id, remote_name, key, reason),
    )


class Tombstones(Store):
    """``tombstones``: owed deletions, paid by one thread."""

    def add_tombstone(self, file_id: str, remote_name: str, path: str, reason: str) -> None:
        """Owe a DELETE for ``file_id``; adding one already owed changes nothing."""
        with self._write() as conn:
            insert_tombstone(conn, file_id, remote_name, os.fsencode(path), reason)

    def tombstones(self, due_before: float | None = None) -> list[Tombstone]:
        """Owed deletions, soonest first; only those due at ``due_before`` if given."""
        due = float("inf") if due_before is None else due_before
        sql = f"SELECT {TOMB_COLS} FROM tombstones WHERE next_attempt <= ?"
        return [tombstone(r) for r in self._select(sql + " ORDER BY next_attempt, file_id", due)]

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
