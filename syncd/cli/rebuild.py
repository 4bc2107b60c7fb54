"""`syncd rebuild`: a fresh journal from one remote listing and the local tree, after the old
journal was lost or corrupted. Only list requests are sent: nothing is uploaded or deleted.

A local file listed under its remote name with the same size is adopted, with the sha256 of the
local file now: name and size are trusted (uploads cannot be downloaded), so a same-size edit made
while the journal was missing goes unnoticed until the file next changes, when it is re-uploaded.
Such a match is adopted only when it is the single candidate: with several (a crash's duplicate,
or another program's file under the same name in a shared workspace without a prefix) none can be
told to be ours, so none is adopted, the path is uploaded fresh on the next sync and every such
name is reported. Those copies, and files named like ours with no local file of that size, are
left alone: this journal did not create them, so syncd never deletes them (invariant 1).
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

from syncd.config import Settings
from syncd.engine.wiring import bind_workspace, make_client
from syncd.errors import JournalError, JournalLockedError, LocalFileError
from syncd.journal import NOT_A_JOURNAL, SIDE_FILES, Journal, lock_holder
from syncd.local.fs import hash_unchanged
from syncd.local.ignore import IgnoreRules
from syncd.local.ownfiles import ASIDE, load_rules
from syncd.local.scan import Unreadable, check_root, walk
from syncd.model import LocalStat, Synced
from syncd.remote.client import FilesClient, RemoteFile
from syncd.remote.names import decode_name, encode_name
from syncd.remote.protocol import LIST_LIMIT

log = structlog.get_logger("syncd.rebuild")
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
    ambiguous: list[RemoteFile] = field(default_factory=list)  # same-size copies, none adopted
    unmatched: list[RemoteFile] = field(default_factory=list)
    foreign: int = 0


def rebuild(settings: Settings, force: bool, clock: Clock = time.time) -> Summary:
    """Move the old journal aside if allowed, then fill a fresh one; no upload, no delete."""
    root = settings.root_dir.expanduser().absolute()
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
    return load_rules(settings, root)


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
    if NOT_A_JOURNAL in problem:  # another program's database: not ours to move, even forced
        raise JournalError(problem)
    if not force and "corrupt" not in problem:  # healthy, or bound elsewhere, newer, read-only
        raise JournalError((problem or f"journal {path} exists and opens fine")
                           + "; `syncd rebuild --force` moves it aside and builds a new one")
    stamp = datetime.fromtimestamp(clock(), UTC).strftime("%Y%m%dT%H%M%S.%fZ")
    target = path.with_name(f"{path.name}{ASIDE}{stamp}")
    _move_all(path, target)
    log.warning("journal moved aside", journal=str(path), moved_to=str(target), reason=problem)
    return target


def _move_all(path: Path, target: Path | None) -> None:
    """Rename the database and its siblings (siblings first) to ``target``, or delete them."""
    try:
        for suffix in (*SIDE_FILES, ""):
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
        if len(same) != 1:  # none, or no telling which is ours: upload fresh, touch none
            s.to_upload += 1
            s.ambiguous += same
            continue
        _adopt(journal, root, rel, stat, same[0], follow, clock)
        s.adopted += 1
    leftover = [f for rest in by_name.values() for f in rest]
    ours = [f for f in leftover if decode_name(f.filename, prefix) is not None]
    s.unmatched, s.foreign = s.unmatched + ours, s.foreign + len(leftover) - len(ours)
    return s


def _adopt(journal: Journal, root: Path, rel: str, stat: LocalStat, remote: RemoteFile,
           follow: bool, clock: Clock) -> None:
    """Record ``remote`` as the copy of ``rel``, with the sha256 of the local file now."""
    verified_at = clock()
    try:
        # Changed before or while read (no content has that sha256) or gone: "" uploads next.
        sha = hash_unchanged(root, rel, stat, follow) or ""
    except LocalFileError:
        sha = ""
    journal.commit_upload(rel, Synced(
        file_id=remote.id, remote_name=remote.filename, sha256=sha, size=stat.size,
        mtime_ns=stat.mtime_ns, ino=stat.ino, mime_type=remote.mime_type, synced_at=verified_at,
    ), intent_id=None)


def run_rebuild(settings: Settings, force: bool, out: TextIO = sys.stdout) -> int:
    """``syncd rebuild``: rebuild, print one count per line (and the ids left alone); 0."""
    print_summary(rebuild(settings, force), out)
    return 0


def print_summary(s: Summary, out: TextIO) -> None:
    """One count per line, with the ids left alone (every ambiguous name, none cut off)."""
    lines = [f"moved the old journal aside to {s.moved_to}"] if s.moved_to else []
    lines.append(f"rebuilt journal {s.journal} from {s.listed} listed files (no upload, no delete)")
    names: dict[str, list[str]] = {}
    for f in s.ambiguous:
        names.setdefault(f.filename, []).append(f.id)
    for count, label, ids, cap in (
        (s.adopted, "adopted (same name and size, the only candidate)", [], SHOW_IDS),
        (s.to_upload, "to upload on the next sync", [], SHOW_IDS),
        (len(names), "ambiguous names (several remote files of that name and size: none"
         " adopted, all left alone, uploaded fresh on the next sync)",
         [f"{name} ({', '.join(ids)})" for name, ids in names.items()], len(names)),
        (len(s.unmatched), "unmatched remote files left alone (named like ours, no local file"
         " of that size)", [f"{f.id} ({f.filename})" for f in s.unmatched], SHOW_IDS),
        (s.foreign, "foreign files left alone", [], SHOW_IDS),
    ):
        more = f" and {len(ids) - cap} more" if len(ids) > cap else ""
        shown = f": {', '.join(ids[:cap])}{more}" if ids else ""
        lines.append(f"{count:>7} {label}{shown}")
    print("\n".join([*lines, NOTE]), file=out)
