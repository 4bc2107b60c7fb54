"""The local side: which paths are eligible, their stat, and a full scan against the journal.

A scan walks the tree in the journal's order (path bytes) and merges it with the journal's rows,
so it streams: memory holds one directory listing per level, never the whole tree. Unchanged
files (same size, mtime_ns and inode, not racy) are not hashed or queued.
"""

from __future__ import annotations

import os
import stat as st
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import structlog

from syncd.errors import SafetyStop
from syncd.journal import Journal, ScanRow
from syncd.local.fs import RootId, stat_under
from syncd.local.ignore import IgnoreRules
from syncd.model import RACY_WINDOW_NS, FileRow, LocalStat, is_racy

log = structlog.get_logger("syncd.scan")
Skip = Callable[[str, str], None]
Mark = Callable[[str, int], None]  # a path that needs a look, with the mtime_ns the walk read
_Entry = tuple[bytes, str, int, os.stat_result]  # sort key, name, kind, stat (_NO_STAT: none)
Run = tuple[str, bytes, list[_Entry]]  # "dir/" prefix, its bytes, files in it (in order)
_FILE, _DIR, _SPECIAL, _DENIED, _OTHER = range(5)
_S_IFMT, _S_IFREG, _S_IFDIR, _S_IFLNK = 0o170000, st.S_IFREG, st.S_IFDIR, st.S_IFLNK
_FS_ENCODING, _FS_ERRORS = sys.getfilesystemencoding(), sys.getfilesystemencodeerrors()
_NO_STAT = os.stat_result((0,) * 10)  # for entries that are not looked at further


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


def local_stat(
    root: Path, rel: str, follow_symlinks: bool, root_id: RootId | None = None
) -> LocalStat | None:
    """The stat of an eligible regular file at ``rel``, or None if there is none to sync.

    Reached as :mod:`syncd.local.fs` reads: from root's fd, never through a symlinked directory
    (walk never enters one: neither may a marked path). A decision to READ is re-checked on the
    opened fd. Raises LocalFileError when the answer is unknown (permission denied): never a
    deletion.
    """
    info = stat_under(root, rel, follow_symlinks, root_id)
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
    """Eligible files under ``root`` as (relative path, stat), in byte order of the path."""
    for item in scan_entries(root, rules, follow_symlinks, skip):
        if isinstance(item, Unreadable):
            yield item
            continue
        prefix, _key, files = item
        for _, name, _, info in files:
            yield prefix + name, LocalStat.from_stat(info)


def scan_entries(
    root: Path, rules: IgnoreRules, follow_symlinks: bool, skip: Skip
) -> Iterator[Run | Unreadable]:
    """Eligible files under ``root`` in byte order of the path, a run of one directory's files
    at a time: ("dir/" prefix, its bytes, [(name's bytes, name, kind, stat), ...]). What
    :func:`merge` takes; runs spare a tuple and a generator step per file.

    Iterative (a stack of directory listings, one per level), so no depth of tree can raise
    RecursionError. A symlink to a directory is never entered.
    """
    seen: set[tuple[int, int]] = set()
    top = os.fspath(root)
    listing = _list_dir(root, top, "", follow_symlinks, skip)
    if isinstance(listing, Unreadable):
        yield listing
        return
    # Per level: (entries left, "dir/" prefix, its bytes, how its entries are judged).
    stack = [(iter(listing), "", b"", rules.root_state())]
    ignored_in = rules.ignored_in
    while stack:
        entries, prefix, prefix_key, state = stack[-1]
        files: list[_Entry] = []
        for entry in entries:
            kind = entry[2]
            if ignored_in(state, prefix, entry[1], kind == _DIR):
                continue
            if kind == _FILE:
                files.append(entry)
                continue
            if files:  # the files so far sort before anything under this directory
                yield prefix, prefix_key, files
                files = []
            if kind == _DIR:
                key, name, _, info = entry
                if (info.st_dev, info.st_ino) in seen:
                    continue
                seen.add((info.st_dev, info.st_ino))
                below = _list_dir(root, top, prefix + name, follow_symlinks, skip)
                if isinstance(below, Unreadable):
                    yield below
                    continue
                level = rules.dir_state(state, prefix + name, name)
                stack.append((iter(below), f"{prefix}{name}/", prefix_key + key, level))
                break  # the directory's files come next: they sort right here
            if kind == _SPECIAL:
                skip(prefix + entry[1], "not a regular file (FIFO, socket or device)")
        else:
            stack.pop()
        if files:
            yield prefix, prefix_key, files


def _list_dir(
    root: Path, top: str, prefix: str, follow: bool, skip: Skip
) -> list[_Entry] | Unreadable:
    """The entries of directory ``prefix`` (``top`` is the root as a string) as (sort key,
    name, kind, stat), in byte order of the path: the key is the name's bytes, with a ``/``
    after a directory's."""
    entries: list[_Entry] = []
    append = entries.append
    denied = 0
    try:
        with os.scandir(os.path.join(top, prefix) if prefix else top) as it:
            for entry in it:  # every entry is stat'ed: a loop, not a call, per entry
                name = entry.name
                key = name.encode(_FS_ENCODING, _FS_ERRORS)
                try:
                    info = entry.stat(follow_symlinks=False)
                except PermissionError:
                    append((key, name, _DENIED, _NO_STAT))
                    denied += 1
                    continue
                except OSError:
                    append((key, name, _OTHER, _NO_STAT))  # gone meanwhile: skipped silently
                    continue
                mode = info.st_mode & _S_IFMT
                if mode == _S_IFREG:
                    append((key, name, _FILE, info))
                elif mode == _S_IFDIR:
                    append((key + b"/", name, _DIR, info))
                elif mode == _S_IFLNK:
                    link = _link(root, entry, key, follow)
                    denied += link[2] == _DENIED
                    append(link)
                else:
                    append((key, name, _SPECIAL, _NO_STAT))
    except OSError as exc:
        skip(prefix or ".", f"directory not readable ({exc.strerror})")
        return Unreadable(prefix)
    if denied:  # r without x: the names show, their stat does not
        skip(prefix or ".", f"{denied} of {len(entries)} entries cannot be looked at (permission"
             " denied: does the directory lack search (x) permission?)")
        if denied == len(entries):
            return Unreadable(prefix)
    # Sorting "name/" for directories gives the byte order of full paths across levels. Keys
    # are unique within a directory, so the tuples never compare past them.
    entries.sort()
    return entries


def _link(root: Path, entry: os.DirEntry[str], key: bytes, follow: bool) -> _Entry:
    """A symlink: a file inside root when following links, else skipped silently."""
    name = entry.name
    if not follow or not _inside(root, Path(entry.path)):
        return key, name, _OTHER, _NO_STAT
    try:
        info = entry.stat(follow_symlinks=True)
    except PermissionError:
        return key, name, _DENIED, _NO_STAT
    except OSError:
        return key, name, _OTHER, _NO_STAT
    if st.S_ISREG(info.st_mode):
        return key, name, _FILE, info
    # Links to files only: a directory inside root is walked under its real path; following
    # the link too would list it twice, or hide the real one (`seen`).
    return key, name, _OTHER if st.S_ISDIR(info.st_mode) else _SPECIAL, _NO_STAT


def needs_look(local: LocalStat, row: FileRow | None) -> bool:
    """True unless the row proves the file is synced and unchanged."""
    if row is None or row.synced is None or row.failure is not None:
        return True
    synced = row.synced
    return synced.stat != local or is_racy(synced.mtime_ns, synced.synced_at)


def scan_tree(
    root: Path, rules: IgnoreRules, follow_symlinks: bool, skip: Skip, journal: Journal,
    mark: Mark, progress: Callable[[], None] = lambda: None,
) -> ScanResult:
    """Walk the tree against the journal's rows; mark what needs a look (see :func:`merge`).
    ``progress`` is called at every directory read (the service loop's watchdog ping)."""
    found = _reporting(scan_entries(root, rules, follow_symlinks, skip), progress)
    return merge(found, journal.scan_rows(RACY_WINDOW_NS), mark)


def _reporting(items: Iterator[Run | Unreadable], progress: Callable[[], None]
               ) -> Iterator[Run | Unreadable]:
    for item in items:
        progress()
        yield item


def merge(
    local: Iterator[Run | Unreadable],
    rows: Iterator[ScanRow],
    mark: Mark,
) -> ScanResult:
    """Merge-join the walk (:func:`scan_entries`) with the journal (:meth:`Journal.scan_rows`),
    both in path-byte order; mark what needs a look (as :func:`needs_look` tells)."""
    result = ScanResult()
    files = total = 0
    vanished: list[bytes] = []
    row = next(rows, None)
    for item in local:
        if isinstance(item, Unreadable):
            result.unreadable.append(item.path)
            continue
        prefix, prefix_key, run = item
        files += len(run)
        for key, name, _, info in run:
            key = prefix_key + key
            while row is not None and row[0] < key:
                vanished.append(row[0])
                row = next(rows, None)
            size = info.st_size
            total += size
            if row is not None and row[0] == key:
                # needs_look on tuples: the journal gave a size only for a copy that proves
                # the content (no failure, not racy); the stat must be the same.
                same = row[1] == size and row[2] == info.st_mtime_ns and row[3] == info.st_ino
                row = next(rows, None)
                if same:
                    continue
            result.marked += 1
            result.marked_bytes += size
            mark(prefix + name, info.st_mtime_ns)
    while row is not None:
        vanished.append(row[0])
        row = next(rows, None)
    result.files, result.bytes = files, total
    gone = (os.fsdecode(p) for p in vanished)
    result.vanished = [p for p in gone if not _under_any(p, result.unreadable)]
    return result


def _under_any(path: str, dirs: list[str]) -> bool:
    return any(d == "" or path.startswith(d + "/") for d in dirs)
