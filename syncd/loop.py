"""The long-running service loop around a :class:`~syncd.daemon.Daemon`.

It owns the lifecycle systemd sees: READY=1 once the journal is open, the key has been proven
by the start-up listing and the start-up scan is queued; WATCHDOG=1 from this very loop (a
wedged loop stops pinging and gets restarted); STATUS= whenever the one-line summary changes;
STOPPING=1 and a bounded drain on SIGTERM. It also rescans on its timer, reloads on SIGHUP and
keeps the manifest current.

Work that waits on the network at the pacer's rate (paying deletions, a reconcile of many pages)
runs in a second thread, the janitor, so the loop keeps its beat; the loop stops pinging the
watchdog if the janitor has not finished a turn for ``JANITOR_STALL`` seconds.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import structlog
from watchdog.observers.api import BaseObserver

from syncd.errors import (
    AuthenticationFailed,
    JournalError,
    JournalMismatchError,
    SafetyStop,
    SyncdError,
)
from syncd.notify import Notifier
from syncd.progress import PassProgress
from syncd.scan import ScanResult, check_root
from syncd.watcher import start_watcher, stop_watcher
from syncd.worker import WorkerPool

if TYPE_CHECKING:
    from syncd.daemon import Daemon

log = structlog.get_logger("syncd.loop")
TICK = 0.5
WATCHER_RETRY = 60.0
JANITOR_STALL = 900.0  # longer than any single paced request with all its retries


class Janitor:
    """A thread paying deletions and reconciling on a timer; its heartbeat shows it is alive."""

    def __init__(self, daemon: Daemon, stop: threading.Event) -> None:
        self._daemon = daemon
        self._stop = stop
        self.heartbeat = time.monotonic()
        self._thread = threading.Thread(target=self._run, name="syncd-janitor", daemon=True)

    def start(self) -> Janitor:
        """Start the thread."""
        self._thread.start()
        return self

    def join(self, timeout: float) -> bool:
        """Wait for the thread to end (after ``stop`` is set); True if it did."""
        self._thread.join(timeout)
        return not self._thread.is_alive()

    def healthy(self) -> bool:
        """True while the thread runs and finished a turn recently."""
        fresh = time.monotonic() - self.heartbeat < JANITOR_STALL
        return self._thread.is_alive() and fresh

    def _run(self) -> None:
        daemon = self._daemon
        sync = daemon.settings.sync
        next_reconcile = time.monotonic() + sync.reconcile_interval_seconds
        while not self._stop.wait(TICK) and daemon.fatal is None:
            self.heartbeat = time.monotonic()
            if not daemon.working():
                continue
            try:
                daemon.run_deletions(quiet=max(1.0, sync.settle_seconds))
                daemon.renew()
                if time.monotonic() >= next_reconcile:
                    daemon.reconciler.run()
                    next_reconcile = time.monotonic() + sync.reconcile_interval_seconds
            except (AuthenticationFailed, JournalMismatchError) as exc:
                daemon.on_fatal(exc)
            except JournalError as exc:
                daemon.on_journal_error(exc)
            except SyncdError as exc:  # the service is unreachable, say: try again later
                log.warning("janitor turn failed", error=str(exc))
            self.heartbeat = time.monotonic()


@dataclass
class Timers:
    """When the next periodic jobs are due (monotonic seconds)."""

    scan: float
    manifest_written: int = -1
    first_pass: PassProgress | None = field(default=None)
    observer: BaseObserver | None = None
    watcher_retry: float = 0.0


def status_line(daemon: Daemon) -> str:
    """One line for `systemctl status`: synced, pending, errors, last reconcile."""
    counts = daemon.journal.counts()
    pending = sum(daemon.queue.depth()) + daemon.gate.pending() + counts.tombstones
    parts = [f"{counts.synced} synced", f"{pending} pending", f"{counts.errors} errors"]
    if counts.reuploads:
        parts.append(f"{counts.reuploads} renewing or re-uploading")
    if daemon.ctx.quota.reason:
        parts.append("UPLOADS PAUSED: storage quota full")
    if daemon.gate.refused:
        parts.append("DELETIONS REFUSED (see log)")
    if daemon.reconciler.last_refusal():
        parts.append("RECONCILE REFUSED: listing lacks our files (see log)")
    last = daemon.journal.get_meta("last_reconcile")
    return ", ".join(parts) + (f"; last reconcile {last}" if last else "")


def run_loop(
    daemon: Daemon,
    stop: threading.Event,
    notifier: Notifier,
    on_ready: Callable[[], None] | None = None,
    progress: bool = True,
) -> int:
    """Mirror until ``stop`` is set; 0 on a clean stop."""
    sync = daemon.settings.sync
    check_root(daemon.root)  # before any request: a missing root stops here
    notifier.status("starting: listing the workspace")
    daemon.reconciler.run()
    scanned = _first_scan(daemon)
    pool = WorkerPool(
        daemon.syncer, daemon.queue, sync.workers, daemon.on_fatal, daemon.on_journal_error,
        daemon.working,
    )
    pool.start()
    now = time.monotonic()
    timers = Timers(scan=now + sync.rescan_interval_seconds, watcher_retry=now + WATCHER_RETRY)
    timers.observer = start_watcher(daemon.root, daemon.hints())
    janitor = Janitor(daemon, stop).start()
    if progress:
        timers.first_pass = daemon.progress(scanned).start()
    notifier.ready(status_line(daemon))
    if on_ready:
        on_ready()
    try:
        while not stop.wait(TICK) and daemon.fatal is None:
            if janitor.healthy():
                notifier.ping()
            _tick(daemon, notifier, timers)
            _retry_watcher(daemon, timers)
    finally:
        stop.set()
        notifier.stopping()
        if timers.first_pass:
            timers.first_pass.stop()
        stop_watcher(timers.observer)
        deadline = time.monotonic() + sync.shutdown_timeout_seconds
        drained = pool.stop(deadline)
        drained = janitor.join(max(0.0, deadline - time.monotonic())) and drained
        daemon.drained = drained
        if drained:
            _write_manifest(daemon, timers, force=True)
        log.info("stopped", drained=drained)
    return 0


def _first_scan(daemon: Daemon) -> ScanResult:
    """The start-up scan; a root gone since the check above is refused like a rescan, not
    fatal (it may be back in a moment): the loop scans again soon."""
    try:
        return daemon.scan()
    except SafetyStop as exc:
        log.error("scan refused", reason=str(exc))
        daemon.request_rescan("the start-up scan was refused")
        return ScanResult()


def _retry_watcher(daemon: Daemon, timers: Timers) -> None:
    """Without a watcher (inotify limit, root missing at start) try again every minute, and
    rescan once it runs: events may have been missed meanwhile."""
    now = time.monotonic()
    if timers.observer is not None or now < timers.watcher_retry:
        return
    timers.watcher_retry = now + WATCHER_RETRY
    timers.observer = start_watcher(daemon.root, daemon.hints())
    if timers.observer is not None:
        daemon.request_rescan("watcher started")


def _tick(daemon: Daemon, notifier: Notifier, timers: Timers) -> None:
    """One turn of the loop: every job checks whether it is due."""
    daemon.probe_journal()
    if not daemon.working():
        notifier.status(f"PAUSED: {daemon.suspended}")
        return
    try:
        _due_jobs(daemon, notifier, timers)
    except JournalError as exc:
        daemon.on_journal_error(exc)


def _due_jobs(daemon: Daemon, notifier: Notifier, timers: Timers) -> None:
    sync = daemon.settings.sync
    daemon.apply_pending_reload()
    daemon.publish_depth()
    if daemon.wants_rescan() or time.monotonic() >= timers.scan:
        daemon.rescan()
        timers.scan = time.monotonic() + sync.rescan_interval_seconds
    settled = daemon.queue.idle()
    if settled and timers.first_pass is not None:
        timers.first_pass.stop()
        timers.first_pass = None
    if settled:
        _write_manifest(daemon, timers)
    notifier.status(status_line(daemon))


def _write_manifest(daemon: Daemon, timers: Timers, force: bool = False) -> None:
    """Rewrite the manifest after changes, once the queue has settled."""
    version = daemon.metrics.changes
    if version == timers.manifest_written and not force:
        return
    daemon.write_manifest()
    timers.manifest_written = version
