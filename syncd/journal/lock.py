"""One daemon per journal: ``flock`` on ``<journal>.lock``, which holds the holder's pid.

The lock file is private (0600) and empty after a clean exit, so a pid left in it means a
crash, not a holder.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import time
from pathlib import Path

from syncd.errors import JournalError, JournalLockedError
from syncd.journal.permissions import PRIVATE, make_private

LOCK_SUFFIX = ".lock"
_LOCK_TRIES = 5
_LOCK_RETRY_S = 0.02


def _lock_path(journal_path: Path) -> Path:
    return journal_path.with_name(journal_path.name + LOCK_SUFFIX)


def _read_pid(fd: int) -> int:
    """The pid a lock holder wrote (0 if it has not written it yet)."""
    text = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
    return int(text) if text.isdigit() else 0


def lock_holder(journal_path: Path) -> int | None:
    """The pid of the live process holding the journal's lock, or None if nobody holds it.

    0 means a holder that has not written its pid yet (it is starting at this instant).
    """
    try:
        fd = os.open(_lock_path(Path(journal_path)), os.O_RDONLY)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise JournalError(f"cannot read the lock of journal {journal_path}: {exc}") from exc
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return _read_pid(fd)
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    finally:
        os.close(fd)


def take_lock(journal_path: Path) -> int:
    """Create the parent directory and hold ``<journal>.lock`` exclusively; return its fd."""
    directory = journal_path.parent
    try:
        directory.mkdir(parents=True, exist_ok=True)
        # CLOEXEC: a child process the daemon starts must not inherit (and outlive) the lock.
        fd = os.open(_lock_path(journal_path), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, PRIVATE)
        make_private(fd)
    except OSError as exc:
        raise JournalError(
            f"cannot write in journal directory {directory}: {exc.strerror or exc}; make it"
            " writable by this user, or set [state] journal to a path that is"
        ) from exc
    try:
        if not _try_flock(fd):
            raise JournalLockedError(
                f"journal {journal_path} is in use by syncd pid {_read_pid(fd)}; stop that"
                " process first (or use another [state] journal)"
            )
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
    except BaseException as exc:
        os.close(fd)
        if isinstance(exc, OSError):
            raise JournalError(f"cannot lock journal {journal_path}: {exc}") from exc
        raise
    return fd


def _try_flock(fd: int) -> bool:
    # `syncd status` probing with lock_holder holds a shared lock for microseconds: a daemon
    # starting at that instant tries again briefly instead of refusing to start.
    for attempt in range(_LOCK_TRIES):
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            if attempt + 1 < _LOCK_TRIES:
                time.sleep(_LOCK_RETRY_S)
    return False


def release_lock(fd: int) -> None:
    """Empty the lock file and close it, which releases the lock."""
    # An empty lock file after a clean exit: a pid left in it means a crash, not a holder.
    with contextlib.suppress(OSError):
        os.ftruncate(fd, 0)
    os.close(fd)  # closing the last descriptor releases the flock
