"""The plan of a reconcile: a complete listing against a journal snapshot, pure.

:func:`plan` decides from values alone (the listing, a :class:`Snapshot` read after it, the
paths workers hold, the clock skew): which of our copies are missing or expired and go again,
which lost uploads to adopt or delete, how many files are foreign. :func:`snapshot` reads what
it needs from the journal. The scheduling rules of the full pass (:func:`full_listing_owed`,
:func:`full_pass_interval`) are here too: pure functions of stamps and counts.
:mod:`syncd.engine.reconcile` does the I/O around them.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import NamedTuple

from syncd.engine.deletes import guard_problem
from syncd.engine.intents import match_intents, slack
from syncd.journal import Journal
from syncd.model import FileRow, Intent
from syncd.remote.files import RemoteFile
from syncd.remote.listing import Listing

REUPLOAD_OVERRIDE = "`syncd sync --allow-mass-reupload`"


class Ours(NamedTuple):
    """A copy the journal holds, as reconcile needs it."""

    path: str
    synced_at: float
    expires_at: float | None = None
    gone: bool = False  # already marked for upload again


class Missing(NamedTuple):
    """A path to upload again because its copy ``file_id`` is gone."""

    path: str
    file_id: str
    reason: str  # "missing" | "expired"


@dataclass(frozen=True)
class Plan:
    """What a reconcile will do."""

    missing: tuple[Missing, ...] = ()  # paths to upload again
    adopt: tuple[tuple[Intent, RemoteFile], ...] = ()
    orphans: tuple[tuple[Intent, RemoteFile], ...] = ()  # our lost uploads, to delete
    spent_intents: tuple[Intent, ...] = ()  # intents with no copy left to find
    foreign: int = 0
    ours: int = 0
    refused: str | None = None  # why nothing is done: the listing lacks too many of our files


@dataclass(frozen=True)
class Shown:
    """Our copies a listing shows, unexpired at ``listed_since``: marked at their index in
    that listing and counted, not held as :class:`Ours` (a million of them would fill memory;
    plan() would only skip them)."""

    listing: Listing
    listed_since: float
    marks: bytearray  # OURS at the index of each such copy, UNLISTED at entries not listed
    count: int


@dataclass(frozen=True)
class Snapshot:
    """The journal as reconcile needs it."""

    synced: Mapping[str, Ours]  # file_id -> our copy (those in ``shown`` left out)
    tombstoned: frozenset[str]
    intents: tuple[Intent, ...]
    rows: Mapping[str, FileRow] = field(default_factory=dict)  # rows of intents' paths
    shown: Shown | None = None


OURS, RECENT, UNLISTED = 1, 2, 3  # what plan() finds an entry of the listing to be (0: not ours)


def plan(
    listing: Listing | Iterable[RemoteFile],
    snap: Snapshot,
    listed_since: float,
    held: frozenset[str] = frozenset(),
    recently_deleted: frozenset[str] = frozenset(),
    max_missing_fraction: float = 1.0,
    clock_skew: float = 0.0,
) -> Plan:
    """Compare a complete listing with the journal snapshot; pure.

    ``clock_skew``: seconds the service's clock runs ahead of ours (negative: behind), as the
    client learnt it; a service behind us stamps our lost uploads earlier than their intents.
    """
    listed = listing if isinstance(listing, Listing) else Listing.of(listing)
    shown = snap.shown
    if shown is not None and (shown.listing is not listed or shown.listed_since != listed_since):
        raise ValueError("the snapshot was taken against another listing")
    # Per entry: OURS, RECENT, UNLISTED or 0 (listed, not ours).
    seen = bytearray(shown.marks) if shown else listed.marks(UNLISTED)
    missing = _missing(listed, snap, listed_since, held, seen)
    synced = len(snap.synced) + (shown.count if shown else 0)
    _mark(listed, snap.tombstoned, seen, OURS)
    _mark(listed, recently_deleted, seen, RECENT)
    ours, others = seen.count(OURS), seen.count(0)
    # A session's output is never ours; nor is a file listed without details (see listing).
    unknown = [f for i, f in listed.details() if not seen[i] and not f.scoped]
    unexplained = sum(1 for m in missing if m.reason == "missing")
    refused = guard_problem(
        unexplained, synced, max_missing_fraction,
        f"the listing lacks {unexplained} of our {synced} synced files; nothing"
        " forgotten or re-uploaded", REUPLOAD_OVERRIDE + " or raise [sync] max_missing_fraction",
    )
    if refused:
        return Plan(foreign=others, ours=ours, refused=refused)
    found = match_intents(unknown, snap.intents, snap.rows, listed_since, held,
                          slack(clock_skew))
    matched = {f.id for _, f in found.adopt} | {f.id for _, f in found.orphans}
    return Plan(
        missing=missing,
        adopt=found.adopt,
        orphans=found.orphans,
        spent_intents=found.spent,
        foreign=others - len(matched),
        ours=ours,
    )


def _mark(listed: Listing, ids: Iterable[str], seen: bytearray, what: int) -> None:
    """Mark the listed files among ``ids`` as ``what``, unless already marked."""
    for file_id in ids:
        index = listed.index(file_id)
        if index >= 0 and not seen[index]:
            seen[index] = what


def _missing(
    listed: Listing, snap: Snapshot, listed_since: float, held: frozenset[str],
    seen: bytearray,
) -> tuple[Missing, ...]:
    """Our copies the listing lacks or shows expired (at ``listed_since``), path order; marks
    the listed ones OURS in ``seen``."""
    found: list[Missing] = []
    for file_id, ours in snap.synced.items():
        index = listed.index(file_id)
        if index >= 0:
            seen[index] = OURS
        if ours.gone or ours.synced_at >= listed_since or ours.path in held:
            continue
        listed_expiry = listed.expires_at(index) if index >= 0 else None
        if _expired(listed_expiry, ours.expires_at, listed_since):
            found.append(Missing(ours.path, file_id, "expired"))
        elif index < 0:
            found.append(Missing(ours.path, file_id, "missing"))
    return tuple(sorted(found))


def _expired(listed: float | None, recorded: float | None, listed_since: float) -> bool:
    """True if a copy expired by ``listed_since`` (the listing's word first, else ours)."""
    expires = listed if listed is not None else recorded
    return expires is not None and expires <= listed_since


def full_listing_owed(
    last_listing: float | None, now: float, interval: float, refused: bool
) -> str | None:
    """Why the start-up must list the whole workspace, or None.

    A full listing is owed when none was ever completed (a new or rebuilt journal), when the
    last one was refused, or when the periodic full pass is due (a clock that went back counts
    as due).
    """
    if last_listing is None:
        return "no complete listing recorded yet"
    if refused:
        return "the last reconcile was refused"
    if not 0 <= now - last_listing < interval:
        return "the periodic full pass is due"
    return None


def full_pass_interval(base: float, pages: int, share: float, per_minute: float) -> float:
    """Seconds between periodic full passes: ``base``, stretched so that listing ``pages``
    pages spends at most ``share`` of a budget of ``per_minute`` requests a minute."""
    if pages <= 0 or share <= 0 or per_minute <= 0:
        return base
    return max(base, 60.0 * pages / (share * per_minute))


def snapshot(
    journal: Journal, listing: Listing | None = None, listed_since: float = math.inf
) -> Snapshot:
    """Read what reconcile needs from the journal.

    Given the listing it is for (and when that began), the copies the listing shows unexpired
    are only marked and counted (:class:`Shown`), so memory stays small however many there
    are; plan() must then get that same listing and time.
    """
    synced: dict[str, Ours] = {}
    marks = listing.marks(UNLISTED) if listing is not None else bytearray()
    count = 0
    for path, file_id, synced_at, expires_at, gone in journal.iter_copies():
        index = listing.index(file_id) if listing is not None else -1
        if listing is not None and index >= 0 and not _expired(
            listing.expires_at(index), expires_at, listed_since
        ):
            count += not marks[index]
            marks[index] = OURS
        else:
            synced[file_id] = Ours(path, synced_at, expires_at, gone)
    intents = tuple(journal.intents())
    rows = {i.path: r for i in intents if (r := journal.get(i.path)) is not None}
    tombstoned = frozenset(t.file_id for t in journal.tombstones())
    shown = Shown(listing, listed_since, marks, count) if listing is not None else None
    return Snapshot(synced, tombstoned, intents, rows, shown)


def our_ids(journal: Journal) -> Iterator[str]:
    """The file ids the journal knows before a listing (what the listing is expected to show)."""
    for copy in journal.iter_copies():
        yield copy[1]
    for tomb in journal.tombstones():
        yield tomb.file_id
