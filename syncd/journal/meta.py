"""The journal's key/value ``meta`` table, and binding a journal to one root and one remote.

A journal made for one root at one base URL with one name prefix refuses any other: a wrong
config must not upload a folder into another folder's files, or rename every remote file.
"""

from __future__ import annotations

from syncd.errors import JournalMismatchError
from syncd.journal.store import Store


class Meta(Store):
    """``meta``: the binding (root, base_url, name_prefix) and what the daemon publishes."""

    def get_meta(self, key: str) -> str | None:
        """A meta value, or None if unset."""
        rows = self._select("SELECT value FROM meta WHERE key = ?", key)
        return str(rows[0][0]) if rows else None

    def set_meta(self, key: str, value: str) -> None:
        """Set a meta value."""
        with self._write() as conn:
            conn.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (key, value))

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
