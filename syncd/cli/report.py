"""What ``syncd status``, ``syncd ls`` and ``syncd errors`` print, read from the journal.

They open the journal read-only, so they work while the daemon runs, and they never print the
API key: the journal does not hold it.
"""

from __future__ import annotations

import json
import math
import os
import sys
import unicodedata
from collections.abc import Callable
from pathlib import Path
from typing import Any

from syncd.config import Settings
from syncd.engine.plan import full_pass_interval
from syncd.engine.reconcile import INTERVAL_META, LISTED_META, PAGES_META
from syncd.errors import ConfigError
from syncd.journal import Journal, lock_holder
from syncd.model import Synced, read_stamp, rfc3339
from syncd.remote.blocks import block_type, content_block, mount_name_problem, resource


def status_data(settings: Settings) -> dict[str, Any]:
    """The status as a JSON-ready dict."""
    path = settings.journal_path
    with Journal.open_readonly(path) as journal:
        counts = journal.counts()
        queued = int(journal.get_meta("queued") or 0)
        foreign = journal.get_meta("foreign_files")
        return {
            "root": str(settings.root),
            "journal": str(path),
            "synced": counts.synced,
            "synced_bytes": counts.synced_bytes,
            "pending": counts.pending(queued),
            "queue_lanes": _lanes(journal),
            "errors": counts.errors,
            "retrying": counts.retrying,
            "owed_deletions": counts.tombstones,
            "foreign_files": int(foreign) if foreign else None,
            "last_scan": _time_or_none(read_stamp(journal.get_meta("last_scan"))),
            "last_reconcile": _time_or_none(read_stamp(journal.get_meta("last_reconcile"))),
            **_next_full_pass(journal, settings),
            "daemon_pid": lock_holder(path) or None,
            "requests_per_minute": settings.remote.requests_per_minute,
            "api_version": settings.remote.api_version,
            "workspace_id": journal.get_meta("workspace_id") or None,
            "reuploading": counts.reuploads,
            "next_renewal": _time_or_none(journal.next_renewal()),
            "paused": _pauses(journal) + _journal_pauses(path),
            "unreadable": _unreadable(journal),
            "ignore_warnings": [w for w in (journal.get_meta("ignore_warnings") or "").split("\n")
                                if w],
        }


def _lanes(journal: Journal) -> dict[str, int]:
    """Paths queued or uploading per lane (live edits, backlog), as the daemon last published
    them (zeros before it has)."""
    raw = journal.get_meta("queue_lanes")
    try:
        found = json.loads(raw) if raw else {}
    except ValueError:
        found = {}
    return {lane: int(found.get(lane, 0)) for lane in ("live", "backlog")}


def _next_full_pass(journal: Journal, settings: Settings) -> dict[str, Any]:
    """When the periodic full listing is next due (at the latest: a restart lists at once when
    a listing is owed) and its cost in list requests, as the last complete one paged.

    The interval is the one the daemon last scheduled (stretched to the budget share at the
    rate it paces to); before it has scheduled one, the configured rate stretches it."""
    last = read_stamp(journal.get_meta(LISTED_META))
    raw = journal.get_meta(PAGES_META) or ""
    pages = int(raw) if raw.isdigit() else None
    interval = _seconds(journal.get_meta(INTERVAL_META))
    if interval is None:
        sync = settings.sync
        interval = full_pass_interval(sync.reconcile_interval_seconds, pages or 0,
                                      sync.reconcile_budget_share,
                                      settings.remote.requests_per_minute)
    return {
        "next_full_pass": _time_or_none(None if last is None else last + interval),
        "full_pass_requests": pages,
    }


def _seconds(text: str | None) -> float | None:
    """A stored positive duration; None when absent or unreadable."""
    try:
        value = float(text or "nan")
    except ValueError:
        return None
    return value if math.isfinite(value) and value > 0 else None


def _full_pass_text(data: dict[str, Any]) -> str:
    when = data["next_full_pass"] or "at the next start (no complete listing yet)"
    cost = data["full_pass_requests"]
    return when if cost is None else f"{when}, ~{cost} list request(s)"


def _time_or_none(ts: float | None) -> str | None:
    return None if ts is None else rfc3339(ts)


# Every pause the daemon publishes (Mirror.publish_pauses, the reconciler), in display order.
PAUSE_KEYS = (
    "root_refused", "uploads_paused", "deletions_refused", "reconcile_refused", "threads_dead",
)


def _pauses(journal: Journal) -> list[str]:
    """Everything that keeps the daemon from converging, as the daemon last published it."""
    found = [journal.get_meta(key) for key in PAUSE_KEYS]
    return [p for p in found if p]


def _journal_pauses(path: Path) -> list[str]:
    """A journal the daemon cannot write cannot carry that news: status looks for itself.

    The daemon pauses (and says so in STATUS=) on any failed write; what another process can
    see is the usual cause: a read-only filesystem or a full disk. (Whether the daemon's user
    may write the file is not this user's to judge.)
    """
    try:
        fs = os.statvfs(path.parent)
    except OSError:
        return []
    if fs.f_flag & os.ST_RDONLY:
        reason = "its filesystem is read-only"
    elif fs.f_bavail == 0:
        reason = "its disk is full"
    else:
        return []
    return [f"journal not writable ({reason}): syncd records nothing, so it syncs nothing,"
            " until it can write again"]


def _unreadable(journal: Journal) -> list[dict[str, str]]:
    """The folders the last scan could not read, with why."""
    raw = journal.get_meta("unreadable")
    found = json.loads(raw) if raw else {}
    return [{"path": path, "reason": reason} for path, reason in sorted(found.items())]


def chosen_folders(settings: Settings, name: str | None) -> list[tuple[str, Settings]]:
    """Every folder of the config, or the one ``--folder`` names (ConfigError if none is)."""
    folders = settings.folders()
    if name is None:
        return folders
    found = [f for f in folders if f[0] == name]
    if not found:
        names = ", ".join(n for n, _ in folders if n) or "none (the config has one root)"
        raise ConfigError(f"no folder named {name!r}; the config's folders: {names}")
    return found


def _sections(folders: list[tuple[str, Settings]], show: Callable[[Settings], int]) -> int:
    """``show`` for each folder, each under its name when there are several; the worst code."""
    code = 0
    for index, (name, one) in enumerate(folders):
        if len(folders) > 1:
            print(f"{chr(10) if index else ''}folder {name}")
        code = max(code, show(one))
    return code


def print_status(settings: Settings, as_json: bool = False, folder: str | None = None) -> int:
    """Print the status of every folder (or the one named); 0, or 1 when paths are in error, a
    pause holds or a folder could not be read."""
    folders = chosen_folders(settings, folder)
    if as_json and len(folders) > 1:
        items = [{"folder": name, **status_data(one)} for name, one in folders]
        print(json.dumps({"folders": items}, indent=2))
        return 1 if any(_failing(item) for item in items) else 0
    return _sections(folders, lambda one: _print_status(one, as_json))


def _failing(data: dict[str, Any]) -> bool:
    return bool(data["errors"] or data["paused"] or data["unreadable"])


def _print_status(settings: Settings, as_json: bool) -> int:
    data = status_data(settings)
    failing = _failing(data)
    if as_json:
        print(json.dumps(data, indent=2))
        return 1 if failing else 0
    pid = data["daemon_pid"]
    foreign = data["foreign_files"]
    lines = [
        ("root", data["root"]),
        ("journal", data["journal"]),
        ("daemon", f"running (pid {pid})" if pid else "not running"),
        ("synced", f"{data['synced']} files, {_size(data['synced_bytes'])}"),
        ("pending", f"{data['pending']} (queued, uploading, retrying or owed deletions)"),
        ("queue lanes", "live {live}, backlog {backlog}".format(**data["queue_lanes"])),
        ("errors", str(data["errors"])),
        ("foreign files", "unknown until a reconcile" if foreign is None else str(foreign)),
        ("last scan", data["last_scan"] or "never"),
        ("last reconcile", data["last_reconcile"] or "never"),
        ("next full pass", _full_pass_text(data)),
        ("pacing", f"{data['requests_per_minute']:g} requests/min"),
        ("api", f"{data['api_version']}, workspace {data['workspace_id'] or 'not yet known'}"),
    ]
    if data["reuploading"]:
        lines.append(("re-uploading", f"{data['reuploading']} (missing, expired or renewing)"))
    if data["next_renewal"]:
        lines.append(("next renewal", data["next_renewal"]))
    lines += [("PAUSED", reason) for reason in data["paused"]]
    if data["unreadable"]:
        lines.append(("unreadable", f"{len(data['unreadable'])} folder(s) not read by the last"
                      " scan (see `syncd errors`)"))
    lines += [("ignore file", warning) for warning in data["ignore_warnings"]]
    for key, value in lines:
        print(f"{key:<15} {value}")
    if data["errors"]:
        print("\npaths in error (fix the file, then it is retried; `syncd errors` lists all):")
        with Journal.open_readonly(settings.journal_path) as journal:
            for row in journal.errors()[:10]:
                if row.failure is not None and row.failure.kind == "permanent":
                    print(f"  {row.path}: {row.failure.message}")
    return 1 if failing else 0


def _size(n: int) -> str:
    size = float(n)
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1000 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1000
    return f"{size:.1f} TB"


LS_FORMATS = ("text", "json", "blocks", "resources")


def print_ls(
    settings: Settings, prefix: str = "", fmt: str = "text", mount_name: str | None = None,
    folder: str | None = None,
) -> int:
    """:func:`print_one_ls` for every folder (or the one named): text under each folder's name,
    the JSON formats as one array (``json`` items then carry their ``folder``)."""
    folders = chosen_folders(settings, folder)
    if fmt == "text" or len(folders) == 1:
        return _sections(folders, lambda one: print_one_ls(one, prefix, fmt, mount_name))
    out: list[dict[str, Any]] = []
    for name, one in folders:
        items = _ls_items(one, prefix, fmt, mount_name)
        out += [{"folder": name, **i} for i in items] if fmt == "json" else items
    json.dump(out, sys.stdout, indent=2)
    print()
    return 0


def print_one_ls(
    settings: Settings, prefix: str = "", fmt: str = "text", mount_name: str | None = None
) -> int:
    """Print the synced files (optionally below a path prefix) in one of ``LS_FORMATS``.

    - ``text``: file_id, size and path per line; control characters in paths are escaped (see
      :func:`escape_path`), so one file is always one line.
    - ``json``: a list of objects, one per file, each with the content ``block`` type it can be
      used as (``document``, ``image`` or ``container_upload``).
    - ``blocks``: a JSON array of ready-to-send Messages content blocks, one per file.
    - ``resources``: a JSON array of Managed Agents ``file`` resources mounted at
      ``/mnt/<mount_name>/<path>``, ``mount_name`` defaulting to the root folder's name. A path
      that is not valid UTF-8 cannot be written as a mount path: such files are skipped, with one
      warning line on stderr giving their count (``blocks`` keeps them, escaping the title).

    Raises ConfigError (exit 2, one line) when the mount name is not usable.
    """
    if fmt not in LS_FORMATS:
        raise ValueError(f"unknown ls format {fmt!r}")
    if fmt == "text":
        for path, synced in _synced_rows(settings, prefix):
            print(f"{synced.file_id}  {synced.size:>12}  {escape_path(path)}")
        return 0
    json.dump(_ls_items(settings, prefix, fmt, mount_name), sys.stdout, indent=2)
    print()
    return 0


def _synced_rows(settings: Settings, prefix: str) -> list[tuple[str, Synced]]:
    with Journal.open_readonly(settings.journal_path) as journal:
        return [
            (row.path, row.synced)
            for row in journal.iter_rows()
            if row.synced is not None and row.path.startswith(prefix)
        ]


def _ls_items(
    settings: Settings, prefix: str, fmt: str, mount_name: str | None
) -> list[dict[str, Any]]:
    """One folder's files as ``json``, ``blocks`` or ``resources`` items."""
    mount = _mount_name(settings, mount_name) if fmt == "resources" else ""
    rows = _synced_rows(settings, prefix)
    out: list[dict[str, Any]] = []
    skipped = 0
    for path, synced in rows:
        if fmt == "json":
            out.append({
                "path": path,
                "file_id": synced.file_id,
                "remote_name": synced.remote_name,
                "size": synced.size,
                "sha256": synced.sha256,
                "mime_type": synced.mime_type,
                "block": block_type(synced.mime_type),
                "synced_at": rfc3339(synced.synced_at),
            })
        elif fmt == "blocks":
            out.append(content_block(synced.file_id, synced.mime_type, path))
        else:
            try:
                out.append(resource(synced.file_id, path, mount))
            except ValueError:
                skipped += 1
    if skipped:
        print(f"syncd: warning: skipped {skipped} file{'s' if skipped != 1 else ''} whose path"
              " is not valid UTF-8 and cannot be a mount path; rename to include them",
              file=sys.stderr)
    return out


def _mount_name(settings: Settings, given: str | None) -> str:
    """The folder under /mnt: ``given``, else the root folder's name; ConfigError if unusable."""
    if given is not None:
        problem = mount_name_problem(given)
        if problem:
            raise ConfigError(f"--mount-name {given!r} {problem}; give a plain folder name")
        return given
    name = os.path.basename(os.path.abspath(settings.root_dir.expanduser()))
    problem = mount_name_problem(name)
    if problem:
        raise ConfigError(f"the root folder's name {name!r} {problem}, so it cannot be the"
                          " mount name; pass --mount-name NAME")
    return name


def escape_path(path: str) -> str:
    """``path`` on one line: backslash as ``\\\\``, newline, tab and carriage return as ``\\n``,
    ``\\t``, ``\\r``, other control characters as ``\\xNN`` and line or paragraph separators as
    ``\\uNNNN``. Bytes that are not UTF-8 are left as they are (printed raw, as ls does)."""
    return "".join(_ESCAPES.get(ch) or _escape_other(ch) for ch in path)


_ESCAPES = {"\\": "\\\\", "\n": "\\n", "\t": "\\t", "\r": "\\r"}


def _escape_other(ch: str) -> str:
    if unicodedata.category(ch) == "Cc":
        return f"\\x{ord(ch):02x}"
    if ch in "\u2028\u2029":
        return f"\\u{ord(ch):04x}"
    return ch


def print_errors(settings: Settings, folder: str | None = None) -> int:
    """:func:`print_one_errors` for every folder (or the one named), each under its name."""
    return _sections(chosen_folders(settings, folder), print_one_errors)


def print_one_errors(settings: Settings) -> int:
    """Print the paths in error state and the folders the last scan could not read; 1 if
    there are any."""
    with Journal.open_readonly(settings.journal_path) as journal:
        rows = journal.errors()
        unreadable = _unreadable(journal)
    for row in rows:
        assert row.failure is not None
        print(f"{row.failure.kind:<9}  {row.path}: {row.failure.message}")
    for folder in unreadable:
        print(f"{'unreadable':<9}  {escape_path(folder['path'])}/: {folder['reason']}")
    return 1 if rows or unreadable else 0
