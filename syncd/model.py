"""The part of a local file's stat that tells whether its content may have changed."""

from __future__ import annotations

import os
from dataclasses import dataclass


@dataclass(frozen=True)
class LocalStat:
    """Size, modification time and inode: equal values mean "content unchanged" (as git does)."""

    size: int
    mtime_ns: int
    ino: int

    @classmethod
    def from_stat(cls, st: os.stat_result) -> LocalStat:
        """Take the fields that matter from an ``os.stat_result``."""
        return cls(size=st.st_size, mtime_ns=st.st_mtime_ns, ino=st.st_ino)
