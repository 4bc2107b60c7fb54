"""The manifest: a JSON path -> file_id map for programs that should not open SQLite.

Written atomically (temp file + fsync + rename) after changes settle, so a reader never sees a
half-written file. Its shape::

    {"version": 1, "root": "/srv/docs", "generated_at": "2026-11-24T07:00:00Z",
     "files": {"docs/a.pdf": {"file_id": "file_011C...", "size": 1234, "sha256": "...",
                              "mime_type": "application/pdf", "block": "document",
                              "synced_at": "2026-...Z"}}}

``block`` is the Messages content block type the file can be used as: ``document`` (PDF, plain
text), ``image`` (JPEG, PNG, GIF, WebP) or ``container_upload`` (anything else; see
syncd.remote.blocks). It was added without changing ``version``: readers of version 1 may ignore it.
"""

from __future__ import annotations

import json
import os
import stat
import time
from pathlib import Path
from typing import Any

from syncd.journal import Journal
from syncd.local.ownfiles import manifest_temp
from syncd.model import rfc3339
from syncd.remote.blocks import block_type


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
    """Replace ``path`` atomically with ``data`` as JSON.

    The file is 0600 whatever the umask. To share it with a group, give the manifest that group
    and mode 0640 once (``chgrp GROUP FILE; chmod 640 FILE``): each rewrite keeps the group and
    its read bit, never more than 0640.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    mode, group = _kept_access(path)
    tmp = manifest_temp(path)
    tmp.unlink(missing_ok=True)  # a crash's leftover; O_EXCL below never reuses a planted file
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            if group is not None:
                try:
                    os.fchown(out.fileno(), -1, group)
                except PermissionError:  # not a member of that group any more
                    mode = 0o600
            os.fchmod(out.fileno(), mode)
            # Non-UTF-8 names are kept as their escaped form rather than crashing the writer.
            json.dump(data, out, indent=1, ensure_ascii=True)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _kept_access(path: Path) -> tuple[int, int | None]:
    """The mode (0600, or 0640 if the file has group read) and group a rewrite keeps."""
    try:
        info = os.lstat(path)
    except OSError:
        return 0o600, None
    if not stat.S_ISREG(info.st_mode) or not info.st_mode & stat.S_IRGRP:
        return 0o600, None
    return 0o640, info.st_gid
