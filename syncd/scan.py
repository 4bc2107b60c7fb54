"""The local side: which paths are eligible, their stat, and a full scan against the journal.

A scan walks the tree in the journal's order (path bytes) and merges it with the journal's rows,
so it streams: memory holds one directory listing per level, never the whole tree. Unchanged
files (same size, mtime_ns and inode, not racy) are not hashed or queued.
"""

from __future__ import annotations

import os
import stat as st
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import structlog

from syncd.decide import is_racy
from syncd.errors import SafetyStop
from syncd.ignore import IgnoreRules
from syncd.journal import FileRow
from syncd.localfs import stat_under
from syncd.localstat import LocalStat

log = structlog.get_logger("syncd.scan")
Skip = Callable[[str, str], None]
_Entry = tuple[str, str, os.stat_result | None]  # relative path, kind, stat


@dataclass(frozen=True)
class Unreadable:
    """A directory the scan could not list: rows under it are unknown, not deleted."""

    path: str


@dataclass
class ScanResult:
    """What a scan found."""

    files: int = 0
    bytes: int = 0
    marked: int = 0
    marked_bytes: int = 0
    vanished: list[str] = field(default_factory=list)
    unreadable: list[str] = field(default_factory=list)


def check_root(root: Path) -> os.stat_result:
    """Stat the root, or raise SafetyStop if it is missing or not a directory."""
    try:
        root_stat = os.stat(root)
    except OSError as exc:
        problem = f"root {root} is not reachable ({exc.strerror}); nothing deleted"
        raise SafetyStop(problem) from None
    if not st.S_ISDIR(root_stat.st_mode):
        raise SafetyStop(f"root {root} is not a directory; nothing deleted")
    return root_stat


def local_stat(root: Path, rel: str, follow_symlinks: bool) -> LocalStat | None:
    """The stat of an eligible regular file at ``rel``, or None if there is none to sync.

    Reached as :mod:`syncd.localfs` reads: from root's fd, never through a symlinked directory
    (walk never enters one: neither may a marked path). A decision to READ is re-checked on the
    opened fd. Raises LocalFileError when the answer is unknown (permission denied): never a
    deletion.
    """
    info = stat_under(root, rel, follow_symlinks)
    return None if info is None else LocalStat.from_stat(info)


def _inside(root: Path, path: Path) -> bool:
    """True when ``path`` resolves to somewhere under ``root`` (symlinks never escape it)."""
    try:
        return path.resolve().is_relative_to(root.resolve())
    except (OSError, RuntimeError):
        return False


def walk(
    root: Path, rules: IgnoreRules, follow_symlinks: bool, skip: Skip
) -> Iterator[tuple[str, LocalStat] | Unreadable]:
    """Eligible files under ``root`` as (relative path, stat), in byte order of the path.

    Iterative (a stack of directory listings, one per level), so no depth of tree can raise
    RecursionError.
    """
    seen: set[tuple[int, int]] = set()
    stack: list[Iterator[_Entry]] = []
    listing = _list_dir(root, "", follow_symlinks, skip)
    if isinstance(listing, Unreadable):
        yield listing
        return
    stack.append(listing)
    while stack:
        entry = next(stack[-1], None)
        if entry is None:
            stack.pop()
            continue
        rel, kind, info = entry
        if rules.ignored(rel, is_dir=kind == "dir"):
            continue
        if kind == "file" and info is not None:
            yield rel, LocalStat.from_stat(info)
        elif kind == "dir" and info is not None and (info.st_dev, info.st_ino) not in seen:
            seen.add((info.st_dev, info.st_ino))
            listing = _list_dir(root, rel, follow_symlinks, skip)
            if isinstance(listing, Unreadable):
                yield listing
            else:
                stack.append(listing)
        elif kind == "special":
            skip(rel, "not a regular file (FIFO, socket or device)")


def _list_dir(
    root: Path, prefix: str, follow: bool, skip: Skip
) -> Iterator[_Entry] | Unreadable:
    """The entries of one directory as (relative path, kind, stat), in byte order of the path."""
    try:
        with os.scandir(root / prefix if prefix else root) as it:
            entries = [(e.name, *_kind(root, prefix, e, follow)) for e in it]
    except OSError as exc:
        skip(prefix or ".", f"directory not readable ({exc.strerror})")
        return Unreadable(prefix)
    denied = sum(1 for entry in entries if entry[1] == "denied")
    if denied:  # r without x: the names show, their stat does not
        skip(prefix or ".", f"{denied} of {len(entries)} entries cannot be looked at (permission"
             " denied: does the directory lack search (x) permission?)")
        if denied == len(entries):
            return Unreadable(prefix)
    # Sorting "name/" for directories gives the byte order of full paths across levels.
    entries.sort(key=lambda item: os.fsencode(item[0] + ("/" if item[1] == "dir" else "")))
    return ((f"{prefix}/{name}" if prefix else name, kind, info) for name, kind, info in entries)


def _kind(
    root: Path, prefix: str, entry: os.DirEntry[str], follow: bool
) -> tuple[str, os.stat_result | None]:
    """Classify a directory entry: file, dir, special, denied (reported), or other (skipped
    silently)."""
    try:
        info = entry.stat(follow_symlinks=False)
        if st.S_ISLNK(info.st_mode):
            if not follow or not _inside(root, Path(entry.path)):
                return "other", None
            info = entry.stat(follow_symlinks=True)
            if st.S_ISDIR(info.st_mode):
                # Links to files only: a directory inside root is walked under its real path;
                # following the link too would list it twice, or hide the real one (`seen`).
                return "other", None
    except PermissionError:
        return "denied", None
    except OSError:
        return "other", None
    if st.S_ISREG(info.st_mode):
        return "file", info
    if st.S_ISDIR(info.st_mode):
        return "dir", info
    return "special", None


def needs_look(local: LocalStat, row: FileRow | None) -> bool:
    """True unless the row proves the file is synced and unchanged."""
    if row is None or row.synced is None or row.failure is not None:
        return True
    synced = row.synced
    return synced.stat != local or is_racy(synced.mtime_ns, synced.synced_at)


def merge(
    local: Iterator[tuple[str, LocalStat] | Unreadable],
    rows: Iterator[FileRow],
    mark: Callable[[str], None],
) -> ScanResult:
    """Merge-join the walk with the journal (both in path-byte order); mark what needs a look."""
    result = ScanResult()
    row = next(rows, None)
    for item in local:
        if isinstance(item, Unreadable):
            result.unreadable.append(item.path)
            continue
        path, info = item
        key = os.fsencode(path)
        while row is not None and os.fsencode(row.path) < key:
            _vanished(row, result)
            row = next(rows, None)
        match = row if row is not None and row.path == path else None
        if match is not None:
            row = next(rows, None)
        result.files += 1
        result.bytes += info.size
        if needs_look(info, match):
            result.marked += 1
            result.marked_bytes += info.size
            mark(path)
    while row is not None:
        _vanished(row, result)
        row = next(rows, None)
    result.vanished = [p for p in result.vanished if not _under_any(p, result.unreadable)]
    return result


def _vanished(row: FileRow, result: ScanResult) -> None:
    result.vanished.append(row.path)


def _under_any(path: str, dirs: list[str]) -> bool:
    return any(d == "" or path.startswith(d + "/") for d in dirs)
