"""The oracle: what the mirror must look like once the daemon has converged, and the diff.

Eligibility uses syncd's own rules (``IgnoreRules`` and ``walk``: ignores, symlinks, FIFOs), so
the oracle and the daemon agree on *which* files count; everything else is checked from outside:
the local bytes, ``syncd ls`` / ``syncd errors`` (the journal), and the emulator's store.
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from syncd.emulator.app import StoredFile
from syncd.journal import Journal
from syncd.local.ignore import IgnoreRules
from syncd.local.scan import walk
from syncd.remote.names import decode_name, encode_name

BAD_EVENTS = ("unexpected error", "fatal")
# syncd's remote guard lets a reconcile act on a listing lacking up to this many of our copies
# (`deletes.MIN_GUARDED`), or up to `[sync] max_missing_fraction` (0.1 by default) of them.
MISSING_TOLERATED = 10
MISSING_FRACTION = 0.1


@dataclass(frozen=True)
class Entry:
    """A path as `syncd ls` shows it."""

    path: str
    file_id: str
    sha256: str
    size: int
    remote_name: str


@dataclass(frozen=True)
class Error:
    """A path as `syncd errors` shows it."""

    path: str
    kind: str
    message: str


@dataclass
class Expected:
    """The local truth once the operations have stopped."""

    files: dict[str, tuple[str, int]] = field(default_factory=dict)  # path -> (sha256, size)
    oversize: dict[str, tuple[str, int]] = field(default_factory=dict)
    specials: list[str] = field(default_factory=list)  # FIFOs etc.: skipped with a warning
    unreadable: list[str] = field(default_factory=list)  # only when not running as root


def file_digest(path: Path) -> tuple[str, int]:
    """sha256 and size of what reading the file gives now."""
    digest = hashlib.sha256()
    size = 0
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 20):
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size


def file_digest_bytes(data: bytes) -> str:
    """sha256 of ``data``."""
    return hashlib.sha256(data).hexdigest()


def expected_state(root: Path, follow_symlinks: bool, limit: int) -> Expected:
    """Walk the folder with syncd's rules and hash every eligible file."""
    found = Expected()

    def skipped(path: str, reason: str) -> None:
        if "not a regular file" in reason:
            found.specials.append(path)

    for item in walk(root, IgnoreRules.load(root), follow_symlinks, skipped):
        if not isinstance(item, tuple):
            continue
        path = item[0]
        if os.geteuid() != 0 and not os.access(root / path, os.R_OK):
            found.unreadable.append(path)
            continue
        sha, size = file_digest(root / path)
        (found.oversize if size > limit else found.files)[path] = (sha, size)
    return found


def journal_view(journal_path: Path) -> tuple[list[Entry], list[Error], int, int, int]:
    """What `syncd ls` and `syncd errors` would print, plus open intents, owed deletions and
    the queue depth the daemon publishes."""
    with Journal.open_readonly(journal_path) as journal:
        entries = [
            Entry(r.path, r.synced.file_id, r.synced.sha256, r.synced.size, r.synced.remote_name)
            for r in journal.iter_rows() if r.synced is not None
        ]
        errors = [Error(r.path, r.failure.kind, r.failure.message)
                  for r in journal.errors() if r.failure is not None]
        counts = journal.counts()
        queued = int(journal.get_meta("queued") or 0)
    return entries, errors, counts.intents, counts.tombstones, queued


def entries_from_ls_json(text: str) -> list[Entry]:
    """Parse `syncd ls --json`."""
    return [Entry(e["path"], e["file_id"], e["sha256"], e["size"], e["remote_name"])
            for e in json.loads(text)]


def short(sha: str) -> str:
    """The first 10 hex digits, for diffs."""
    return sha[:10]


def diff(
    want: Expected,
    entries: list[Entry],
    errors: list[Error],
    stored: list[StoredFile],
    foreign: dict[str, str],
    prefix: str,
) -> list[str]:
    """Every way the mirror differs from the folder; empty when it is exact."""
    out: list[str] = []
    ls = {e.path: e for e in entries}
    failed = {e.path: e for e in errors}
    live = {f.id: f for f in stored if not f.deleted and not f.foreign}
    for path, (sha, size) in sorted(want.files.items()):
        entry = ls.get(path)
        if entry is None:
            out.append(f"missing from ls: {path!r} (local sha {short(sha)}, {size} B)")
        elif (entry.sha256, entry.size) != (sha, size):
            out.append(f"stale in ls: {path!r} local {short(sha)}/{size} B, "
                       f"ls {short(entry.sha256)}/{entry.size} B")
        if path in failed:
            out.append(f"eligible file still in errors: {path!r}: {failed[path].message}")
    for path, entry in sorted(ls.items()):
        kept = path in want.oversize and failed.get(path, Error("", "", "")).kind == "permanent"
        if path not in want.files and not kept:
            out.append(f"extra in ls: {path!r} -> {entry.file_id}")
        remote = live.get(entry.file_id)
        if remote is None:
            out.append(f"ls maps {path!r} to {entry.file_id}, which the emulator does not hold")
            continue
        if remote.sha256 != entry.sha256:
            out.append(f"remote content differs: {path!r} {entry.file_id} holds "
                       f"{short(remote.sha256)}, ls says {short(entry.sha256)}")
        if remote.filename != encode_name(path, prefix) or entry.remote_name != remote.filename:
            out.append(f"remote name of {path!r} is {remote.filename!r}")
    referenced = {e.file_id for e in entries}
    for file_id, f in sorted(live.items()):
        if file_id not in referenced:
            out.append(f"orphan or duplicate on the remote: {file_id} {f.filename!r} "
                       f"(path {decode_name(f.filename, prefix)!r}, {short(f.sha256)}, "
                       f"{f.size} B)")
    out.extend(_foreign_diff(stored, foreign))
    out.extend(_ineligible_diff(want, failed, stored))
    return out


def _foreign_diff(stored: list[StoredFile], foreign: dict[str, str]) -> list[str]:
    held = {f.id: f.sha256 for f in stored if f.foreign and not f.deleted}
    return [f"foreign file {file_id} touched (now {held.get(file_id)!r})"
            for file_id, sha in sorted(foreign.items()) if held.get(file_id) != sha]


def _ineligible_diff(want: Expected, failed: dict[str, Error], stored: list[StoredFile]
                     ) -> list[str]:
    out: list[str] = []
    for path in sorted(want.oversize):
        error = failed.get(path)
        if error is None or error.kind != "permanent" or "413" not in error.message:
            out.append(f"oversize file not in errors as permanent 413: {path!r} ({error})")
    big = {sha for sha, _ in want.oversize.values()}
    out.extend(f"oversize content was uploaded: {f.id} {f.filename!r}"
               for f in stored if f.sha256 in big)
    for path in want.unreadable:
        if path not in failed:
            out.append(f"unreadable file not in errors: {path!r}")
    for path, error in sorted(failed.items()):
        if path not in want.oversize and path not in want.unreadable and path not in want.files:
            out.append(f"errors lists a path that is no file to sync: {path!r}: "
                       f"{error.kind} {error.message}")
    return out


def pending_diff(intents: int, tombstones: int, queued: int) -> list[str]:
    """Open intents, owed deletions or queued paths mean the daemon has not finished."""
    if intents or tombstones or queued:
        return [f"not quiescent: {intents} open intents, {tombstones} owed deletions, "
                f"{queued} paths queued"]
    return []


def integrity_diff(journal_path: Path) -> list[str]:
    """`PRAGMA integrity_check` on the journal, read-only."""
    conn = sqlite3.connect(f"file:{journal_path}?mode=ro", uri=True)
    try:
        result = [r[0] for r in conn.execute("PRAGMA integrity_check").fetchall()]
    finally:
        conn.close()
    return [] if result == ["ok"] else [f"journal integrity_check: {result[:5]}"]


def secret_diff(key: str, files: Iterable[Path]) -> list[str]:
    """The API key must appear in no log line and nowhere in the journal."""
    needle = key.encode()
    return [f"the API key appears in {p}" for p in files
            if p.exists() and needle in p.read_bytes()]


def log_events(logs: Iterable[Path]) -> list[dict[str, object]]:
    """Every JSON log line of the daemon runs (other lines are kept as {"raw": ...})."""
    events: list[dict[str, object]] = []
    for path in logs:
        if not path.exists():
            continue
        for line in path.read_text(errors="replace").splitlines():
            try:
                event = json.loads(line)
            except ValueError:
                event = {"raw": line}
            events.append(event if isinstance(event, dict) else {"raw": line})
    return events


def log_diff(want: Expected, events: list[dict[str, object]]) -> list[str]:
    """No bug reports in the log; every special file was skipped with its reason."""
    out = [f"log: {e.get('event')}: {e.get('error')}" for e in events
           if e.get("event") in BAD_EVENTS]
    out.extend(f"log: traceback or stray output: {str(e['raw'])[:200]}" for e in events
               if "raw" in e and "Traceback" in str(e["raw"]))
    skipped = {str(e.get("path")) for e in events if e.get("event") == "skipped"
               and "not a regular file" in str(e.get("reason"))}
    out.extend(f"special file never reported as skipped: {p!r}" for p in want.specials
               if p not in skipped)
    return out


@dataclass(frozen=True)
class StoredRow:
    """A file the emulator ever stored, deleted ones included (its rows are never removed)."""

    id: str
    filename: str
    sha256: str
    created: float  # epoch seconds
    deleted: float | None  # epoch seconds, or None while live
    foreign: bool


def _epoch(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def stored_rows(data_dir: Path) -> dict[str, StoredRow]:
    """Every row of the emulator's store (read-only, beside the running emulator)."""
    conn = sqlite3.connect(f"file:{data_dir / 'meta.sqlite3'}?mode=ro", uri=True)
    try:
        rows = conn.execute("SELECT id, filename, sha256, created_at, deleted_at, is_foreign"
                            " FROM files").fetchall()
    finally:
        conn.close()
    return {str(r[0]): StoredRow(str(r[0]), str(r[1]), str(r[2]), _epoch(str(r[3])),
                                 None if r[4] is None else float(r[4]), bool(r[5]))
            for r in rows}


def content_heads(data_dir: Path, rows: Mapping[str, StoredRow], size: int) -> dict[str, bytes]:
    """The first ``size`` bytes of every live file's content."""
    heads: dict[str, bytes] = {}
    for file_id, row in rows.items():
        if row.deleted is None:
            try:
                with open(data_dir / "files" / file_id, "rb") as fh:
                    heads[file_id] = fh.read(size)
            except OSError:
                continue
    return heads


def outside_diff(rows: Mapping[str, StoredRow], heads: Mapping[str, bytes],
                 outside: set[str], mark: bytes = b"OUTSIDE-ROOT:") -> list[str]:
    """Invariant 10: no file ever stored holds content from outside root: neither the sha256
    of an outside-marked file nor (for a live one, however much of it was read) its mark."""
    out = [f"content from OUTSIDE root was uploaded: {r.id} {r.filename!r} "
           f"(sha {short(r.sha256)}{', deleted since' if r.deleted is not None else ''})"
           for r in sorted(rows.values(), key=lambda r: r.created) if r.sha256 in outside]
    out.extend(f"content from OUTSIDE root was uploaded (partly): {file_id} "
               f"{rows[file_id].filename!r}"
               for file_id, head in sorted(heads.items())
               if head.startswith(mark) and rows[file_id].sha256 not in outside)
    return out


def false_missing_diff(per_start: list[list[dict[str, object]]],
                       rows: Mapping[str, StoredRow], deleted_by_sim: set[str]) -> list[str]:
    """No reconcile acted on a listing that lacked many of our copies the emulator still held.

    A copy marked gone ("copy gone; uploading again", reason missing) is truly missing if the
    simulation deleted it, or it was deleted before the mark (a listing shows a deleted file
    for the linger time, so a true mark comes well after the delete). Any other mark came from
    a listing that lacked a live copy, e.g. a short listing: syncd's remote guard must refuse
    a pass with more than ``MISSING_TOLERATED`` of them (and more than ``MISSING_FRACTION`` of
    our live copies). ``per_start``: each daemon start's log events, in order.
    """
    out: list[str] = []
    for events in per_start:
        marked: list[tuple[float, str]] = []
        for event in events:
            if event.get("event") == "copy gone; uploading again" and \
                    event.get("reason") == "missing":
                marked.append((_epoch(str(event.get("timestamp"))), str(event.get("file_id"))))
            elif event.get("event") == "reconciled":
                out.extend(_judge_pass(marked, rows, deleted_by_sim))
                marked = []
        out.extend(_judge_pass(marked, rows, deleted_by_sim))
    return out


def _judge_pass(marked: list[tuple[float, str]], rows: Mapping[str, StoredRow],
                deleted_by_sim: set[str]) -> list[str]:
    if not marked:
        return []
    at = marked[0][0]
    false = []
    for when, file_id in marked:
        row = rows.get(file_id)
        if row is None or file_id in deleted_by_sim:
            continue
        if row.deleted is None or row.deleted > when - 0.5:
            false.append(file_id)
    live = sum(1 for r in rows.values() if not r.foreign and r.created <= at
               and (r.deleted is None or r.deleted > at))
    if len(false) > MISSING_TOLERATED and len(false) > MISSING_FRACTION * live:
        stamp = datetime.fromtimestamp(at, UTC).strftime("%H:%M:%S.%f")[:-3]
        return [f"a reconcile at {stamp} UTC acted on a listing lacking {len(false)} of our "
                f"{live} live copies (marked missing, to upload again): e.g. {false[:3]}"]
    return []
