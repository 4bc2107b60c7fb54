"""What to do with one path: a pure function of its local stat and its journal row.

Events are hints; this is the fact. A worker stats the path, reads the row, and asks
:func:`decide`. Only when the stat says the content *may* have changed but the size did not does
the worker hash the file and ask :func:`decide_after_hash`, so a touch costs no request.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from syncd.model import FileRow, LocalStat, is_racy

# A file modified this close to the moment it was recorded may change again within the same
# timestamp tick without its stat moving (git's "racy" case): re-hash it on the next look.


class Action(Enum):
    """The outcome of a decision."""

    NOTHING = "nothing"  # in sync, or waiting for the file to change after a permanent error
    UPLOAD = "upload"  # new file, or new content for a synced one (make before break)
    VERIFY = "verify"  # stat moved, size did not: hash to tell a touch from an edit
    DELETE = "delete"  # the file is gone locally: delete its remote copy
    FORGET = "forget"  # gone locally and never synced: drop the row
    WAIT = "wait"  # a transient failure is backing off


@dataclass(frozen=True)
class Decision:
    """An action and, for WAIT, the unix time to look again."""

    action: Action
    retry_at: float = 0.0


NOTHING = Decision(Action.NOTHING)


def decide(local: LocalStat | None, row: FileRow | None, now: float) -> Decision:
    """Decide from the local stat (None: not an eligible file) and the journal row."""
    if local is None:
        if row is None:
            return NOTHING
        return Decision(Action.DELETE if row.synced else Action.FORGET)
    failure = row.failure if row else None
    if failure is not None:
        if failure.kind == "permanent" and failure.stat == local:
            return NOTHING
        if failure.kind == "transient" and failure.stat == local and now < failure.next_attempt:
            return Decision(Action.WAIT, failure.next_attempt)
    synced = row.synced if row else None
    if synced is None or (row is not None and row.gone):
        return Decision(Action.UPLOAD)  # new, or its copy is gone or expiring: upload again
    if synced.stat == local and not is_racy(synced.mtime_ns, synced.synced_at):
        return NOTHING if failure is None else Decision(Action.UPLOAD)
    if synced.size != local.size:
        return Decision(Action.UPLOAD)
    return Decision(Action.VERIFY)


def decide_after_hash(sha256: str, row: FileRow) -> Action:
    """After VERIFY: same content is a touch (record the new stat), else upload."""
    if row.synced is not None and row.synced.sha256 == sha256:
        return Action.NOTHING
    return Action.UPLOAD


def retry_backoff(attempts: int, base: float = 5.0, cap: float = 900.0) -> float:
    """Seconds before a path whose upload failed transiently ``attempts`` times is tried again."""
    # Bound the exponent: after ~1024 failures 2**n no longer fits a float (OverflowError).
    return float(min(cap, base * 2 ** min(max(0, attempts - 1), 64)))
