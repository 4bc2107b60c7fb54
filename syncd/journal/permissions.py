"""The journal's files are private (0600) whatever the umask.

SQLite gives its ``-wal`` and ``-shm`` files the database's mode, so a private database makes
them private too; a journal an older syncd left readable by others is tightened by path.
"""

from __future__ import annotations

import contextlib
import os
import stat
from pathlib import Path

from syncd.errors import JournalError

PRIVATE = 0o600
SIDE_FILES = ("-wal", "-shm", "-journal")  # SQLite's files beside the database


def make_private(fd: int) -> None:
    """Make an opened file 0600 (a file of another user is left as it is)."""
    with contextlib.suppress(PermissionError):
        if stat.S_IMODE(os.fstat(fd).st_mode) != PRIVATE:
            os.fchmod(fd, PRIVATE)


def create_private(path: Path) -> None:
    """Create an empty journal file 0600 if there is none (SQLite would use the umask)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, PRIVATE)
    except FileExistsError:
        return
    except OSError as exc:
        raise JournalError(f"cannot create journal {path}: {exc.strerror or exc}") from exc
    try:
        make_private(fd)
    finally:
        os.close(fd)


def tighten(path: Path) -> None:
    """Make a journal an older syncd left readable by others, and its side files, 0600.

    By path, never by opening them: closing any descriptor of a database file drops this
    process's POSIX locks on it (SQLite's own among them), and another reader could then rebuild
    the ``-shm`` under the daemon's mapping (SIGBUS). A side file is changed only if it is a
    regular file, not a link planted beside the journal.
    """
    for name in (path, *(path.with_name(path.name + s) for s in SIDE_FILES)):
        try:
            info = os.stat(name) if name == path else os.lstat(name)
            if stat.S_ISREG(info.st_mode) and stat.S_IMODE(info.st_mode) != PRIVATE:
                os.chmod(name, PRIVATE)
        except OSError:
            continue  # gone, or another user's: left as it is
