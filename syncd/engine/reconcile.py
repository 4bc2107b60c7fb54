"""Remote reconcile: page the whole listing once, then repair what events missed.

The listing is evidence only when it is complete (the client's iterator raises otherwise), and
the plan is a pure function of it and a snapshot of the journal taken AFTER the listing (so an
upload committed while paging is never mistaken for an orphan):

- a journal row whose copy is not listed (and was synced before the listing began), or whose
  copy has expired, is marked gone and queued: it is uploaded again, and its old id stays in the
  row until the new copy is committed, then is tombstoned, so a copy that reappears is deleted
  (make before break). If more than ``max_missing_fraction`` of the synced files are missing
  without having expired, the listing is not believed: nothing is done, and status says why;
- a listed file that the journal does not track but that matches an upload intent (same remote
  name, same size, created after the intent started, give or take ``CLOCK_SKEW`` and however
  far the service's clock is learnt to lag ours) is ours: the newest is adopted when the
  local file is still exactly what was being uploaded, every other match is deleted;
- everything else (session outputs included) is foreign: counted, never touched (invariant 1).

A listing that never ends (a server handing out fresh cursors forever) is cut off at 10 times
the pages of the last complete listing plus 100, and fails like any incomplete listing.

At start-up the whole listing is paged only when one is owed (:func:`startup_listing`: no
complete listing yet, uploads in flight, a refusal, the periodic pass due); otherwise one
``limit=1`` request proves the key and the workspace, and the periodic pass comes when the last
one's interval ends.

Memory: the listing is streamed into a compact :class:`~syncd.remote.listing.Listing` (our
known ids entered first, File objects kept only for files we did not know), and the snapshot
only counts the copies the listing shows unexpired (:class:`Shown`): a million files cost about
90 bytes each at the peak, not a File object and an :class:`Ours` each.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from functools import partial
from typing import NamedTuple

import structlog

from syncd.engine.context import SyncContext
from syncd.engine.deletes import DeleteGate, delete_owed, guard_problem
from syncd.engine.dirtyqueue import DirtyQueue
from syncd.errors import LocalFileError
from syncd.journal import Journal
from syncd.local.fs import hash_unchanged
from syncd.model import FileRow, Intent, Synced, read_stamp, rfc3339, stamp
from syncd.remote.client import FilesClient, RemoteFile
from syncd.remote.listing import Listing
from syncd.remote.protocol import LIST_LIMIT

log = structlog.get_logger("syncd.reconcile")
CLOCK_SKEW = 60.0  # seconds our clock may run ahead of the service's created_at
# A learnt skew widens the window by at most this: a service claiming a date years back must not
# make every same-named, same-sized foreign file match an intent.
MAX_SKEW = 3600.0
INTENT_GRACE = 30.0  # seconds an upload must be old before a listing without its copy ends it
PAGES_META = "listing_pages"  # pages of the last complete listing
LISTED_META = "last_listing"  # unix time a complete listing began (the last full pass)
PAGE_CAP_FACTOR, PAGE_CAP_MARGIN = 10, 100
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
    slack = CLOCK_SKEW + min(max(0.0, -clock_skew), MAX_SKEW)
    adopt, orphans, spent = _match_intents(unknown, snap, listed_since, held, slack)
    matched = {f.id for _, f in adopt} | {f.id for _, f in orphans}
    return Plan(
        missing=missing,
        adopt=tuple(adopt),
        orphans=tuple(orphans),
        spent_intents=tuple(spent),
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


def _match_intents(
    unknown: list[RemoteFile], snap: Snapshot, listed_since: float, held: frozenset[str],
    slack: float,
) -> tuple[list[tuple[Intent, RemoteFile]], list[tuple[Intent, RemoteFile]], list[Intent]]:
    """Pair lost uploads with their intents, per path: adopt at most one, delete the rest."""
    adopt: list[tuple[Intent, RemoteFile]] = []
    orphans: list[tuple[Intent, RemoteFile]] = []
    spent: list[Intent] = []
    taken: set[str] = set()
    by_path: dict[str, list[Intent]] = {}
    for intent in snap.intents:
        if intent.path not in held and intent.started_at < listed_since:
            by_path.setdefault(intent.path, []).append(intent)
    for path, intents in by_path.items():
        matches: list[tuple[Intent, RemoteFile]] = []
        # Newest intent first: each copy pairs with the latest upload it can be from, so the
        # copy adopted is checked against the version that was actually sent.
        for intent in sorted(intents, key=lambda i: i.started_at, reverse=True):
            for f in unknown:
                if f.id not in taken and _matches(intent, f, slack):
                    taken.add(f.id)
                    matches.append((intent, f))
        if not matches:
            # A listing can lie "complete and empty" (found by the simulation: a restart during
            # such a spell dropped the intents, and their copies stayed forever as if foreign).
            # No copy found is trusted only once the upload is INTENT_GRACE old at listing time.
            spent.extend(i for i in intents if i.started_at < listed_since - INTENT_GRACE)
            continue
        spent.extend(intents)
        matches.sort(key=lambda m: m[1].created_at)
        newest = matches[-1]
        row = snap.rows.get(path)
        if _adoptable(newest[0], row):
            adopt.append(newest)
            matches = matches[:-1]
        orphans.extend(matches)
    return adopt, orphans, spent


def _matches(intent: Intent, remote: RemoteFile, slack: float) -> bool:
    """Same name, same size, created after the intent started (``slack`` seconds of doubt)."""
    created = remote.created_at.timestamp()
    return (
        remote.filename == intent.remote_name
        and remote.size_bytes == intent.size
        and created >= intent.started_at - slack
    )


def _adoptable(intent: Intent, row: FileRow | None) -> bool:
    """A lost upload can stand in for the path only if no later upload has been committed."""
    return row is None or row.synced is None or row.synced.synced_at < intent.started_at


def startup_listing(
    last_listing: float | None, now: float, interval: float, intents: int, refused: bool
) -> str | None:
    """Why the start-up must list the whole workspace, or None when one request will do.

    A full listing is owed when none was ever completed (a new or rebuilt journal), when
    uploads were in flight as syncd stopped (their copies must be found), when the last one was
    refused, or when the periodic full pass is due (a clock that went back counts as due).
    """
    if last_listing is None:
        return "no complete listing recorded yet"
    if intents:
        return f"{intents} upload(s) were in flight when syncd stopped"
    if refused:
        return "the last reconcile was refused"
    if not 0 <= now - last_listing < interval:
        return "the periodic full pass is due"
    return None


class Reconciler:
    """Runs a reconcile against the service and applies its plan, path by path."""

    def __init__(
        self, ctx: SyncContext, gate: DeleteGate, max_missing_fraction: float = 1.0
    ) -> None:
        self.ctx = ctx
        self.gate = gate
        self.max_missing_fraction = max_missing_fraction
        self.last: Plan | None = None

    def last_refusal(self) -> str | None:
        """Why the last reconcile changed nothing (a listing lacking too many files), or None."""
        return self.last.refused if self.last else None

    def start_up(self, interval: float, force: bool = False) -> float:
        """The start-up reconcile: a full pass only when :func:`startup_listing` says one is
        owed (or ``force``); otherwise one ``limit=1`` request proves the key and the workspace.
        Returns the
        seconds until the next full pass is due.

        The probe is evidence of one thing more: a workspace that lists nothing while the
        journal holds copies (a key moved to an empty workspace) gets the full pass at once.
        """
        ctx = self.ctx
        journal = ctx.journal
        now = ctx.clock()
        last = read_stamp(journal.get_meta(LISTED_META))
        reason = "asked for" if force else startup_listing(
            last, now, interval, len(journal.intents()), bool(journal.get_meta("reconcile_refused"))
        )
        if reason is None and not ctx.client.list_page(limit=1).data and journal.counts().synced:
            reason = "the workspace lists nothing and the journal holds copies"
        if reason is not None or last is None:
            log.info("listing the workspace", reason=reason)
            self.run()
            return interval
        due = last + interval - now
        log.info("start-up listing skipped", last_listing=rfc3339(last),
                 next_full_pass_in_s=round(due))
        return due

    def run(self, client: FilesClient | None = None) -> Plan:
        """List everything, plan, apply; return the plan.

        A listing that is not proven complete raises (from the client) before anything is
        planned: the journal and the workspace are left exactly as they were.
        """
        ctx = self.ctx
        remote = client or ctx.client
        started = ctx.clock()
        t0 = time.monotonic()
        listing = self._list(remote, _our_ids(ctx.journal))
        snap = snapshot(ctx.journal, listing, started)
        recent = frozenset(self.gate.recently_deleted())
        result = plan(listing, snap, started, ctx.queue.held(), recent, self.max_missing_fraction,
                      remote.clock_skew())
        if result.refused:
            log.error("reconcile refused", reason=result.refused)
        else:
            self._apply(result)
        ctx.journal.set_meta("reconcile_refused", result.refused or "")
        ctx.journal.set_meta("last_reconcile", stamp(ctx.clock()))
        ctx.journal.set_meta(LISTED_META, stamp(started))
        ctx.journal.set_meta("foreign_files", str(result.foreign))
        ctx.metrics.reconciled(ctx.clock())
        self.last = result
        log.info(
            "reconciled", listed=listing.sightings, ours=result.ours, foreign=result.foreign,
            missing=len(result.missing), adopted=len(result.adopt),
            orphans_deleted=len(result.orphans), refused=bool(result.refused),
            duration_ms=round((time.monotonic() - t0) * 1000, 1),
        )
        return result

    def _list(self, client: FilesClient, ours: Iterable[str]) -> Listing:
        """The whole listing, at most 10 x the pages of the last complete one + 100 pages,
        streamed into a compact :class:`Listing` expecting ``ours`` (kept without details)."""
        journal = self.ctx.journal
        known = journal.get_meta(PAGES_META) or ""
        estimate = math.ceil(journal.counts().synced / LIST_LIMIT)  # no listing yet: the journal
        last = max(int(known) if known.isdigit() else 0, estimate)
        pages = [0]
        listing = Listing.of(client.iter_files(
            max_pages=PAGE_CAP_FACTOR * last + PAGE_CAP_MARGIN,
            on_page=lambda n: pages.__setitem__(0, n),
        ), ours)
        journal.set_meta(PAGES_META, str(pages[0]))
        return listing

    def _apply(self, result: Plan) -> None:
        ctx = self.ctx
        for gone in result.missing:
            # By (path, file_id): a copy a worker committed since the snapshot is left alone.
            if ctx.journal.mark_gone(gone.path, gone.file_id, gone.reason):
                log.warning("copy gone; uploading again", path=gone.path, file_id=gone.file_id,
                            reason=gone.reason)
                ctx.queue.mark(gone.path, settle=False)
        for intent, remote in result.adopt:
            _claimed(ctx.queue, intent.path, partial(self._adopt, intent, remote))
        for intent, remote in result.orphans:
            ctx.journal.add_tombstone(remote.id, remote.filename, intent.path, "orphan")
            delete_owed(ctx.client, ctx.journal, remote.id, ctx.clock, self.gate)
        for intent in result.spent_intents:
            ctx.journal.drop_intent(intent.id)

    def _adopt(self, intent: Intent, remote: RemoteFile) -> None:
        """Take a lost upload as the path's copy if the local file is still what was sent."""
        ctx = self.ctx
        try:
            sha = hash_unchanged(ctx.root, intent.path, intent.stat, ctx.follow_symlinks)
        except LocalFileError:
            sha = None  # unreadable now: nothing proves it is what was sent
        if sha is None:  # changed (before or while hashed) or gone: the copy is an orphan
            ctx.journal.add_tombstone(remote.id, remote.filename, intent.path, "orphan")
            delete_owed(ctx.client, ctx.journal, remote.id, ctx.clock, self.gate)
            ctx.queue.mark(intent.path, settle=False)
            return
        synced = Synced(
            file_id=remote.id, remote_name=remote.filename, sha256=sha, size=intent.size,
            mtime_ns=intent.mtime_ns, ino=intent.ino, mime_type=remote.mime_type,
            synced_at=ctx.clock(),
        )
        row = ctx.journal.get(intent.path)
        ctx.journal.commit_upload(intent.path, synced, intent.id)
        ctx.metrics.changed()
        log.info("adopted", path=intent.path, file_id=remote.id, bytes=remote.size_bytes)
        if row and row.synced and row.synced.file_id != remote.id:
            delete_owed(ctx.client, ctx.journal, row.synced.file_id, ctx.clock, self.gate)


def _claimed(queue: DirtyQueue, path: str, action: Callable[[], None]) -> bool:
    """Run ``action`` while holding ``path`` (skipped if a worker has it); True if it ran."""
    if not queue.claim(path):
        return False
    try:
        action()
    finally:
        queue.done(path)
    return True


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


def _our_ids(journal: Journal) -> Iterator[str]:
    """The file ids the journal knows before a listing (what the listing is expected to show)."""
    for copy in journal.iter_copies():
        yield copy[1]
    for tomb in journal.tombstones():
        yield tomb.file_id
