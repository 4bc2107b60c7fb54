"""Totals for ``syncd status``, kept as counters so the daemon need not count a million rows
twice a second.

The counters are one row in the connection's temp schema, kept by temporary triggers that count
this connection's own writes; ``PRAGMA data_version`` tells when another connection wrote, and
then every row is counted again. A read-only journal always counts every row.
"""

from __future__ import annotations

import dataclasses
import sqlite3

from syncd.journal.store import Store
from syncd.model import JournalCounts

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


class Counts(Store):
    """``counts()``, from the counters while they are known to be right."""

    _counted: int | None = None  # data_version when the counters were last reset

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
