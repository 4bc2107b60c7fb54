"""The daemon: wires the watcher, scans, queue, workers, deletions and reconcile together.

Start-up order matters: the journal is opened (and locked) first, then a reconcile pages the
listing (which also proves the key works), then a full scan queues what changed while syncd was
down. ``sync_once`` runs the same pieces until the queue is empty and exits; ``run`` keeps going
with the watcher, a rescan timer and a reconcile timer until asked to stop.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

import structlog

from syncd.client import FilesClient
from syncd.config import Settings, resolve_api_key
from syncd.deletes import DeleteGate, delete_owed, flush_tombstones
from syncd.dirtyqueue import DirtyQueue
from syncd.errors import JournalError, SafetyStop, SyncdError
from syncd.ignore import IgnoreRules
from syncd.journal import Journal
from syncd.pacer import Pacer
from syncd.reconcile import Reconciler, plan, snapshot
from syncd.scan import ScanResult, check_root, local_stat, merge, walk
from syncd.throttle import WarnOnce
from syncd.watcher import Hints, start_watcher, stop_watcher
from syncd.worker import SyncContext, Syncer, WorkerPool

log = structlog.get_logger("syncd.daemon")
TICK = 0.5


@dataclass(frozen=True)
class Options:
    """Per-invocation switches that are not configuration."""

    allow_mass_delete: bool = False
    dry_run: bool = False
    max_sync_wait: float = 120.0  # `sync`: how far ahead a retry may be before giving up


class Daemon:
    """One folder mirrored to one workspace."""

    def __init__(
        self,
        settings: Settings,
        options: Options = Options(),
        *,
        client: FilesClient | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.settings = settings
        self.options = options
        self.clock = clock
        self.root = settings.root.expanduser().absolute()
        self.client = client or _make_client(settings)
        self.journal = Journal.open(
            settings.journal_path, os.fsdecode(self.root), settings.remote.base_url,
            settings.remote.name_prefix,
        )
        self.queue = DirtyQueue(
            settings.sync.settle_seconds, settings.sync.settle_max_seconds, clock=clock
        )
        self.gate = DeleteGate(settings.sync.max_delete_fraction, options.allow_mass_delete)
        self.warn = WarnOnce()
        self.ctx = SyncContext(
            root=self.root, rules=self._load_rules(), follow_symlinks=settings.sync.follow_symlinks,
            name_prefix=settings.remote.name_prefix, client=self.client, journal=self.journal,
            queue=self.queue, gate=self.gate, clock=clock, warn=self.warn,
        )
        self.syncer = Syncer(self.ctx)
        self.reconciler = Reconciler(self.ctx, self.gate)
        self.fatal: BaseException | None = None
        self._rescan_reason: str | None = None
        self.last_scan: ScanResult | None = None
        self._published_depth = ""

    def close(self) -> None:
        """Release the journal lock and the connection pool."""
        self.client.close()
        self.journal.close()

    def __enter__(self) -> Daemon:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- building blocks --------------------------------------------------------------------

    def _load_rules(self) -> IgnoreRules:
        journal = self.settings.journal_path
        siblings = [journal] + [journal.with_name(journal.name + s) for s in ("-wal", "-shm",
                                                                             ".lock", "-journal")]
        try:
            return IgnoreRules.load(self.root, self.settings.sync.ignore, siblings)
        except ValueError as exc:
            raise SyncdError(str(exc)) from None

    def reload_rules(self) -> None:
        """Re-read ignore patterns (SIGHUP) and rescan."""
        self.ctx.rules = self._load_rules()
        self.request_rescan("ignore rules reloaded")

    def request_rescan(self, reason: str) -> None:
        """Ask the main loop for a full scan soon."""
        self._rescan_reason = reason

    def scan(self) -> ScanResult:
        """Walk the tree against the journal, queue what changed, hand vanished files to the
        delete gate."""
        started = time.monotonic()
        self.root_problem()  # records the root's identity on the first scan
        check_root(self.root)
        result = merge(
            walk(self.root, self.ctx.rules, self.ctx.follow_symlinks, self._skipped),
            self.journal.iter_rows(),
            self.queue.mark,
        )
        for path in result.vanished:
            self.queue.mark(path, settle=False)
        self.journal.set_meta("last_scan", str(self.clock()))
        self.last_scan = result
        log.info(
            "scanned", files=result.files, bytes=result.bytes, queued=result.marked,
            vanished=len(result.vanished), unreadable=len(result.unreadable),
            duration_ms=round((time.monotonic() - started) * 1000, 1),
        )
        return result

    def _skipped(self, path: str, reason: str) -> None:
        self.warn.warn(path, "skipped", reason=reason)

    def root_problem(self) -> str | None:
        """Why deletions must not run now (root gone, replaced or unmounted), or None."""
        try:
            info = check_root(self.root)
        except SafetyStop as exc:
            return str(exc)
        identity = f"{info.st_dev}:{info.st_ino}"
        known = self.journal.get_meta("root_identity")
        if known is None:
            self.journal.set_meta("root_identity", identity)
        elif known != identity:
            return (
                f"root {self.root} is not the directory first synced (replaced or unmounted?); "
                "nothing deleted. If this is deliberate, move the journal aside and run "
                "`syncd rebuild`"
            )
        return None

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
            if not self.ctx.rules.ignored(path) and local_stat(
                self.root, path, self.ctx.follow_symlinks
            ) is not None:
                return  # it came back
            tomb = self.journal.remove(path)
            if tomb is not None and delete_owed(
                self.client, self.journal, tomb.file_id, self.clock, self.gate
            ):
                log.info("deleted", path=path, file_id=tomb.file_id)
        finally:
            self.queue.done(path)

    def _on_fatal(self, exc: BaseException) -> None:
        log.error("fatal", error=str(exc))
        self.fatal = exc

    # --- one-shot ---------------------------------------------------------------------------

    def sync_once(self) -> int:
        """One full pass: reconcile, scan, upload, delete; 0 converged, 1 paths in error."""
        self.reconciler.run()
        self.scan()
        pool = WorkerPool(self.syncer, self.queue, self.settings.sync.workers, self._on_fatal)
        pool.start()
        try:
            self._drain(pool)
            if self.journal.intents():
                self.reconciler.run()  # lost responses: adopt or delete their copies
                self._drain(pool)
        finally:
            pool.stop(time.monotonic() + self.settings.sync.shutdown_timeout_seconds)
        if self.fatal is not None:
            raise self.fatal
        counts = self.journal.counts()
        converged = counts.errors == 0 and counts.retrying == 0 and not self.gate.refused
        return 0 if converged and counts.tombstones == 0 else 1

    def _drain(self, pool: WorkerPool) -> None:
        """Let the workers empty the queue; deletions and tombstones go last."""
        settle = self.settings.sync.settle_seconds
        while self.fatal is None:
            self._wait_idle(settle)
            owed = self.run_deletions()
            retries_due = not self.queue.idle(ignore_future=False) and self._retry_soon()
            if not retries_due and (owed == 0 or not self._tombstones_soon()):
                return
            time.sleep(TICK)

    def _wait_idle(self, settle: float) -> None:
        while self.fatal is None and not self.queue.idle():
            time.sleep(min(TICK, max(0.02, settle / 4)))

    def _retry_soon(self) -> bool:
        horizon = self.clock() + self.options.max_sync_wait
        return any(
            row.failure is not None
            and row.failure.kind == "transient"
            and row.failure.next_attempt <= horizon
            for row in self.journal.errors()
        )

    def _tombstones_soon(self) -> bool:
        return bool(self.journal.tombstones(due_before=self.clock() + self.options.max_sync_wait))

    # --- daemon -------------------------------------------------------------------------------

    def run(self, stop: threading.Event, on_ready: Callable[[], None] | None = None,
            on_tick: Callable[[], None] | None = None) -> int:
        """Mirror until ``stop`` is set; return the exit code."""
        self.reconciler.run()
        self.scan()
        observer = start_watcher(self.root, self._hints())
        pool = WorkerPool(self.syncer, self.queue, self.settings.sync.workers, self._on_fatal)
        pool.start()
        if on_ready:
            on_ready()
        sync = self.settings.sync
        next_scan = time.monotonic() + sync.rescan_interval_seconds
        next_reconcile = time.monotonic() + sync.reconcile_interval_seconds
        try:
            while not stop.wait(TICK) and self.fatal is None:
                if on_tick:
                    on_tick()
                self._publish_depth()
                next_scan = self._maybe_scan(next_scan, sync.rescan_interval_seconds)
                self.run_deletions(quiet=max(1.0, sync.settle_seconds))
                if time.monotonic() >= next_reconcile:
                    self.reconciler.run()
                    next_reconcile = time.monotonic() + sync.reconcile_interval_seconds
        finally:
            stop_watcher(observer)
            drained = pool.stop(time.monotonic() + sync.shutdown_timeout_seconds)
            log.info("stopped", drained=drained)
        if isinstance(self.fatal, JournalError):
            raise self.fatal
        return 0

    def _publish_depth(self) -> None:
        """Let `syncd status` (another process) see how much is queued."""
        depth = str(sum(self.queue.depth()) + self.gate.pending())
        if depth != self._published_depth:
            self.journal.set_meta("queued", depth)
            self._published_depth = depth

    def dry_run(self, out: TextIO) -> int:
        """Print what a sync would do, without changing anything."""
        listing = list(self.client.iter_files())
        result = plan(listing, snapshot(self.journal), self.clock())
        marked: list[str] = []
        scanned = merge(
            walk(self.root, self.ctx.rules, self.ctx.follow_symlinks, self._skipped),
            self.journal.iter_rows(),
            marked.append,
        )
        for path in marked:
            print(f"upload  {path}", file=out)
        for path in scanned.vanished:
            print(f"delete  {path}", file=out)
        print(
            f"{len(marked)} to upload or check, {len(scanned.vanished)} to delete, "
            f"{len(result.missing)} missing remotely, {len(result.orphans)} orphans, "
            f"{result.foreign} foreign files left alone",
            file=out,
        )
        return 0

    def _maybe_scan(self, next_scan: float, interval: float) -> float:
        reason = self._rescan_reason
        if self.queue.overflowed:
            reason, self.queue.overflowed = "queue overflow", False
        if reason is None and time.monotonic() < next_scan:
            return next_scan
        self._rescan_reason = None
        log.info("rescanning", reason=reason or "timer")
        try:
            self.scan()
        except SafetyStop as exc:
            log.error("scan refused", reason=str(exc))
        return time.monotonic() + interval

    def _hints(self) -> Hints:
        def mark_under(rel_dir: str) -> None:
            for row in self.journal.rows_under(rel_dir):
                self.queue.mark(row.path)

        return Hints(self.queue.mark, mark_under, self.request_rescan)


def _make_client(settings: Settings) -> FilesClient:
    key, _source = resolve_api_key(settings)
    remote = settings.remote
    return FilesClient(
        key, remote.base_url, pacer=Pacer(remote.requests_per_minute, remote.burst),
        max_retries=remote.max_retries, timeout=remote.timeout_seconds,
    )


__all__ = ["Daemon", "Options", "Path"]
