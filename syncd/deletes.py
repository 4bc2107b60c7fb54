"""Remote deletions: the mass-delete guard, and paying the tombstones the journal owes.

A removed local file does not delete its remote copy at once: the path waits in the
:class:`DeleteGate` until the next check, which refuses the whole batch if the root looks wrong
(gone, replaced, unmounted) or if the batch would delete more than ``max_delete_fraction`` of the
synced files. Events and scans both go through this gate, so an emptied root deletes nothing.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import structlog

from syncd.client import FilesClient
from syncd.decide import retry_backoff
from syncd.errors import ApiError, PermanentError
from syncd.journal import Journal

log = structlog.get_logger("syncd.deletes")
# Batches this small never trip the fraction guard: deleting a few files is normal.
MIN_GUARDED = 10
RECENT_SECONDS = 3600.0


def guard_problem(count: int, total: int, max_fraction: float, what: str,
                  override: str) -> str | None:
    """Why acting on ``count`` of ``total`` files at once is refused, or None if it may proceed.

    The twin guards (mass delete, mass re-upload) share this rule: a few files are always fine;
    more than ``max_fraction`` of them means something other than the user is at work.
    """
    if count <= MIN_GUARDED or max_fraction >= 1.0 or count <= max_fraction * total:
        return None
    return f"{what} (more than {max_fraction:.0%}); if this is deliberate, run {override}"


def mass_delete_problem(pending: int, synced: int, max_fraction: float) -> str | None:
    """Why deleting ``pending`` of ``synced`` files is refused, or None if it may proceed."""
    return guard_problem(
        pending, synced, max_fraction, f"refusing to delete {pending} of {synced} remote files",
        "`syncd sync --allow-mass-delete` or raise [sync] max_delete_fraction",
    )


class DeleteGate:
    """Paths whose local file is gone, waiting for the guard's approval. Thread-safe."""

    def __init__(self, max_fraction: float, allow_mass_delete: bool = False) -> None:
        self.max_fraction = 1.0 if allow_mass_delete else max_fraction
        self._lock = threading.Lock()
        self._pending: set[str] = set()
        self._recent: dict[str, float] = {}
        self.refused: str | None = None  # the last refusal, shown by status
        self._last_request = float("-inf")

    def request(self, path: str) -> None:
        """Ask for the remote copy of ``path`` to be deleted."""
        with self._lock:
            self._pending.add(path)
            self._last_request = time.monotonic()

    def quiet_for(self) -> float:
        """Seconds since the last request."""
        with self._lock:
            return time.monotonic() - self._last_request

    def cancel(self, path: str) -> None:
        """The file is back: forget the request."""
        with self._lock:
            self._pending.discard(path)

    def pending(self) -> int:
        """How many deletions wait for approval."""
        with self._lock:
            return len(self._pending)

    def approve(self, synced: int, root_problem: str | None) -> list[str]:
        """Take the whole batch if the root is sound and it is not a mass delete, else none."""
        with self._lock:
            if not self._pending:
                return []
            problem = root_problem or mass_delete_problem(
                len(self._pending), synced, self.max_fraction
            )
            if problem:
                if problem != self.refused:
                    log.error("deletions refused", pending=len(self._pending), reason=problem)
                self.refused = problem
                return []
            self.refused = None
            batch = sorted(self._pending)
            self._pending.clear()
            return batch

    def note_deleted(self, file_id: str, now: float) -> None:
        """Remember a deletion: the listing may show the file for a while after it."""
        with self._lock:
            self._recent[file_id] = now
            for old in [k for k, t in self._recent.items() if now - t > RECENT_SECONDS]:
                del self._recent[old]

    def recently_deleted(self) -> set[str]:
        """File ids deleted within the last hour."""
        with self._lock:
            return set(self._recent)


def delete_owed(
    client: FilesClient,
    journal: Journal,
    file_id: str,
    clock: Callable[[], float] = time.time,
    gate: DeleteGate | None = None,
    attempts: int = 0,
) -> bool:
    """Delete a tombstoned remote file and clear the tombstone; on failure keep it for later."""
    try:
        existed = client.delete(file_id)
    except ApiError as exc:
        wait = retry_backoff(attempts + 1) * (10 if isinstance(exc, PermanentError) else 1)
        journal.defer_tombstone(file_id, clock() + wait, str(exc))
        log.warning("delete failed", file_id=file_id, error=str(exc), retry_in_s=wait)
        return False
    journal.drop_tombstone(file_id)
    if gate is not None:
        gate.note_deleted(file_id, clock())
    log.debug("remote file deleted", file_id=file_id, existed=existed)
    return True


def flush_tombstones(
    client: FilesClient, journal: Journal, clock: Callable[[], float], gate: DeleteGate | None
) -> int:
    """Pay every tombstone that is due; return how many remain owed."""
    owed = journal.tombstones(due_before=clock())
    for tomb in owed:
        delete_owed(client, journal, tomb.file_id, clock, gate, tomb.attempts)
    return len(journal.tombstones())
