"""`syncd rebuild`: a fresh journal from one remote listing and the local tree, after the old
journal was lost or corrupted. Only list requests are sent: nothing is uploaded or deleted.

A local file listed under its remote name with the same size is adopted, with the sha256 of the
local file now: name and size are trusted (uploads cannot be downloaded), so a same-size edit made
while the journal was missing goes unnoticed until the file next changes, when it is re-uploaded.
Of several such copies the newest (``created_at``, then listing order) is adopted. Other copies,
and files named like ours with no local file of that size, are reported and left alone: this
journal did not create them, so syncd never deletes them (invariant 1).
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TextIO

import structlog

from syncd.client import LIST_LIMIT, FilesClient, RemoteFile
from syncd.config import Settings
from syncd.daemon import bind_workspace, make_client
from syncd.errors import ConfigError, JournalError, JournalLockedError, LocalFileError
from syncd.ignore import IgnoreRules
from syncd.journal import Journal, Synced, lock_holder
from syncd.localstat import LocalStat
from syncd.names import decode_name, encode_name
from syncd.scan import Unreadable, check_root, local_stat, walk
from syncd.worker import hash_file

log = structlog.get_logger("syncd.rebuild")
SIBLINGS = ("-wal", "-shm", "-journal")  # SQLite's files beside the database
SHOW_IDS = 10
NOTE = ("note: adoption trusts name and size: a same-size edit made while the journal was missing"
        " goes unnoticed until the file's content next changes, when it is re-uploaded. syncd"
        " never deletes the files left alone; delete them yourself if they are not needed.")
Clock = Callable[[], float]


@dataclass
class Summary:
    """What a rebuild found and did."""

    journal: Path
    moved_to: Path | None = None
    listed: int = 0
    adopted: int = 0
    to_upload: int = 0
    duplicates: list[RemoteFile] = field(default_factory=list)
    unmatched: list[RemoteFile] = field(default_factory=list)
    foreign: int = 0


def rebuild(settings: Settings, force: bool, clock: Clock = time.time) -> Summary:
    """Move the old journal aside if allowed, then fill a fresh one; no upload, no delete."""
    root = settings.root.expanduser().absolute()
    check_root(root)  # an unmounted root would adopt nothing, and the next sync re-upload all
    path, rules = settings.journal_path, _rules(settings, root)
    r = settings.remote
    with make_client(settings) as remote:
        moved = _set_aside(path, settings, os.fsdecode(root), force, clock)
        journal = Journal.open(path, os.fsdecode(root), r.base_url, r.name_prefix)
        try:
            bind_workspace(remote, journal, r.workspace_id)  # the new journal's workspace
            summary = _fill(journal, remote, root, rules, settings, clock)
        except BaseException:
            journal.close()
            _move_all(path, None)  # a half-built journal must not pass for a whole one
            raise
        journal.close()
    summary.moved_to = moved
    return summary


def _rules(settings: Settings, root: Path) -> IgnoreRules:
    """The daemon's ignore rules: config patterns, .syncdignore, its own journal and manifest."""
    journal = settings.journal_path
    own = [journal, *(journal.with_name(journal.name + s) for s in (*SIBLINGS, ".lock"))]
    own += [settings.state.manifest] if settings.state.manifest else []
    try:
        return IgnoreRules.load(root, settings.sync.ignore, own)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None


def _set_aside(path: Path, settings: Settings, root: str, force: bool, clock: Clock) -> Path | None:
    """Refuse if the journal is locked; move it aside if corrupt, or healthy and ``force``."""
    if (pid := lock_holder(path)) is not None:
        raise JournalLockedError(f"journal {path} is in use by syncd pid {pid}; stop it first")
    if not path.exists():
        return None
    try:  # a JournalLockedError (a daemon started meanwhile) goes up unchanged
        Journal.open(path, root, settings.remote.base_url, settings.remote.name_prefix).close()
        problem = ""
    except JournalLockedError:
        raise
    except JournalError as exc:
        problem = str(exc)
    if not force and "corrupt" not in problem:  # healthy, or bound elsewhere, newer, read-only
        raise JournalError((problem or f"journal {path} exists and opens fine")
                           + "; `syncd rebuild --force` moves it aside and builds a new one")
    stamp = datetime.fromtimestamp(clock(), UTC).strftime("%Y%m%dT%H%M%S.%fZ")
    target = path.with_name(f"{path.name}.broken-{stamp}")
    _move_all(path, target)
    log.warning("journal moved aside", journal=str(path), moved_to=str(target), reason=problem)
    return target


def _move_all(path: Path, target: Path | None) -> None:
    """Rename the database and its siblings (siblings first) to ``target``, or delete them."""
    try:
        for suffix in (*SIBLINGS, ""):
            src = path.with_name(path.name + suffix)
            if target is None:
                src.unlink(missing_ok=True)
            elif src.exists():  # `<target>-wal` beside `<target>`: the old journal still opens
                os.replace(src, target.with_name(target.name + suffix))
    except OSError as exc:
        raise JournalError(f"cannot move journal {path} aside: {exc.strerror or exc}") from exc


def _fill(journal: Journal, client: FilesClient, root: Path, rules: IgnoreRules,
          settings: Settings, clock: Clock) -> Summary:
    """List the remote once, walk the tree, adopt each path's match; count the rest."""
    prefix, follow = settings.remote.name_prefix, settings.sync.follow_symlinks
    s = Summary(journal.path)
    by_name: dict[str, list[RemoteFile]] = {}
    for remote in client.iter_files(limit=LIST_LIMIT):
        s.listed += 1
        if remote.scoped:  # a session's output: never ours, whatever its name
            s.foreign += 1
            continue
        by_name.setdefault(remote.filename, []).append(remote)
    skip = lambda rel, why: log.warning("skipped", path=rel, reason=why)  # noqa: E731
    for item in walk(root, rules, follow, skip):  # an unreadable directory is logged there
        if isinstance(item, Unreadable):
            continue
        rel, stat = item
        copies = by_name.pop(encode_name(rel, prefix), [])
        same = [f for f in copies if f.size_bytes == stat.size]
        s.unmatched += [f for f in copies if f.size_bytes != stat.size]
        if not same:
            s.to_upload += 1
            continue
        newest = max(same, key=lambda f: f.created_at)  # max keeps the first of equals
        _adopt(journal, root, rel, stat, newest, follow, clock)
        s.adopted += 1
        s.duplicates += [f for f in same if f is not newest]
    leftover = [f for rest in by_name.values() for f in rest]
    ours = [f for f in leftover if decode_name(f.filename, prefix) is not None]
    s.unmatched, s.foreign = s.unmatched + ours, s.foreign + len(leftover) - len(ours)
    return s


def _adopt(journal: Journal, root: Path, rel: str, stat: LocalStat, remote: RemoteFile,
           follow: bool, clock: Clock) -> None:
    """Record ``remote`` as the copy of ``rel``, with the sha256 of the local file now."""
    verified_at = clock()
    try:
        sha = hash_file(root / rel)
        if local_stat(root, rel, follow) != stat:
            sha = ""  # changed while read: no content has this sha256, the next look uploads
    except (OSError, LocalFileError):
        sha = ""
    journal.commit_upload(rel, Synced(
        file_id=remote.id, remote_name=remote.filename, sha256=sha, size=stat.size,
        mtime_ns=stat.mtime_ns, ino=stat.ino, mime_type=remote.mime_type, synced_at=verified_at,
    ), intent_id=None)


def run_rebuild(settings: Settings, force: bool, out: TextIO = sys.stdout) -> int:
    """``syncd rebuild``: rebuild, print one count per line (and the ids left alone); 0."""
    s = rebuild(settings, force)
    lines = [f"moved the old journal aside to {s.moved_to}"] if s.moved_to else []
    lines.append(f"rebuilt journal {s.journal} from {s.listed} listed files (no upload, no delete)")
    for count, label, ids in (
        (s.adopted, "adopted (same name and size)", []),
        (s.to_upload, "to upload on the next sync", []),
        (len(s.duplicates), "duplicates left alone", [f.id for f in s.duplicates]),
        (len(s.unmatched), "unmatched remote files left alone (named like ours, no local file"
         " of that size)", [f"{f.id} ({f.filename})" for f in s.unmatched]),
        (s.foreign, "foreign files left alone", []),
    ):
        more = f" and {len(ids) - SHOW_IDS} more" if len(ids) > SHOW_IDS else ""
        shown = f": {', '.join(ids[:SHOW_IDS])}{more}" if ids else ""
        lines.append(f"{count:>7} {label}{shown}")
    print("\n".join([*lines, NOTE]), file=out)
    return 0
