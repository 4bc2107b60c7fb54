"""The root's identity: is the directory at the root's path still the one first synced?

A journal belongs to one root (invariant 11). Its path is checked when the journal opens; its
identity (device and inode) is recorded at the first scan. When another directory takes the
path (a mount that failed, a folder moved away and replaced) every file in it would look new
and every synced file deleted: the daemon pauses all work until the directory is back, or until
`syncd sync --accept-new-root` records the new one.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

import structlog

from syncd.errors import SafetyStop
from syncd.journal import Journal
from syncd.local.scan import check_root

log = structlog.get_logger("syncd.rootguard")
META_KEY = "root_identity"


class RootGuard:
    """Records the root's identity once and compares it later; thread-safe."""

    def __init__(self, root: Path, journal: Journal, accept_new: bool = False) -> None:
        self.root = root
        self._journal = journal
        self._accept_new = accept_new  # spent once used: a second change is refused again
        self._lock = threading.Lock()
        self._known: str | None = None
        self._known_id: tuple[int, int] | None = None  # the same, parsed, for the workers

    def problem(self) -> str | None:
        """Why the root must not be worked on now (gone, replaced, unmounted), or None.

        The first call on a new journal records the identity; with ``accept_new`` a changed
        identity is recorded instead of refused (once).
        """
        try:
            identity = _identity(check_root(self.root))
        except SafetyStop as exc:
            return str(exc)
        with self._lock:
            known = self._known or self._journal.get_meta(META_KEY)
            if known is not None and known != identity and self._accept_new:
                log.warning("accepted a new root directory", root=str(self.root),
                            was=known, now=identity)
                known = None
            self._accept_new = False
            if known is None:
                self._journal.set_meta(META_KEY, identity)
                known = identity
            self._known = known
            self._known_id = _parse(known)
        if known != identity:
            return (
                f"root {self.root} is not the directory first synced (replaced or unmounted?); "
                "nothing is uploaded or deleted until it is back, or until `syncd sync "
                "--accept-new-root` takes it as the root"
            )
        return None

    def identity(self) -> tuple[int, int] | None:
        """The known root's (st_dev, st_ino), for the workers to check the root fd they read
        under (:mod:`syncd.local.fs`); None before the first :meth:`problem`."""
        return self._known_id

    def moved(self) -> bool:
        """True when the root is gone or is not the directory last known (nothing is known
        before the first :meth:`problem`)."""
        known = self._known
        if known is None:
            return False
        try:
            return _identity(os.stat(self.root)) != known
        except OSError:
            return True


def _identity(info: os.stat_result) -> str:
    return f"{info.st_dev}:{info.st_ino}"


def _parse(identity: str) -> tuple[int, int] | None:
    dev, _, ino = identity.partition(":")
    try:
        return int(dev), int(ino)
    except ValueError:  # a journal's value this version did not write: the stat check remains
        return None
