"""The long-running service loop around a :class:`~syncd.engine.mirror.Mirror`.

It owns the lifecycle systemd sees: READY=1 once the journal is open, the key has been proven
by the start-up reconcile (one request, or the whole listing when one is owed) and the
start-up scan is queued; WATCHDOG=1 from this very loop (a
wedged loop stops pinging and gets restarted); STATUS= whenever the one-line summary changes;
STOPPING=1 and a bounded drain on SIGTERM. It also rescans on its timer, reloads on SIGHUP and
keeps the manifest current.

Work that waits on the network at the pacer's rate (paying deletions, a reconcile of many pages)
runs in a second thread, the janitor, so the loop keeps its beat.

Supervision: every long-lived thread ends each turn with a catch-all that logs and carries on
(or stops the daemon for errors it cannot survive). Should one die anyway, or the janitor not
finish a turn for ``JANITOR_STALL`` seconds, the loop stops pinging the watchdog (systemd restarts
the service), names the thread in STATUS= and `syncd status`, and exits 1 when stopped. A dead
watcher thread is restarted at once, then a rescan finds what it missed.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import structlog
from watchdog.observers.api import BaseObserver

from syncd.engine.mirror import Mirror
from syncd.engine.progress import PassProgress
from syncd.engine.worker import WorkerPool
from syncd.errors import (
    AuthenticationFailed,
    JournalError,
    JournalMismatchError,
    SafetyStop,
    SyncdError,
)
from syncd.local.scan import ScanResult, check_root
from syncd.local.watcher import start_watcher, stop_watcher, watcher_alive
from syncd.model import read_stamp, rfc3339
from syncd.service.notify import Notifier

log = structlog.get_logger("syncd.loop")
TICK = 0.5
WATCHER_RETRY = 60.0
JANITOR_STALL = 900.0  # longer than any single paced request with all its retries
RECONCILE_RETRY = 60.0  # a failed reconcile is tried again this soon (or at its interval)
FAILURE_LOG_INTERVAL = 60.0  # the same failure, turn after turn, is logged this often


class FailureLog:
    """Logs an unexpected failure with its traceback (never its frames' locals); the same one,
    turn after turn, at most every ``FAILURE_LOG_INTERVAL`` seconds."""

    def __init__(self, event: str) -> None:
        self._event = event
        self._last = ("", float("-inf"))  # (repr, when logged)

    def failed(self, exc: Exception) -> None:
        """Call from the ``except`` block that caught ``exc``."""
        key, now = repr(exc), time.monotonic()
        last, when = self._last
        if key == last and now - when < FAILURE_LOG_INTERVAL:
            return
        self._last = (key, now)
        log.exception(self._event, error=key)


class Janitor:
    """A thread paying deletions and reconciling on a timer; its heartbeat shows it is alive."""

    def __init__(self, daemon: Mirror, stop: threading.Event, first_reconcile: float) -> None:
        self._daemon = daemon
        self._stop = stop
        self._first_reconcile = first_reconcile  # seconds until the first full pass is due
        self.heartbeat = time.monotonic()
        self._thread = threading.Thread(target=self._run, name="syncd-janitor", daemon=True)
        self._failures = FailureLog("janitor turn failed")

    def start(self) -> Janitor:
        """Start the thread."""
        self._thread.start()
        return self

    def join(self, timeout: float) -> bool:
        """Wait for the thread to end (after ``stop`` is set); True if it did (or never ran)."""
        if self._thread.ident is None:
            return True
        self._thread.join(timeout)
        return not self._thread.is_alive()

    def alive(self) -> bool:
        """True while the thread runs (or has not been started yet)."""
        return self._thread.ident is None or self._thread.is_alive()

    def healthy(self) -> bool:
        """True while the thread runs and finished a turn recently."""
        fresh = time.monotonic() - self.heartbeat < JANITOR_STALL
        return self._thread.is_alive() and fresh

    def _run(self) -> None:
        daemon = self._daemon
        next_reconcile = time.monotonic() + self._first_reconcile
        while not self._stop.wait(TICK) and daemon.fatal is None:
            self.heartbeat = time.monotonic()
            if daemon.working():
                next_reconcile = self._turn(next_reconcile)
            self.heartbeat = time.monotonic()

    def _turn(self, next_reconcile: float) -> float:
        """Pay deletions, renew, reconcile when due; return when the next reconcile is due."""
        daemon = self._daemon
        sync = daemon.settings.sync
        try:
            daemon.run_deletions(quiet=max(1.0, sync.settle_seconds))
            daemon.renew()
            if time.monotonic() >= next_reconcile:
                # Should it fail, try again soon, not at every turn.
                interval = sync.reconcile_interval_seconds
                next_reconcile = time.monotonic() + min(interval, RECONCILE_RETRY)
                daemon.reconciler.run()
                # Stretched so that listing spends at most [sync] reconcile_budget_share.
                next_reconcile = time.monotonic() + daemon.reconciler.full_pass_interval(interval)
        except (AuthenticationFailed, JournalMismatchError) as exc:
            daemon.on_fatal(exc)
        except JournalError as exc:
            daemon.on_journal_error(exc)
        except SyncdError as exc:  # the service is unreachable, say: try again later
            log.warning("janitor turn failed", error=str(exc))
        except Exception as exc:  # a bug or a foreign error (OSError, httpx): log, carry on
            self._failures.failed(exc)
        return next_reconcile


@dataclass
class Timers:
    """When the next periodic jobs are due (monotonic seconds)."""

    scan: float
    manifest_written: int = -1
    first_pass: PassProgress | None = field(default=None)
    observer: BaseObserver | None = None
    watcher_retry: float = 0.0
    failures: FailureLog = field(default_factory=lambda: FailureLog("loop turn failed"))


def status_line(mirrors: Mirror | Sequence[Mirror]) -> str:
    """One line for `systemctl status`: synced, pending, errors, every pause and its reason,
    last reconcile; with several folders, one such part per folder, each named."""
    group = _group(mirrors)
    if len(group) == 1:
        return _folder_line(group[0])
    return " | ".join(f"{m.name}: {_folder_line(m)}" for m in group)


def _folder_line(daemon: Mirror) -> str:
    try:
        counts = daemon.journal.counts()
        last_time = read_stamp(daemon.journal.get_meta("last_reconcile"))
    except JournalError:
        return ", ".join(["journal not readable", *_pause_labels(daemon)])
    dropped = daemon.unqueued()  # found but not queued: pending until a rescan queues them
    pending = counts.pending(daemon.queued())
    parts = [f"{counts.synced} synced", f"{pending} pending", f"{counts.errors} errors"]
    if dropped:
        parts.append(f"queue overflowed ({dropped} more to rescan)")
    if counts.reuploads:
        parts.append(f"{counts.reuploads} renewing or re-uploading")
    parts += _pause_labels(daemon)
    last = f"; last reconcile {rfc3339(last_time)}" if last_time is not None else ""
    return ", ".join(parts) + last


def _group(mirrors: Mirror | Sequence[Mirror]) -> list[Mirror]:
    return [mirrors] if isinstance(mirrors, Mirror) else list(mirrors)


def _pause_labels(daemon: Mirror) -> list[str]:
    """Each pause in capitals with its reason (the first clause of it: STATUS= is one line)."""
    labels = []
    if daemon.suspended:
        labels.append(f"PAUSED: journal not writable ({daemon.suspended})")
    if daemon.root_refused:
        labels.append(f"PAUSED: {_clause(daemon.root_refused)}")
    if daemon.ctx.quota.reason:
        labels.append("UPLOADS PAUSED: storage quota full")
    if daemon.gate.refused:
        labels.append(f"DELETIONS REFUSED: {_clause(daemon.gate.refused)} (see log)")
    if daemon.reconciler.last_refusal():
        labels.append("RECONCILE REFUSED: listing lacks our files (see log)")
    if daemon.threads_problem:
        labels.append(f"STALLED: {_clause(daemon.threads_problem)}")
    return labels


def _clause(reason: str) -> str:
    return reason.split(";", 1)[0].strip()


@dataclass
class _Run:
    """One mirror in the loop: its threads, its timers and what its start-up scan found."""

    mirror: Mirror
    pool: WorkerPool
    janitor: Janitor
    timers: Timers
    scanned: ScanResult


def run_daemon(
    mirrors: Mirror | Sequence[Mirror],
    stop: threading.Event,
    on_ready: Callable[[], None] | None = None,
    notifier: Notifier | None = None,
) -> int:
    """Mirror until ``stop`` is set (serving metrics when configured); return the exit code.
    A fatal error that stopped the loop (in any folder) is raised."""
    group = _group(mirrors)
    first = group[0]
    listen = first.settings.metrics
    if listen.listen:  # the folders' metrics share one registry: one server
        first.metrics.serve(listen.listen, listen.is_loopback())
    code = run_loop(group, stop, notifier or Notifier(), on_ready, first.options.progress)
    fatal = next((m.fatal for m in group if m.fatal is not None), None)
    if fatal is not None:
        raise fatal
    return code


def run_loop(
    mirrors: Mirror | Sequence[Mirror],
    stop: threading.Event,
    notifier: Notifier,
    on_ready: Callable[[], None] | None = None,
    progress: bool = True,
) -> int:
    """Mirror every folder until ``stop`` is set; 0 on a clean stop. One loop drives them all:
    one READY, one STATUS= line, one watchdog that is pinged only while every folder's threads
    live."""
    group = _group(mirrors)
    for mirror in group:
        check_root(mirror.root)  # before any request: a missing root stops here
    watchdog = Watchdog(notifier)
    for mirror in group:
        mirror.keepalive = watchdog.keepalive  # pinged from inside long scans too
    notifier.status("starting: checking the workspace")
    runs: list[_Run] = []
    try:  # from the first thread started, so that whatever fails stops every one of them
        for mirror in group:
            runs.append(_prepare(mirror, stop))
        for run in runs:
            _start(run, progress)
        notifier.ready(status_line(group))
        if on_ready:
            on_ready()
        while not stop.wait(TICK) and all(m.fatal is None for m in group):
            _supervised_turn(runs, watchdog)
    finally:
        stop.set()
        notifier.stopping()
        _stop(runs)
    return 1 if any(m.threads_problem for m in group) else 0


def _prepare(daemon: Mirror, stop: threading.Event) -> _Run:
    """One folder's watcher, then its start-up reconcile and scan; its other threads built but
    not started. The watcher starts first: a file written while the scan runs is found by the
    scan or reported by the watcher (its mark waits in the queue), never by neither."""
    sync = daemon.settings.sync
    observer = start_watcher(daemon.root, daemon.hints())
    try:
        daemon.publish_pauses()  # the last run's pauses are history now
        first_reconcile = _first_reconcile(daemon)
        scanned = _first_scan(daemon)
    except BaseException:
        stop_watcher(observer)
        raise
    pool = WorkerPool(
        daemon.syncer, daemon.queue, sync.workers, daemon.on_fatal, daemon.on_journal_error,
        daemon.may_take_work, daemon.root_moved,
    )
    now = time.monotonic()
    timers = Timers(scan=now + sync.rescan_interval_seconds, watcher_retry=now + WATCHER_RETRY,
                    observer=observer)
    return _Run(daemon, pool, Janitor(daemon, stop, first_reconcile), timers, scanned)


def _start(run: _Run, progress: bool) -> None:
    run.pool.start()
    run.janitor.start()
    if progress:
        run.timers.first_pass = run.mirror.progress(run.scanned).start()


def _stop(runs: list[_Run]) -> None:
    """Stop every folder's progress and watcher, then its workers and janitor within the
    shutdown deadline; write the manifest of each folder that drained."""
    for run in runs:
        if run.timers.first_pass:
            run.timers.first_pass.stop()
        stop_watcher(run.timers.observer)
    # No run at all when the first folder's start-up failed: its error must go on up.
    timeout = max((r.mirror.settings.sync.shutdown_timeout_seconds for r in runs), default=0.0)
    deadline = time.monotonic() + timeout
    for run in runs:
        drained = run.pool.stop(deadline)
        drained = run.janitor.join(max(0.0, deadline - time.monotonic())) and drained
        run.mirror.drained = drained
        if drained:
            _write_manifest(run.mirror, run.timers, force=True)
        log.info("stopped", drained=drained, **({"folder": run.mirror.name} if run.mirror.name
                                                else {}))


def _first_reconcile(daemon: Mirror) -> float:
    """The start-up reconcile (a full pass only when one is owed); return the seconds until the
    janitor's first full pass: soon if this one failed in a way worth retrying.

    A rejected key or another workspace stops the daemon here (exit 2). A service that is down
    or answers a listing that proves nothing (a short page, a garbled answer) does not: syncing
    the folder needs no listing, and exiting would only make systemd restart into the same
    answer. With another directory in the root's place nothing is touched at all.
    """
    interval = daemon.settings.sync.reconcile_interval_seconds
    if daemon.check_root_identity() is not None:
        return interval
    try:
        return daemon.reconciler.start_up(interval)
    except (AuthenticationFailed, JournalError):
        raise
    except SyncdError as exc:
        log.warning("start-up reconcile failed; syncing the folder and retrying it soon",
                    error=str(exc))
        return min(interval, RECONCILE_RETRY)


def _first_scan(daemon: Mirror) -> ScanResult:
    """The start-up scan; a root gone since the check above is refused like a rescan, not
    fatal (it may be back in a moment): the loop scans again soon."""
    try:
        return daemon.scan()
    except SafetyStop as exc:
        log.error("scan refused", reason=str(exc))
        daemon.request_rescan("the start-up scan was refused")
        return ScanResult()


def _supervise(run: _Run) -> str | None:
    """Restart a dead watcher; say which long-lived thread of this folder is dead, or that its
    janitor has not turned (None: all live)."""
    daemon, janitor = run.mirror, run.janitor
    _restart_dead_watcher(daemon, run.timers)
    dead = run.pool.dead() + ([] if janitor.alive() else ["syncd-janitor"])
    if dead:
        problem: str | None = (
            f"thread {', '.join(dead)} died (see log); the watchdog is no longer pinged:"
            " restart syncd"
        )
    elif not janitor.healthy():
        problem = f"the janitor has not finished a turn for {JANITOR_STALL:.0f} s (see log)"
    else:
        problem = None
    daemon.note_threads(problem)
    return problem


def _restart_dead_watcher(daemon: Mirror, timers: Timers) -> None:
    """A watcher thread killed by an exception is started again; a rescan finds what it
    missed meanwhile. (One that the kernel refuses is left to :func:`_retry_watcher`.)"""
    observer = timers.observer
    if observer is None or watcher_alive(observer):
        return
    log.error("watcher died; restarting", root=str(daemon.root))
    stop_watcher(observer, timeout=1.0)  # stops its emitters: their inotify fds are released
    timers.observer = start_watcher(daemon.root, daemon.hints())
    timers.watcher_retry = time.monotonic() + WATCHER_RETRY
    daemon.request_rescan("the watcher died and was restarted")


def _retry_watcher(daemon: Mirror, timers: Timers) -> None:
    """Without a watcher (inotify limit, root missing at start) try again every minute, and
    rescan once it runs: events may have been missed meanwhile."""
    now = time.monotonic()
    if timers.observer is not None or now < timers.watcher_retry:
        return
    timers.watcher_retry = now + WATCHER_RETRY
    timers.observer = start_watcher(daemon.root, daemon.hints())
    if timers.observer is not None:
        daemon.request_rescan("watcher started")


@dataclass
class Watchdog:
    """systemd's watchdog, pinged by the loop's turns and from inside a scan (one directory
    at a time), but only while the last turn found every folder's threads alive: a scan
    making progress proves the loop is not hung, not that the workers live. Nothing before
    the first turn's verdict: until READY=1, TimeoutStartSec= watches the start-up."""

    notifier: Notifier
    healthy: bool = False

    def vouch(self, healthy: bool) -> None:
        """The turn's verdict on every thread; ping when it is good."""
        self.healthy = healthy
        self.keepalive()

    def keepalive(self) -> None:
        """Ping (at most every half interval: :meth:`Notifier.ping`) while healthy."""
        if self.healthy:
            self.notifier.ping()


def _supervised_turn(runs: list[_Run], watchdog: Watchdog) -> None:
    """One turn of the loop. Supervision and the watcher's restart are guarded like the rest
    of the turn: an error there is logged (a bug, or a foreign error from watchdog), and the
    next turn tries again, instead of ending the daemon. The watchdog is pinged only when
    every folder vouches for its threads."""
    healthy = True
    for run in runs:
        try:
            healthy = _supervise(run) is None and healthy
            _retry_watcher(run.mirror, run.timers)
        except Exception as exc:
            healthy = False
            run.timers.failures.failed(exc)
    watchdog.vouch(healthy)
    for run in runs:
        _tick(run.mirror, run.timers)
    watchdog.notifier.status(status_line([run.mirror for run in runs]))


def _tick(daemon: Mirror, timers: Timers) -> None:
    """One turn of the loop: pauses are checked, every job checks whether it is due, and the
    state is published (journal meta for `syncd status`, STATUS= for systemd)."""
    try:
        daemon.probe_journal()
        if daemon.suspended is None:
            daemon.check_root_identity()
            daemon.publish_depth()  # before a rescan: it re-queues error paths for an instant
        if daemon.working():
            _due_jobs(daemon, timers)
    except JournalError as exc:
        daemon.on_journal_error(exc)
    except Exception as exc:  # a bug or a foreign error (a manifest that cannot be written)
        timers.failures.failed(exc)


def _due_jobs(daemon: Mirror, timers: Timers) -> None:
    sync = daemon.settings.sync
    daemon.apply_pending_reload()
    if daemon.wants_rescan() or time.monotonic() >= timers.scan:
        daemon.rescan()
        timers.scan = time.monotonic() + sync.rescan_interval_seconds
    settled = daemon.queue.idle()
    if settled and timers.first_pass is not None:
        timers.first_pass.stop()
        timers.first_pass = None
    if settled:
        _write_manifest(daemon, timers)


def _write_manifest(daemon: Mirror, timers: Timers, force: bool = False) -> None:
    """Rewrite the manifest after changes, once the queue has settled."""
    version = daemon.metrics.changes
    if version == timers.manifest_written and not force:
        return
    daemon.write_manifest()
    timers.manifest_written = version
