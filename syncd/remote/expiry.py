"""Copies that expire (GA ``expires_at``): renew them before they lapse.

With ``[remote] expires_in_days`` every upload asks the service to drop the copy after that
lifetime, so a mirror whose daemon dies cleans itself up. A running daemon renews each copy
(upload new, then delete old: the ordinary make-before-break replacement) once 80% of its
lifetime has passed (``Synced.renew_at``), so an application never holds a file_id that lapsed.
A copy that already expired (the daemon was down) is uploaded again the same way. The rule
reads each copy's own ``expires_at``, so it holds whatever lifetime the copy was given.
"""

from __future__ import annotations

from collections.abc import Callable

import structlog

from syncd.journal import Journal

log = structlog.get_logger("syncd.expiry")


def mark_expiring(journal: Journal, mark: Callable[[str], None], now: float) -> int:
    """Mark the copies due for renewal (or already expired) gone and queue their paths."""
    marked = 0
    for path, file_id, expires_at in journal.due_renewals(now):
        reason = "expired" if expires_at <= now else "renew"
        if journal.mark_gone(path, file_id, reason):
            mark(path)
            marked += 1
    if marked:
        log.info("renewing expiring copies", count=marked)
    return marked
