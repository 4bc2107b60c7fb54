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
  far the service's clock is learnt to lag ours; :mod:`syncd.engine.intents`) is ours: the
  newest is adopted when the local file is still exactly what was being uploaded, every other
  match is deleted;
- everything else (session outputs included) is foreign: counted, never touched (invariant 1).

A listing that never ends (a server handing out fresh cursors forever) is cut off at 10 times
the pages of the last complete listing plus 100, and fails like any incomplete listing.

At start-up the whole listing is paged only when one is owed (:func:`full_listing_owed`: no
complete listing yet, a refusal, the periodic pass due). Uploads in flight at the last stop are
looked for in the newest pages only (:meth:`Reconciler.resolve_intents`), which decide nothing
but those intents; a listing that is not newest first is paged on to its end instead.
Otherwise one ``limit=1`` request proves the key and the workspace. The periodic pass comes
when the last one's interval ends, that interval stretched so that listing spends at most
``[sync] reconcile_budget_share`` of the request budget (:func:`full_pass_interval`).

Memory: the listing is streamed into a compact :class:`~syncd.remote.listing.Listing` (our
known ids entered first, File objects kept only for files we did not know), and the snapshot
only counts the copies the listing shows unexpired (:class:`Shown`): a million files cost about
90 bytes each at the peak, not a File object and an :class:`Ours` each.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable
from functools import partial

import structlog

from syncd.engine.context import SyncContext
from syncd.engine.deletes import DeleteGate, delete_owed
from syncd.engine.dirtyqueue import DirtyQueue
from syncd.engine.intents import WINDOW_MAX_PAGES, Window, slack, window_matches
from syncd.engine.plan import (
    Plan,
    full_listing_owed,
    full_pass_interval,
    our_ids,
    plan,
    snapshot,
)
from syncd.errors import LocalFileError
from syncd.local.fs import hash_unchanged
from syncd.model import Intent, Synced, read_stamp, rfc3339, stamp
from syncd.remote.client import FilesClient, RemoteFile
from syncd.remote.listing import Listing
from syncd.remote.protocol import LIST_LIMIT

log = structlog.get_logger("syncd.reconcile")
PAGES_META = "listing_pages"  # pages of the last complete listing
LISTED_META = "last_listing"  # unix time a complete listing began (the last full pass)
INTERVAL_META = "full_pass_interval"  # seconds between full passes, as last scheduled
PAGE_CAP_FACTOR, PAGE_CAP_MARGIN = 10, 100


class Reconciler:
    """Runs a reconcile against the service and applies its plan, path by path.

    ``budget_share``: the share of the request budget the periodic full pass may spend
    (``[sync] reconcile_budget_share``), see :meth:`full_pass_interval`.
    """

    def __init__(
        self, ctx: SyncContext, gate: DeleteGate, max_missing_fraction: float = 1.0,
        budget_share: float = 0.05,
    ) -> None:
        self.ctx = ctx
        self.gate = gate
        self.max_missing_fraction = max_missing_fraction
        self.budget_share = budget_share
        self.last: Plan | None = None

    def last_refusal(self) -> str | None:
        """Why the last reconcile changed nothing (a listing lacking too many files), or None."""
        return self.last.refused if self.last else None

    def full_pass_interval(self, base: float) -> float:
        """Seconds until the next periodic full pass: ``base`` stretched so that the pages of
        the last complete listing spend at most ``budget_share`` of the client's request
        budget (:func:`full_pass_interval`); recorded for `syncd status`."""
        interval = full_pass_interval(base, self._last_pages(), self.budget_share,
                                      self.ctx.client.budget_per_minute())
        self.ctx.journal.set_meta(INTERVAL_META, repr(interval))
        return interval

    def start_up(self, interval: float, force: bool = False) -> float:
        """The start-up reconcile; returns the seconds until the next full pass is due.

        A full pass only when :func:`full_listing_owed` says one is owed (or ``force``). Else,
        with uploads in flight at the last stop, their copies are looked for in the newest
        pages (:meth:`resolve_intents`); else one ``limit=1`` request proves the key and the
        workspace. ``interval`` is stretched by :meth:`full_pass_interval`.

        The probe is evidence of one thing more: a workspace that lists nothing while the
        journal holds copies (a key moved to an empty workspace) gets the full pass at once.
        """
        ctx = self.ctx
        journal = ctx.journal
        now = ctx.clock()
        base, interval = interval, self.full_pass_interval(interval)
        last = read_stamp(journal.get_meta(LISTED_META))
        intents = journal.intents()
        reason = "asked for" if force else full_listing_owed(
            last, now, interval, bool(journal.get_meta("reconcile_refused"))
        )
        if reason is None and intents:
            if self.resolve_intents(intents):
                return self.full_pass_interval(base)
        elif reason is None and not ctx.client.list_page(limit=1).data and journal.counts().synced:
            reason = "the workspace lists nothing and the journal holds copies"
        if reason is not None or last is None:
            log.info("listing the workspace", reason=reason)
            self.run()
            return self.full_pass_interval(base)
        due = last + interval - now
        log.info("start-up listing skipped", last_listing=rfc3339(last),
                 next_full_pass_in_s=round(due))
        return due

    def resolve_intents(self, intents: list[Intent]) -> bool:
        """Look for the copies of ``intents`` in the newest pages (:class:`Window`) and adopt or
        delete them; True if this became a full pass instead.

        The pages read are never thrown away: a listing that turns out not to be newest first,
        or whose window runs deeper than WINDOW_MAX_PAGES, is paged on to its end and
        reconciled as a full pass, as is one that ended before the window was enough.
        """
        ctx = self.ctx
        remote = ctx.client
        started, t0 = ctx.clock(), time.monotonic()
        log.info("looking for lost uploads in the newest pages", intents=len(intents))
        window = Window.of(intents)
        count = [0]
        pages = remote.iter_pages(max_pages=self._page_cap(),
                                  on_page=lambda n: count.__setitem__(0, n))
        for page in pages:
            if window.read(page.data, slack(remote.clock_skew())):
                pages.close()
                self._apply_window(window, started, t0)
                return False
            if not window.ordered or window.pages >= WINDOW_MAX_PAGES:
                log.info("listing the whole workspace",
                         reason="the listing is not newest first" if not window.ordered
                         else f"the lost uploads may lie beyond {window.pages} pages")
                break
        listing = Listing(our_ids(ctx.journal))
        for f in window.files:
            listing.add(f)
        for page in pages:  # on to the end, if the window stopped short of it
            for f in page.data:
                listing.add(f)
        ctx.journal.set_meta(PAGES_META, str(count[0]))
        self._reconcile(remote, listing, started, t0)
        return True

    def _apply_window(self, window: Window, started: float, t0: float) -> None:
        """Adopt or delete the lost uploads a window that was enough holds. A window is not a
        complete listing: no meta of the full pass is written, nothing else is decided."""
        ctx = self.ctx
        journal = ctx.journal
        ids = {f.id for f in window.files}
        ours = {c[1] for c in journal.iter_copies() if c[1] in ids}  # read after the listing
        ours.update(t.file_id for t in journal.tombstones() if t.file_id in ids)
        ours.update(self.gate.recently_deleted())
        intents = journal.intents()
        rows = {i.path: r for i in intents if (r := journal.get(i.path)) is not None}
        found = window_matches(window, ours, intents, rows, started, ctx.queue.held())
        self._apply(Plan(adopt=found.adopt, orphans=found.orphans, spent_intents=found.spent))
        log.info(
            "lost uploads resolved from the newest pages", pages=window.pages,
            listed=len(window.files), adopted=len(found.adopt),
            orphans_deleted=len(found.orphans),
            left_open=len(intents) - len(found.spent),
            duration_ms=round((time.monotonic() - t0) * 1000, 1),
        )

    def run(self, client: FilesClient | None = None) -> Plan:
        """List everything, plan, apply; return the plan.

        A listing that is not proven complete raises (from the client) before anything is
        planned: the journal and the workspace are left exactly as they were.
        """
        ctx = self.ctx
        remote = client or ctx.client
        started = ctx.clock()
        t0 = time.monotonic()
        listing = self._list(remote, our_ids(ctx.journal))
        return self._reconcile(remote, listing, started, t0)

    def _reconcile(
        self, remote: FilesClient, listing: Listing, started: float, t0: float
    ) -> Plan:
        """Plan a complete listing (begun at ``started``) against the journal, apply it, and
        record the full pass."""
        ctx = self.ctx
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

    def _last_pages(self) -> int:
        """Pages of the last complete listing (before one: the journal's copies, 1000 a page)."""
        known = self.ctx.journal.get_meta(PAGES_META) or ""
        if known.isdigit():
            return int(known)
        return math.ceil(self.ctx.journal.counts().synced / LIST_LIMIT)

    def _page_cap(self) -> int:
        """At most 10 x the pages of the last complete listing (or the journal's estimate,
        whichever is more) + 100 pages."""
        journal = self.ctx.journal
        known = journal.get_meta(PAGES_META) or ""
        estimate = math.ceil(journal.counts().synced / LIST_LIMIT)  # no listing yet: the journal
        last = max(int(known) if known.isdigit() else 0, estimate)
        return PAGE_CAP_FACTOR * last + PAGE_CAP_MARGIN

    def _list(self, client: FilesClient, ours: Iterable[str]) -> Listing:
        """The whole listing, at most :meth:`_page_cap` pages, streamed into a compact
        :class:`Listing` expecting ``ours`` (kept without details)."""
        pages = [0]
        listing = Listing.of(client.iter_files(
            max_pages=self._page_cap(), on_page=lambda n: pages.__setitem__(0, n),
        ), ours)
        self.ctx.journal.set_meta(PAGES_META, str(pages[0]))
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
