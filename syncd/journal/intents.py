"""Upload intents: written before an upload starts, so that reconcile can adopt or delete what
a crash left behind. An intent id is never reused (AUTOINCREMENT)."""

from __future__ import annotations

import os

from syncd.journal.store import Store
from syncd.model import Intent, LocalStat


class Intents(Store):
    """``intents``: uploads that may have stored a copy the rows do not know yet."""

    def add_intent(
        self, path: str, remote_name: str, stat: LocalStat, started_at: float
    ) -> Intent:
        """Record that an upload of ``stat``'s version is about to start; return it with its id."""
        intent_id = self._write_one(
            "INSERT INTO intents (path, remote_name, size, mtime_ns, ino, started_at)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            os.fsencode(path), remote_name, stat.size, stat.mtime_ns, stat.ino, started_at,
        )
        assert intent_id is not None  # an INSERT into a rowid table always sets it
        return Intent(intent_id, path, remote_name, stat.size, stat.mtime_ns, stat.ino,
                      started_at)

    def drop_intent(self, intent_id: int) -> None:
        """Forget an intent (its upload failed cleanly, or reconcile resolved it)."""
        self._write_one("DELETE FROM intents WHERE id = ?", intent_id)

    def intents(self) -> list[Intent]:
        """Every open intent, oldest first."""
        rows = self._select(
            "SELECT id, path, remote_name, size, mtime_ns, ino, started_at FROM intents ORDER BY id"
        )
        return [Intent(r[0], os.fsdecode(r[1]), *r[2:]) for r in rows]
