"""``Journal``: opening (for writing, holding the lock; or read-only, beside a daemon) and the
one object every thread of the daemon shares.

Its parts live beside it, one concern each, every one a subclass of ``Store`` (the
connection and its transactions): ``Rows``, ``Intents``, ``Tombstones``, ``Meta`` (and the
binding), ``Counts`` and ``Schema``.
"""

from __future__ import annotations

import os
import sqlite3
import urllib.parse
from pathlib import Path

from syncd.errors import JournalError
from syncd.journal.counts import Counts
from syncd.journal.intents import Intents
from syncd.journal.lock import release_lock, take_lock
from syncd.journal.meta import Meta
from syncd.journal.permissions import create_private, tighten
from syncd.journal.rows import Rows
from syncd.journal.schema import Schema
from syncd.journal.store import connect, journal_error
from syncd.journal.tombstones import Tombstones


class Journal(Rows, Intents, Tombstones, Meta, Counts, Schema):
    """The SQLite journal; one object shared by every thread of the daemon."""

    @classmethod
    def open(cls, path: Path, root: str, base_url: str, name_prefix: str = "") -> Journal:
        """Open (or create) the journal for writing, holding its lock until close()."""
        path = Path(path)
        lock_fd = take_lock(path)
        try:
            if path.exists() and not os.access(path, os.W_OK, effective_ids=True):
                raise JournalError(f"journal {path} is read-only; make it writable by this user")
            create_private(path)
            journal = cls(path, connect(path, str(path), uri=False), lock_fd, readonly=False)
        except BaseException:
            release_lock(lock_fd)
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
        journal = cls(path, connect(path, uri, uri=True), None, readonly=True)
        try:
            journal._check_ours()
            journal._check_current()
        except BaseException:
            journal.close()
            raise
        return journal

    def _prepare(self, root: str, base_url: str, name_prefix: str) -> None:
        self._check_ours()  # before the switch to WAL, which would already change the file
        tighten(self.path)
        with self._mutex:
            conn = self._live()
            try:
                # Outside any transaction: SQLite cannot switch to WAL inside one.
                conn.execute("PRAGMA journal_mode=WAL")
                # NORMAL is durable across application crashes in WAL mode; a power cut may lose
                # the last commits, which reconcile repairs through intents and the listing.
                conn.execute("PRAGMA synchronous=NORMAL")
            except sqlite3.Error as exc:
                raise journal_error(self.path, exc) from exc
        self._migrate()
        self._bind(root, base_url, name_prefix)
