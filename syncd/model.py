"""syncd's data: a local file's stat, what the journal knows of a path (its synced copy, its
failure), upload intents and tombstones. Data only: no I/O, nothing of SQLite."""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from datetime import UTC, datetime


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


# A file modified within this long of when its stat was recorded may change again within the
# same mtime tick: its stat alone does not vouch for its content (git's "racy" entries).
RACY_WINDOW_NS = 2_000_000_000
RENEW_FRACTION = 0.8  # an expiring copy is renewed once this share of its lifetime has passed


@dataclass(frozen=True)
class Synced:
    """What the remote holds for a path: the last successful upload."""

    file_id: str
    remote_name: str
    sha256: str
    size: int
    mtime_ns: int
    ino: int
    mime_type: str
    synced_at: float
    expires_at: float | None = None  # when the service drops the copy (None: never)

    @property
    def stat(self) -> LocalStat:
        """The local stat the uploaded content was read from."""
        return LocalStat(self.size, self.mtime_ns, self.ino)

    @property
    def renew_at(self) -> float | None:
        """When the copy is due for renewal: 80% into its lifetime (None: it never expires)."""
        if self.expires_at is None:
            return None
        return self.synced_at + RENEW_FRACTION * (self.expires_at - self.synced_at)


@dataclass(frozen=True)
class Failure:
    """The latest failure for the path's current local version."""

    kind: str  # "permanent" | "transient"
    message: str
    attempts: int
    next_attempt: float  # unix time before which the path is not retried (0 = any time)
    stat: LocalStat | None  # the version that failed: a permanent error lifts when it changes


@dataclass(frozen=True)
class FileRow:
    """One local path as the journal knows it."""

    path: str
    synced: Synced | None
    failure: Failure | None
    # Why the copy must be uploaded again though the file did not change: "missing" (a complete
    # listing lacks it), "expired", "renew" (its lifetime is nearly over). Its file_id stays
    # until the new copy is committed, then is tombstoned: make before break.
    gone: str | None = None


@dataclass(frozen=True)
class Intent:
    """An upload that has started; a crash leaves it for reconcile to resolve."""

    id: int
    path: str
    remote_name: str
    size: int
    mtime_ns: int
    ino: int
    started_at: float

    @property
    def stat(self) -> LocalStat:
        """The local version being uploaded: reconcile adopts a lost copy only if it still is."""
        return LocalStat(self.size, self.mtime_ns, self.ino)


@dataclass(frozen=True)
class Tombstone:
    """A remote file this journal created and still owes a DELETE."""

    file_id: str
    remote_name: str
    path: str
    reason: str
    attempts: int
    next_attempt: float
    last_error: str = ""


@dataclass(frozen=True)
class JournalCounts:
    """Totals for `syncd status`."""

    synced: int  # rows with a remote copy and no failure
    synced_bytes: int  # their sizes
    errors: int  # permanent failures
    retrying: int  # transient failures
    intents: int
    tombstones: int
    reuploads: int = 0  # copies missing, expired or due for renewal, not yet replaced

    def pending(self, queued: int) -> int:
        """Work not yet done, counted one way by every report (STATUS=, `syncd status`):
        ``queued`` is what the mirror holds (paths queued or held by a worker, so their retries
        and uploads in flight; deletions waiting for the gate; marks an overflowing queue
        dropped), plus the copies owed a deletion. Retrying rows and open intents are not added
        again: their paths are in the queue."""
        return queued + self.tombstones


# A row's remote copy as reconcile reads it (Journal.iter_copies):
# (path, file_id, synced_at, expires_at, gone: marked for upload again).
Copy = tuple[str, str, float, float | None, bool]


def rfc3339(ts: float) -> str:
    """A unix time as RFC 3339 UTC with a Z (how times are shown)."""
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def stamp(ts: float) -> str:
    """A unix time as the journal's meta stores it (one format for every stored time)."""
    return repr(float(ts))


def read_stamp(text: str | None) -> float | None:
    """A stored time back as a unix time; None when absent or unreadable. Accepts the RFC 3339
    text journals before 0.2 stored for ``last_reconcile``."""
    if not text:
        return None
    try:
        value = float(text)
    except ValueError:
        try:
            value = datetime.fromisoformat(text).timestamp()
        except ValueError:
            return None
    return value if math.isfinite(value) else None


def is_racy(mtime_ns: int, recorded_at: float) -> bool:
    """True when the file's mtime is too close to when it was recorded to trust the stat."""
    return mtime_ns >= int(recorded_at * 1e9) - RACY_WINDOW_NS
