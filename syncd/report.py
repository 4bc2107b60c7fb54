"""What ``syncd status``, ``syncd ls`` and ``syncd errors`` print, read from the journal.

They open the journal read-only, so they work while the daemon runs, and they never print the
API key: the journal does not hold it.
"""

from __future__ import annotations

import json
import sys
from typing import Any

from syncd.config import Settings
from syncd.journal import Journal, lock_holder
from syncd.manifest import rfc3339


def status_data(settings: Settings) -> dict[str, Any]:
    """The status as a JSON-ready dict."""
    path = settings.journal_path
    with Journal.open_readonly(path) as journal:
        counts = journal.counts()
        queued = int(journal.get_meta("queued") or 0)
        last_scan = journal.get_meta("last_scan")
        foreign = journal.get_meta("foreign_files")
        return {
            "root": str(settings.root),
            "journal": str(path),
            "synced": counts.synced,
            "synced_bytes": counts.synced_bytes,
            "pending": queued + counts.intents + counts.tombstones + counts.retrying,
            "errors": counts.errors,
            "retrying": counts.retrying,
            "owed_deletions": counts.tombstones,
            "foreign_files": int(foreign) if foreign else None,
            "last_scan": rfc3339(float(last_scan)) if last_scan else None,
            "last_reconcile": journal.get_meta("last_reconcile"),
            "daemon_pid": lock_holder(path) or None,
            "requests_per_minute": settings.remote.requests_per_minute,
        }


def print_status(settings: Settings, as_json: bool = False) -> int:
    """Print the status; 0, or 1 when paths are in error."""
    data = status_data(settings)
    if as_json:
        print(json.dumps(data, indent=2))
        return 1 if data["errors"] else 0
    pid = data["daemon_pid"]
    foreign = data["foreign_files"]
    lines = [
        ("root", data["root"]),
        ("journal", data["journal"]),
        ("daemon", f"running (pid {pid})" if pid else "not running"),
        ("synced", f"{data['synced']} files, {_size(data['synced_bytes'])}"),
        ("pending", f"{data['pending']} (queued, uploading, retrying or owed deletions)"),
        ("errors", str(data["errors"])),
        ("foreign files", "unknown until a reconcile" if foreign is None else str(foreign)),
        ("last scan", data["last_scan"] or "never"),
        ("last reconcile", data["last_reconcile"] or "never"),
        ("pacing", f"{data['requests_per_minute']:g} requests/min"),
    ]
    for key, value in lines:
        print(f"{key:<15} {value}")
    if data["errors"]:
        print("\npaths in error (fix the file, then it is retried; `syncd errors` lists all):")
        with Journal.open_readonly(settings.journal_path) as journal:
            for row in journal.errors()[:10]:
                if row.failure is not None and row.failure.kind == "permanent":
                    print(f"  {row.path}: {row.failure.message}")
    return 1 if data["errors"] else 0


def _size(n: int) -> str:
    size = float(n)
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1000 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1000
    return f"{size:.1f} TB"


def print_ls(settings: Settings, prefix: str = "", as_json: bool = False) -> int:
    """Print the path -> file_id map (optionally below a path prefix)."""
    with Journal.open_readonly(settings.journal_path) as journal:
        entries = [
            {
                "path": row.path,
                "file_id": row.synced.file_id,
                "remote_name": row.synced.remote_name,
                "size": row.synced.size,
                "sha256": row.synced.sha256,
                "mime_type": row.synced.mime_type,
                "synced_at": rfc3339(row.synced.synced_at),
            }
            for row in journal.iter_rows()
            if row.synced is not None and row.path.startswith(prefix)
        ]
    if as_json:
        json.dump(entries, sys.stdout, indent=2)
        print()
    else:
        for entry in entries:
            print(f"{entry['file_id']}  {entry['size']:>12}  {entry['path']}")
    return 0


def print_errors(settings: Settings) -> int:
    """Print the paths in error state; 1 if there are any."""
    with Journal.open_readonly(settings.journal_path) as journal:
        rows = journal.errors()
    for row in rows:
        assert row.failure is not None
        print(f"{row.failure.kind:<9}  {row.path}: {row.failure.message}")
    return 1 if rows else 0
