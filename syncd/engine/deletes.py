"""Remote deletions: the mass-delete guard, and paying the tombstones the journal owes.

A removed local file does not delete its remote copy at once: the path waits in the
:class:`DeleteGate` until the next check, which refuses the whole batch if the root looks wrong
(gone, replaced, unmounted) or if the batch, with every deletion approved in the last hour,
would delete more than ``max_delete_fraction`` of the files synced when that hour began (so a
wipe done slowly, a few files at a time, is refused like a fast one). Events and scans both go
through this gate, so an emptied root deletes nothing.

A failed delete keeps its tombstone with the server's message, cleaned by
:func:`syncd.logs.stored_text` first: server text is never stored as it came (invariant 9).
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable

import structlog

from syncd import logs
from syncd.engine.decide import retry_backoff
from syncd.errors import ApiError, PermanentError
from syncd.journal import Journal
from syncd.remote.client import FilesClient

log = structlog.get_logger("syncd.deletes")
# Batches this small never trip the fraction guard: deleting a few files is normal.
MIN_GUARDED = 10
RECENT_SECONDS = 3600.0
DELETE_WINDOW = 3600.0  # deletions approved this long ago still count against the guard


def guard_problem(count: int, total: int, max_fraction: float, what: str,
                  override: str) -> str | None:
    """Why acting on ``count`` of ``total`` files at once is refused, or None if it may proceed.

    The twin guards (mass delete, mass re-upload) share this rule: a few files are always fine;
    more than ``max_fraction`` of them means something other than the user is at work.
    """
    if count <= MIN_GUARDED or max_fraction >= 1.0 or count <= max_fraction * total:
        return None
    return f"{what} (more than {max_fraction:.0%}); if this is deliberate, run {override}"


def mass_delete_problem(
    pending: int, synced: int, max_fraction: float, deleted: int = 0
) -> str | None:
    """Why deleting ``pending`` of ``synced`` files is refused, or None if it may proceed.

    ``deleted``: how many were approved in the last hour, when there were ``synced`` files; they
    count with ``pending``.
    """
    total = pending + deleted
    what = (
        f"refusing to delete {pending} of {synced} remote files" if not deleted else
        f"refusing to delete {pending} more remote files: with the {deleted} deleted in the last"
        f" hour that is {total} of {synced}"
    )
    return guard_problem(
        total, synced, max_fraction, what,
        "`syncd sync --allow-mass-delete` or raise [sync] max_delete_fraction",
    )


class DeleteGate:
    """Paths whose local file is gone, waiting for the guard's approval. Thread-safe.

    The guard judges a batch together with every batch approved in the last
    ``DELETE_WINDOW`` seconds (by ``clock``), against the synced count when the first of them
    was approved.
    """

    def __init__(
        self, max_fraction: float, allow_mass_delete: bool = False,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.max_fraction = 1.0 if allow_mass_delete else max_fraction
        self._clock = clock
        self._lock = threading.Lock()
        self._pending: set[str] = set()
        self._approved: deque[tuple[float, int, int]] = deque()  # (when, how many, synced then)
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
            now = self._clock()
            while self._approved and self._approved[0][0] <= now - DELETE_WINDOW:
                self._approved.popleft()
            base = self._approved[0][2] if self._approved else synced
            deleted = sum(n for _, n, _ in self._approved)
            problem = root_problem or mass_delete_problem(
                len(self._pending), base, self.max_fraction, deleted
            )
            if problem:
                if problem != self.refused:
                    log.error("deletions refused", pending=len(self._pending), reason=problem)
                self.refused = problem
                return []
            self.refused = None
            batch = sorted(self._pending)
            self._pending.clear()
            self._approved.append((now, len(batch), synced))
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
        journal.defer_tombstone(file_id, clock() + wait, logs.stored_text(str(exc)))
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
