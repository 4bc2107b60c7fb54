"""Reading files under root without ever leaving it, even while someone races the tree.

Invariant 10. A path is never handed to ``open()``: a file is opened relative to a directory fd
of root. Its directory is reached with ``openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS)`` where
the kernel has it (:mod:`syncd.local.beneath`), else one component at a time, each directory
opened with ``O_NOFOLLOW | O_DIRECTORY``; either way a directory exchanged for a symlink
(``renameat2(RENAME_EXCHANGE)``) fails the walk instead of leading out of root. The leaf is
lstat'ed (only regular files are opened, so no device is ever opened) and opened with
``O_NOFOLLOW | O_NONBLOCK``, so a FIFO swapped in between cannot block; then ``fstat`` on the
opened fd decides: a regular file, or nothing to read. Everything that reads (hashing, content
sniffing, the upload body and its before/after checks) reads and stats that one fd, never the
path again.

With ``follow_symlinks`` a symlink in the LAST component (links to files only) is opened
through the kernel's resolution, and then the opened fd itself is checked to be inside root (its
``/proc/self/fd`` name under root's): what is checked is what is read, with no second lookup.
Without ``/proc`` nothing can be proven, so such a link is not followed.

Directories are opened with ``O_PATH`` where the platform has it: it needs only the search
permission a path lookup needs, so a ``--x`` directory stays traversable as it was for ``stat``.

Given the root's identity (device, inode) as first synced (invariant 11), the root's fd is
checked against it before anything under it is opened: a directory swapped in at the root's
path raises RootMoved, and nothing in it is read or stat'ed.
"""

from __future__ import annotations

import errno
import hashlib
import os
import stat as st
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from syncd.errors import LocalFileError, RootMoved
from syncd.local import beneath
from syncd.local.fdfile import FdFile
from syncd.model import LocalStat

CHUNK = 1024 * 1024
Opener = Callable[[], FdFile]
RootId = tuple[int, int]  # the root directory's (st_dev, st_ino)
T = TypeVar("T")

_PATH = getattr(os, "O_PATH", os.O_RDONLY)
_ROOT = _PATH | os.O_DIRECTORY | os.O_CLOEXEC  # root itself may be a link: the admin chose it
_DIR = _PATH | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_FILE = os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC | getattr(os, "O_NOCTTY", 0)
_LEAF = _FILE | os.O_NOFOLLOW
# Answers that mean "no eligible file there": gone, a file where a directory should be, or a
# symlink met with O_NOFOLLOW (ELOOP; a link opened with O_DIRECTORY may say ENOTDIR), a socket,
# a path openat2 would not follow out of root (EXDEV).
_NOT_THERE = frozenset({errno.ENOENT, errno.ENOTDIR, errno.ELOOP, errno.ENXIO, errno.EXDEV})


def open_file(
    root: Path, rel: str, follow: bool, root_id: RootId | None = None
) -> FdFile | None:
    """The regular file at ``rel`` under ``root``, open for reading; None if there is none.

    None: missing, not a regular file, reached through a symlinked directory, or a symlink
    (unless ``follow`` and the opened file is inside root). Raises LocalFileError when the
    answer is unknown (permission denied, an I/O error).
    """
    opened = open_regular(root, rel, follow, root_id)
    return None if opened is None else opened[0]


def open_regular(
    root: Path, rel: str, follow: bool, root_id: RootId | None = None
) -> tuple[FdFile, LocalStat] | None:
    """:func:`open_file`, and the stat of the file it opened (from the fd)."""
    names = _names(rel)
    if names is None:
        return None
    try:
        fd = _under(root, names, lambda top, parent, name: _open_leaf(top, parent, name, follow),
                    root_id)
        return None if fd is None else _regular(fd)
    except OSError as exc:
        if exc.errno in _NOT_THERE:
            return None
        raise LocalFileError(f"cannot read {rel}: {exc.strerror}") from None


class FileSource:
    """One path's file for the worker that holds it: looked at, hashed and uploaded through ONE
    open, so a file costs one walk under root instead of three.

    :meth:`look` opens the file and takes its stat from the fd (a file that cannot be opened,
    for want of read permission, is stat'ed instead, so its failure is recorded against its
    stat). Hashing and the first upload attempt use that fd; every later attempt opens the path
    again, as :func:`open_file` does. Use it as a context manager: leaving it closes a file no
    attempt took.
    """

    def __init__(
        self, root: Path, rel: str, follow: bool, root_id: RootId | None = None
    ) -> None:
        self._root = root
        self._rel = rel
        self._follow = follow
        self._root_id = root_id
        self._kept: FdFile | None = None

    def look(self) -> LocalStat | None:
        """The stat of the eligible regular file at the path (None: none); raises
        LocalFileError when even its stat is unknown."""
        self.close()
        try:
            opened = open_regular(self._root, self._rel, self._follow, self._root_id)
        except LocalFileError:  # unreadable: a stat will do
            info = stat_under(self._root, self._rel, self._follow, self._root_id)
            return None if info is None else LocalStat.from_stat(info)
        if opened is None:
            return None
        self._kept, stat = opened
        return stat

    def hash_unchanged(self, stat: LocalStat) -> str | None:
        """:func:`hash_unchanged` on the looked-at file when there is one."""
        if self._kept is None:
            return hash_unchanged(self._root, self._rel, stat, self._follow, self._root_id)
        return _hash_if_unchanged(self._kept, self._rel, stat)

    def head(self, size: int) -> bytes:
        """Up to ``size`` first bytes; empty when the file cannot be read (sniffing only)."""
        if self._kept is None:
            try:
                self._kept = open_file(self._root, self._rel, self._follow, self._root_id)
            except LocalFileError:
                return b""
        if self._kept is None:
            return b""
        try:
            return self._kept.head(size)  # kept: the first attempt sends these bytes again
        except OSError:
            self.close()
            return b""

    def __call__(self) -> FdFile:
        handle, self._kept = self._kept, None
        if handle is not None:
            return handle
        handle = open_file(self._root, self._rel, self._follow, self._root_id)
        if handle is None:
            raise LocalFileError(
                f"cannot read {self._rel}: no longer a regular file under the root"
            )
        return handle

    def close(self) -> None:
        """Close the kept file if no attempt took it."""
        handle, self._kept = self._kept, None
        if handle is not None:
            handle.close()

    def __enter__(self) -> FileSource:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def open_path(path: Path) -> FdFile:
    """A caller's own file by plain path (no root to stay under): non-blocking, regular only."""
    try:
        opened = _regular(os.open(path, _FILE))
    except OSError as exc:
        raise LocalFileError(f"cannot read {path}: {exc.strerror}") from None
    if opened is None:
        raise LocalFileError(f"cannot read {path}: not a regular file")
    return opened[0]


def stat_under(
    root: Path, rel: str, follow: bool, root_id: RootId | None = None
) -> os.stat_result | None:
    """The stat of the regular file at ``rel`` (as open_file would reach it), or None.

    Cheap: a plain file is lstat'ed relative to its directory's fd, not opened; a followed link
    is opened and verified, as a read would be. Raises LocalFileError when unknown.
    """
    names = _names(rel)
    if names is None:
        return None
    try:
        info = _under(root, names, lambda top, parent, name: _stat_leaf(top, parent, name, follow),
                      root_id)
    except OSError as exc:
        if exc.errno in _NOT_THERE:
            return None
        raise LocalFileError(f"cannot stat {rel}: {exc.strerror}") from None
    return info if info is not None and st.S_ISREG(info.st_mode) else None


def fstat(handle: FdFile) -> LocalStat:
    """The LocalStat of an open file, from its fd."""
    return LocalStat.from_stat(os.fstat(handle.fileno()))


def hash_handle(handle: FdFile) -> str:
    """The sha256 of an open file's content from its start, read in chunks."""
    digest = hashlib.sha256()
    handle.seek(0)
    while chunk := handle.read(CHUNK):
        digest.update(chunk)
    return digest.hexdigest()


def hash_unchanged(
    root: Path, rel: str, stat: LocalStat, follow: bool, root_id: RootId | None = None
) -> str | None:
    """The sha256 of ``rel`` if it is the version ``stat`` names before AND after the read.

    None when it is not (a rewrite while hashing would give a sha256 no content has), or when
    there is no eligible file. Raises LocalFileError when it cannot be read.
    """
    handle = open_file(root, rel, follow, root_id)
    if handle is None:
        return None
    with handle:
        return _hash_if_unchanged(handle, rel, stat)


def _hash_if_unchanged(handle: FdFile, rel: str, stat: LocalStat) -> str | None:
    try:
        if fstat(handle) != stat:
            return None
        sha = hash_handle(handle)
        return sha if fstat(handle) == stat else None
    except OSError as exc:
        raise LocalFileError(f"cannot read {rel}: {exc.strerror}") from None


def _names(rel: str) -> list[str] | None:
    """The components of ``rel``; None if any would not name a child (``..``, ``.``, empty)."""
    names = rel.split("/")
    return None if "\0" in rel or any(n in ("", ".", "..") for n in names) else names


def _under(
    root: Path, names: list[str], use: Callable[[int, int, str], T], root_id: RootId | None
) -> T:
    """``use(root_fd, parent_fd, leaf)`` with the leaf's directory reached without links, from
    a root fd that is the directory ``root_id`` names (when given)."""
    top = os.open(root, _ROOT)
    fd = top
    try:
        if root_id is not None:
            info = os.fstat(top)
            if (info.st_dev, info.st_ino) != root_id:
                raise RootMoved(f"root {root} is no longer the directory first synced")
        fd = _parent(top, names[:-1])
        return use(top, fd, names[-1])
    finally:
        if fd != top:
            os.close(fd)
        os.close(top)


def _parent(top: int, dirs: list[str]) -> int:
    """An fd of the directory ``dirs`` names under ``top`` (``top`` itself when empty): in one
    openat2 where the kernel has it, else one component at a time; never through a link."""
    if not dirs:
        return top
    if beneath.available():
        try:
            return beneath.open_beneath(top, os.fsencode("/".join(dirs)), _DIR)
        except OSError as exc:
            if exc.errno not in beneath.FALL_BACK:
                raise
    fd = top
    try:
        for name in dirs:
            child = os.open(name, _DIR, dir_fd=fd)
            if fd != top:
                os.close(fd)
            fd = child
    except BaseException:
        if fd != top:
            os.close(fd)
        raise
    return fd


def _open_leaf(top: int, parent: int, name: str, follow: bool) -> int | None:
    """An fd of ``name`` in ``parent``; None when it is not a file to open."""
    info = os.stat(name, dir_fd=parent, follow_symlinks=False)
    if st.S_ISLNK(info.st_mode) and follow:
        return _open_link(top, parent, name)
    if not st.S_ISREG(info.st_mode):
        return None  # a FIFO, a device, a directory, a link: never opened
    return os.open(name, _LEAF, dir_fd=parent)  # swapped since the lstat: fstat decides


def _stat_leaf(top: int, parent: int, name: str, follow: bool) -> os.stat_result | None:
    info = os.stat(name, dir_fd=parent, follow_symlinks=False)
    if not st.S_ISLNK(info.st_mode):
        return info
    fd = _open_link(top, parent, name) if follow else None
    if fd is None:
        return None
    try:
        return os.fstat(fd)
    finally:
        os.close(fd)


def _open_link(top: int, parent: int, name: str) -> int | None:
    """An fd of the file the link ``name`` leads to, if it is a regular file inside root."""
    if not st.S_ISREG(os.stat(name, dir_fd=parent).st_mode):
        return None  # links to files only; and a device is never opened, not even to check
    fd = os.open(name, _FILE, dir_fd=parent)
    if _inside(top, fd):
        return fd
    os.close(fd)
    return None


def _inside(top: int, fd: int) -> bool:
    """True when the OPENED ``fd`` is a file below the directory ``top``, as the kernel says."""
    try:
        root = os.readlink(f"/proc/self/fd/{top}".encode())
        where = os.readlink(f"/proc/self/fd/{fd}".encode())
    except OSError:
        return False  # no /proc: nothing proves where the link led
    return where.startswith(root.rstrip(b"/") + b"/")


def _regular(fd: int) -> tuple[FdFile, LocalStat] | None:
    """``fd`` as a blocking :class:`FdFile` and its stat, if fstat says it is a regular file;
    else closed, None."""
    try:
        info = os.fstat(fd)
        if not st.S_ISREG(info.st_mode):
            os.close(fd)
            return None
        stat = LocalStat.from_stat(info)
        os.set_blocking(fd, True)  # O_NONBLOCK only guarded the open against a FIFO
        return FdFile(fd), stat  # the file owns fd from here
    except BaseException:
        os.close(fd)
        raise
