"""A Mirror: one folder mirrored to one workspace, and the pieces that do it.

It owns the journal, the dirty queue, the delete gate, the reconciler, the root's guard and the
cross-thread flags of one folder, and offers the steps every driver takes: :meth:`Mirror.scan`,
:meth:`Mirror.run_deletions`, :meth:`Mirror.reconcile`, :meth:`Mirror.renew`. Two drivers take
them: :meth:`Mirror.sync_once` (:mod:`syncd.engine.oneshot`: `syncd sync`, tests) runs the
workers until the queue is empty and returns; :func:`syncd.service.loop.run_daemon` runs the
service loop until asked to stop, the way litestream's monitor drives a replica.

Start-up order matters: the journal is opened (and locked) first, then the start-up reconcile
proves the key works (one request, or the whole listing when one is owed), then a full scan
queues what changed while syncd was down.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass

import structlog

from syncd.config import Settings
from syncd.engine import dirtyqueue
from syncd.engine.context import SyncContext
from syncd.engine.deletes import DeleteGate, delete_owed, flush_tombstones
from syncd.engine.dirtyqueue import DirtyQueue
from syncd.engine.flags import Flags
from syncd.engine.lanes import Lane, LanePolicy
from syncd.engine.manifest import manifest_data, write_manifest
from syncd.engine.progress import PassProgress
from syncd.engine.quota import QuotaPause
from syncd.engine.reconcile import Reconciler
from syncd.engine.wiring import bind_workspace, make_client
from syncd.engine.worker import Syncer
from syncd.errors import JournalError, RootMoved, SafetyStop, SyncdError
from syncd.journal import Journal
from syncd.local.ignore import IgnoreRules
from syncd.local.openwrites import OpenWrites
from syncd.local.ownfiles import load_rules
from syncd.local.rootguard import RootGuard
from syncd.local.scan import ScanResult, local_stat, scan_tree
from syncd.local.watcher import Hints
from syncd.metrics import Metrics
from syncd.model import stamp
from syncd.remote.client import FilesClient
from syncd.remote.expiry import mark_expiring
from syncd.remote.throttle import WarnOnce

log = structlog.get_logger("syncd.daemon")
Reload = Callable[[], Settings]


@dataclass(frozen=True)
class Options:
    """Per-invocation switches that are not configuration."""

    allow_mass_delete: bool = False
    allow_mass_reupload: bool = False
    max_sync_wait: float = 120.0  # `sync`: how far ahead a retry may be before giving up
    progress: bool = True
    accept_new_root: bool = False  # take another directory at the root's path as the root
    full_reconcile: bool = False  # `sync`: list the whole workspace even when not due


class Mirror:
    """One folder mirrored to one workspace."""

    def __init__(
        self,
        settings: Settings,
        options: Options | None = None,
        *,
        client: FilesClient | None = None,
        clock: Callable[[], float] = time.time,
        metrics: Metrics | None = None,
        name: str = "",
    ) -> None:
        self.name = name  # the folder's name when one process mirrors several ("" for one)
        self.settings = settings
        self.options = options or Options()
        self.clock = clock
        self.metrics = metrics or Metrics()
        self.root = settings.root_dir.expanduser().absolute()
        self.client = client or make_client(settings, self.metrics)
        self.journal = Journal.open(
            settings.journal_path, os.fsdecode(self.root), settings.remote.base_url,
            settings.remote.name_prefix,
        )
        try:
            bind_workspace(self.client, self.journal, settings.remote.workspace_id)
        except BaseException:
            self.journal.close()
            raise
        sync = settings.sync
        self.queue = DirtyQueue(sync.settle_seconds, sync.settle_max_seconds,
                                max_size=dirtyqueue.MAX_SIZE, clock=clock,
                                policy=LanePolicy(sync.lanes, sync.backlog_order,
                                                  sync.backlog_share))
        self.gate = DeleteGate(sync.max_delete_fraction, self.options.allow_mass_delete)
        self.warn = WarnOnce()
        self.root_guard = RootGuard(self.root, self.journal, self.options.accept_new_root)
        self.ctx = SyncContext(
            root=self.root, rules=self._load_rules(settings), follow_symlinks=sync.follow_symlinks,
            name_prefix=settings.remote.name_prefix, client=self.client, journal=self.journal,
            queue=self.queue, gate=self.gate, clock=clock, warn=self.warn, metrics=self.metrics,
            quota=QuotaPause(clock), writes=OpenWrites(sync.settle_max_seconds, clock),
            root_identity=self.root_guard.identity,
        )
        self.syncer = Syncer(self.ctx)
        missing = 1.0 if self.options.allow_mass_reupload else sync.max_missing_fraction
        self.reconciler = Reconciler(self.ctx, self.gate, missing, listing_share(settings))
        self.flags = Flags()  # what crosses threads: pauses, the fatal error (engine/flags.py)
        self.unreadable: dict[str, str] = {}  # folders the last scan could not read -> why
        self.overflow_problem: str | None = None  # `sync`: paths left unseen after an overflow
        self._skip_reasons: dict[str, str] = {}
        self.drained = True
        self._rescan_reason: str | None = None
        self.rescan_owed = 0  # dropped marks the running rescan is finding again
        self._reload: Reload | None = None
        self._published: dict[str, str] = {}
        # Called at every directory a scan reads: the service loop pings systemd's watchdog
        # from it, so a scan longer than WatchdogSec (a few million files) is not taken for a
        # hung daemon and killed, only to scan again from the start.
        self.keepalive: Callable[[], None] = lambda: None

    @property
    def fatal(self) -> BaseException | None:
        """The first error the daemon cannot go on after, or None."""
        return self.flags.fatal

    @property
    def suspended(self) -> str | None:
        """Why the journal cannot be written, while it cannot."""
        return self.flags.suspended

    @property
    def root_refused(self) -> str | None:
        """Why all work is paused for the root, while it is."""
        return self.flags.root_refused

    @property
    def threads_problem(self) -> str | None:
        """A long-lived thread dead or stalled (the loop's verdict), or None."""
        return self.flags.threads_problem

    def close(self) -> None:
        """Release the connection pool, the metrics server and (once drained) the journal."""
        self.client.close()
        self.metrics.close()
        if self.drained:  # a worker still writing must not meet a closed connection
            self.journal.close()

    def __enter__(self) -> Mirror:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- building blocks --------------------------------------------------------------------

    def _load_rules(self, settings: Settings) -> IgnoreRules:
        return load_rules(settings, self.root)  # the same rules as `rebuild`

    def request_reload(self, reload: Reload) -> None:
        """SIGHUP: reload config (ignore patterns, log level) at the loop's next turn."""
        self._reload = reload

    def apply_pending_reload(self) -> None:
        """Apply a requested reload; a bad config keeps the old one and says why."""
        reload, self._reload = self._reload, None
        if reload is None:
            return
        try:
            settings = reload()
            self.ctx.rules = self._load_rules(settings)
        except SyncdError as exc:
            log.error("reload failed; keeping the previous configuration", error=str(exc))
            return
        self.settings = settings
        if not self.options.allow_mass_delete:
            self.gate.max_fraction = settings.sync.max_delete_fraction
        self.reconciler.budget_share = listing_share(settings)
        log.info("reloaded", ignore=str(self.ctx.rules))
        self.request_rescan("configuration reloaded")

    def request_rescan(self, reason: str) -> None:
        """Ask the loop for a full scan soon."""
        self._rescan_reason = reason

    def wants_rescan(self) -> bool:
        """True when something suspicious asked for a scan, or marks were dropped and the queue
        has drained enough to take a scan's worth again (not before: that is a rescan storm)."""
        return self._rescan_reason is not None or self.queue.rescan_due()

    def rescan(self) -> None:
        """A full scan from the loop; a refused scan is logged, not fatal."""
        reason = self._rescan_reason or ("queue overflow" if self.queue.overflowed else "timer")
        self._rescan_reason = None
        self.rescan_owed = self.queue.clear_overflow()
        log.info("rescanning", reason=reason)
        try:
            self.scan()
        except SafetyStop as exc:
            log.error("scan refused", reason=str(exc))  # the root's return asks for a rescan
        finally:
            self.rescan_owed = 0

    def unqueued(self) -> int:
        """Marks an overflowing queue dropped that no scan has queued again yet: work pending
        that no count of the queue shows (a dropped mark means not converged)."""
        return self.queue.dropped + self.rescan_owed

    def queued(self) -> int:
        """Paths queued or held by a worker, deletions waiting for the gate, and marks an
        overflowing queue dropped (work too: until a rescan finds them again, not converged).
        :meth:`JournalCounts.pending <syncd.model.JournalCounts.pending>` adds owed deletions."""
        return sum(self.queue.depth()) + self.gate.pending() + self.unqueued()

    def scan(self, mark_from: str | None = None) -> ScanResult:
        """Walk the tree against the journal; queue what changed and what vanished.

        ``mark_from``: queue only changed paths from this one on (in path-byte order): `sync`
        resumes where an overflowing queue dropped marks. Vanished paths are queued all.
        """
        started = time.monotonic()
        problem = self.root_problem()  # records the root's identity on the first scan
        if problem:
            raise SafetyStop(problem)
        self._skip_reasons = {}
        mark = self._marker_from(mark_from or "")
        result = scan_tree(self.root, self.ctx.rules, self.ctx.follow_symlinks, self.skipped,
                           self.journal, mark, self.keepalive)
        for path in [*result.vanished, *self.journal.gone_paths()]:
            self.queue.mark(path, settle=False)  # gone: a copy to replace, even after a restart
        self.unreadable = {
            p or ".": self._skip_reasons.get(p or ".", "not readable") for p in result.unreadable
        }
        self._publish("unreadable", json.dumps(self.unreadable) if self.unreadable else "")
        self.journal.set_meta("last_scan", stamp(self.clock()))
        log.info(
            "scanned", files=result.files, bytes=result.bytes, queued=result.marked,
            vanished=len(result.vanished), unreadable=len(result.unreadable),
            duration_ms=round((time.monotonic() - started) * 1000, 1),
        )
        return result

    def _marker_from(self, first: str) -> Callable[[str, int], None]:
        """The scan's marks (backlog, with the mtime it read), from ``first`` on."""
        start = os.fsencode(first)

        def mark(path: str, mtime_ns: int) -> None:
            if not start or os.fsencode(path) >= start:
                self.queue.mark(path, mtime_ns=mtime_ns)

        return mark

    def skipped(self, path: str, reason: str) -> None:
        """A path the scan passed over, and why (`syncd errors` shows the folders)."""
        self._skip_reasons[path] = reason
        self.warn.warn(path, "skipped", reason=reason)

    def root_problem(self) -> str | None:
        """Why no work may be done now (root gone, replaced or unmounted), or None."""
        return self.root_guard.problem()

    def check_root_identity(self) -> str | None:
        """Pause all work while the root is not the directory first synced (or is gone);
        resume, and rescan, once it is back. Returns the problem, or None."""
        problem = self.root_problem()
        was = self.flags.refuse_root(problem)
        if problem and problem != was:
            log.error("root refused; all work paused", reason=problem)
        elif was and not problem:
            log.info("root is back; resuming")
            self.request_rescan("the root is back")
        return problem

    def run_deletions(self, quiet: float = 0.0) -> int:
        """Delete the remote copies of removed files the gate approves; pay owed tombstones.

        ``quiet``: only approve once no deletion was requested for that long, so a burst of
        events (``rm -r``) is judged as one batch by the mass-delete guard.
        """
        if self.gate.pending() and self.gate.quiet_for() >= quiet:
            for path in self.gate.approve(self.journal.counts().synced, self.root_problem()):
                self._delete_path(path)
        return flush_tombstones(self.client, self.journal, self.clock, self.gate)

    def _delete_path(self, path: str) -> None:
        if not self.queue.claim(path):
            self.gate.request(path)  # a worker has it; ask again next time
            return
        try:
            if not self.ctx.rules.ignored(path) and self._still_here(path):
                return  # it came back (or the root was swapped: decide once it is back)
            tomb = self.journal.remove(path)
            if tomb is not None and delete_owed(
                self.client, self.journal, tomb.file_id, self.clock, self.gate
            ):
                self.metrics.deleted()
                log.info("deleted", path=path, file_id=tomb.file_id)
        finally:
            self.queue.done(path)

    def on_fatal(self, exc: BaseException) -> None:
        """An error the daemon cannot continue after."""
        if self.flags.stop_on(exc):
            log.error("fatal", error=str(exc))
        else:
            log.error("fatal, after an earlier fatal error", error=str(exc))

    def on_journal_error(self, exc: JournalError) -> None:
        """The journal cannot be written (disk full, read-only): stop taking work, say so."""
        if self.flags.suspend(str(exc)) is None:
            log.error("journal not writable; pausing until it is", error=str(exc))

    def _still_here(self, path: str) -> bool:
        try:
            return local_stat(self.root, path, self.ctx.follow_symlinks,
                              self.root_guard.identity()) is not None
        except RootMoved:
            self.gate.request(path)
            return True

    def may_take_work(self) -> bool:
        """:meth:`working` without the root's stat, for the workers before each path: they
        check the root on the fd they read under instead (:mod:`syncd.local.fs`), and report a
        swapped root through :meth:`root_moved`."""
        flags = self.flags
        return flags.fatal is None and flags.suspended is None and not flags.root_refused

    def root_moved(self) -> None:
        """A worker found another directory at the root's path: pause now, not at the loop's
        next turn (the check logs and publishes the reason)."""
        self.check_root_identity()

    def working(self) -> bool:
        """False while paused (the journal cannot be written, or the root is not the directory
        first synced: its path is stat'ed here, for `sync`'s and the loop's waits) and once a
        fatal error stopped the daemon. Workers ask :meth:`may_take_work` instead."""
        return self.may_take_work() and not self.root_guard.moved()

    def note_threads(self, problem: str | None) -> None:
        """The loop's verdict on the long-lived threads: None while all live and turn."""
        was = self.flags.note_threads(problem)
        if problem and problem != was:
            log.error("thread dead or stalled", reason=problem)

    def probe_journal(self) -> None:
        """While suspended, try a small write; on success resume and rescan what was missed."""
        reason = self.flags.suspended
        if reason is None:
            return
        try:
            self.journal.set_meta("writable_probe", stamp(self.clock()))
        except JournalError:
            return
        if self.flags.resume(reason):
            log.info("journal writable again; resuming", was=reason)
            self.request_rescan("journal writable again")

    def hints(self) -> Hints:
        """Where the watcher sends what it saw."""

        def mark(path: str) -> None:
            self.queue.mark(path, lane=Lane.LIVE)  # the watcher starts after start-up

        def mark_under(rel_dir: str) -> None:
            for row in self.journal.rows_under(rel_dir):
                mark(row.path)

        return Hints(mark, mark_under, self.request_rescan, self.ctx.writes)

    def publish_depth(self) -> None:
        """Let `syncd status` (another process) see how much is queued and what is paused."""
        pending, held = self.queue.depth()
        self.metrics.queue(pending, held)
        queued = str(self.queued())
        if queued != self._published.get("queued"):
            log.debug("queue", pending=pending, held=held, deletions=self.gate.pending(),
                      sample=self.queue.sample(3, self.clock()))
        self._publish("queued", queued)
        lanes = self.queue.lane_depths()
        self._publish("queue_lanes", json.dumps({str(k): v for k, v in lanes.items()}))
        self.publish_pauses()

    def publish_pauses(self) -> None:
        """Write every pause the daemon knows to the journal for `syncd status` (the reconcile
        refusal is written by the reconciler; a journal that cannot be written is inferred by
        status itself)."""
        self._publish("root_refused", self.root_refused or "")
        self._publish("uploads_paused", self.ctx.quota.reason or "")
        self._publish("deletions_refused", self.gate.refused or "")
        self._publish("threads_dead", self.threads_problem or "")
        self._publish("ignore_warnings", "\n".join(self.ctx.rules.warnings))

    def _publish(self, key: str, value: str) -> None:
        if self._published.get(key) != value:
            self.journal.set_meta(key, value)
            self._published[key] = value

    def renew(self) -> int:
        """Queue the copies whose lifetime is 80% over (or over): they are uploaded again."""
        return mark_expiring(
            self.journal, lambda path: self.queue.mark(path, settle=False), self.clock()
        )

    def pauses(self) -> list[str]:
        """Every pause with its reason, one line each, in the order `syncd status` shows them."""
        found = [
            f"journal not writable ({self.suspended})" if self.suspended else None,
            self.root_refused,
            self.ctx.quota.reason,
            self.gate.refused,
            self.reconciler.last_refusal(),
            self.threads_problem,
        ]
        return [p for p in found if p]

    def problems(self) -> list[str]:
        """What keeps the mirror from converging now, beyond paths in error: every pause, the
        folders that could not be read, paths an overflowing queue left unseen."""
        found = self.pauses()
        if self.unreadable:
            names = ", ".join(sorted(self.unreadable)[:3])
            more = "" if len(self.unreadable) <= 3 else f" and {len(self.unreadable) - 3} more"
            found.append(f"{len(self.unreadable)} folder(s) could not be read: {names}{more}"
                         " (see `syncd errors`)")
        if self.overflow_problem:
            found.append(self.overflow_problem)
        return found

    def progress(self, scanned: ScanResult) -> PassProgress:
        """A progress reporter for the pass that ``scanned`` started."""
        return PassProgress(
            self.metrics, self.client.pacer, lambda: sum(self.queue.depth()),
            scanned.marked, scanned.marked_bytes,
        )

    def write_manifest(self) -> None:
        """Write the manifest now, if one is configured."""
        if self.settings.state.manifest is not None:
            write_manifest(self.settings.state.manifest,
                           manifest_data(self.journal, str(self.root)))

    def reconcile(self) -> None:
        """A full reconcile pass now: the listing against the journal (repairs what events
        missed, resolves intents, deletes our orphans)."""
        self.reconciler.run()


def listing_share(settings: Settings) -> float:
    """This folder's part of ``[sync] reconcile_budget_share``: every folder of a process, and
    every host sharing the budget, lists the whole workspace, so together they spend the share
    (``[remote] expected_hosts`` hosts, the folders of this config)."""
    folders = max(1, settings.folder_count)
    return settings.sync.reconcile_budget_share / (folders * settings.remote.expected_hosts)
