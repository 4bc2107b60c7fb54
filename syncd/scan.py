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
from syncd.errors import LocalFileError, SafetyStop
from syncd.ignore import IgnoreRules
from syncd.journal import FileRow
from syncd.localstat import LocalStat

log = structlog.get_logger("syncd.scan")
Skip = Callable[[str, str], None]


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

    Raises LocalFileError when the answer is unknown (permission denied): never a deletion.
    """
    path = root / rel
    try:
        info = os.lstat(path)
        if st.S_ISLNK(info.st_mode):
            if not follow_symlinks or not _inside(root, path):
                return None
            info = os.stat(path)
        if "/" in rel and _through_link(root, rel):
            return None  # walk never enters a linked directory: neither may a marked path
    except (FileNotFoundError, NotADirectoryError):
        return None
    except OSError as exc:
        raise LocalFileError(f"cannot stat {rel}: {exc.strerror}") from None
    return LocalStat.from_stat(info) if st.S_ISREG(info.st_mode) else None


def _through_link(root: Path, rel: str) -> bool:
    """True when a directory on the way from ``root`` to ``rel`` is a symlink."""
    parent = os.path.dirname(rel)
    return os.path.realpath(root / parent) != os.path.join(os.path.realpath(root), parent)


def _inside(root: Path, path: Path) -> bool:
    """True when ``path`` resolves to somewhere under ``root`` (symlinks never escape it)."""
    try:
        return path.resolve().is_relative_to(root.resolve())
    except (OSError, RuntimeError):
        return False


def walk(
    root: Path, rules: IgnoreRules, follow_symlinks: bool, skip: Skip
) -> Iterator[tuple[str, LocalStat] | Unreadable]:
    """Eligible files under ``root`` as (relative path, stat), in byte order of the path."""
    seen_dirs: set[tuple[int, int]] = set()
    yield from _walk_dir(root, "", rules, follow_symlinks, skip, seen_dirs)


def _walk_dir(
    root: Path,
    prefix: str,
    rules: IgnoreRules,
    follow: bool,
    skip: Skip,
    seen: set[tuple[int, int]],
) -> Iterator[tuple[str, LocalStat] | Unreadable]:
    try:
        with os.scandir(root / prefix if prefix else root) as it:
            entries = [(e.name, _kind(root, prefix, e, follow)) for e in it]
    except OSError as exc:
        skip(prefix or ".", f"directory not readable ({exc.strerror})")
        yield Unreadable(prefix)
        return
    # Sorting "name/" for directories gives the byte order of full paths across levels.
    entries.sort(key=lambda item: os.fsencode(item[0] + ("/" if item[1][0] == "dir" else "")))
    for name, (kind, info) in entries:
        rel = f"{prefix}/{name}" if prefix else name
        if rules.ignored(rel, is_dir=kind == "dir"):
            continue
        if kind == "file" and info is not None:
            yield rel, LocalStat.from_stat(info)
        elif kind == "dir" and info is not None and (info.st_dev, info.st_ino) not in seen:
            seen.add((info.st_dev, info.st_ino))
            yield from _walk_dir(root, rel, rules, follow, skip, seen)
        elif kind == "special":
            skip(rel, "not a regular file (FIFO, socket or device)")


def _kind(
    root: Path, prefix: str, entry: os.DirEntry[str], follow: bool
) -> tuple[str, os.stat_result | None]:
    """Classify a directory entry: file, dir, special, or other (skipped silently)."""
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
