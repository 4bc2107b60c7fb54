"""The manifest: a JSON path -> file_id map for programs that should not open SQLite.

Written atomically (temp file + fsync + rename) after changes settle, so a reader never sees a
half-written file. Its shape::

    {"version": 1, "root": "/srv/docs", "generated_at": "2026-11-24T07:00:00Z",
     "files": {"docs/a.pdf": {"file_id": "file_011C...", "size": 1234, "sha256": "...",
                              "mime_type": "application/pdf", "block": "document",
                              "synced_at": "2026-...Z"}}}

``block`` is the Messages content block type the file can be used as: ``document`` (PDF, plain
text), ``image`` (JPEG, PNG, GIF, WebP) or ``container_upload`` (anything else; see
syncd.blocks). It was added without changing ``version``: readers of version 1 may ignore it.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from syncd.blocks import block_type
from syncd.journal import Journal


def rfc3339(ts: float) -> str:
    """A unix time as RFC 3339 UTC with a Z."""
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def manifest_data(journal: Journal, root: str, now: float | None = None) -> dict[str, Any]:
    """The manifest as a dict (paths with a synced copy only)."""
    files = {
        row.path: {
            "file_id": row.synced.file_id,
            "size": row.synced.size,
            "sha256": row.synced.sha256,
            "mime_type": row.synced.mime_type,
            "block": block_type(row.synced.mime_type),
            "synced_at": rfc3339(row.synced.synced_at),
        }
        for row in journal.iter_rows()
        if row.synced is not None
    }
    generated = rfc3339(time.time() if now is None else now)
    return {"version": 1, "root": root, "generated_at": generated, "files": files}


def write_manifest(path: Path, data: dict[str, Any]) -> None:
    """Replace ``path`` atomically with ``data`` as JSON."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            # Non-UTF-8 names are kept as their escaped form rather than crashing the writer.
            json.dump(data, out, indent=1, ensure_ascii=True)
            out.flush()
            os.fsync(out.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
