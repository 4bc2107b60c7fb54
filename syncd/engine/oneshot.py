"""Driving a :class:`~syncd.engine.mirror.Mirror` synchronously: `syncd sync` and tests.

One pass: the start-up reconcile (the whole listing only when due or asked for), a scan, the
workers until the queue is empty, deletions and owed tombstones last; then an exit code. The
service loop (:mod:`syncd.service.loop`) drives the same Mirror with threads instead.
"""

from __future__ import annotations

import os
import time
from typing import TYPE_CHECKING, TextIO

import structlog

from syncd.engine.plan import plan, snapshot
from syncd.engine.worker import WorkerPool
from syncd.local.scan import check_root, scan_tree

if TYPE_CHECKING:
    from syncd.engine.mirror import Mirror

log = structlog.get_logger("syncd.daemon")
TICK = 0.5


def sync_once(mirror: Mirror) -> int:
    """One full pass: reconcile (the whole listing when due or asked for), scan, upload,
    delete; 0 converged, 1 paths in error or a pause (:meth:`problems` says why)."""
    check_root(mirror.root)  # before any request: a missing root stops here
    mirror.overflow_problem = None
    if mirror.check_root_identity():  # another directory in its place: touch nothing
        mirror.publish_pauses()
        return 1
    mirror.reconciler.start_up(
        mirror.settings.sync.reconcile_interval_seconds,
        force=mirror.options.full_reconcile or mirror.options.allow_mass_reupload,
    )
    scanned = mirror.scan()
    mirror.renew()
    pool = WorkerPool(mirror.syncer, mirror.queue, mirror.settings.sync.workers, mirror.on_fatal,
                      may_work=mirror.may_take_work, on_root_moved=mirror.root_moved)
    bar = mirror.progress(scanned).start() if mirror.options.progress else None
    pool.start()
    try:
        _drain(mirror)
        _rescan_overflows(mirror)
        intents = mirror.journal.intents()
        if intents:  # lost responses: adopt or delete their copies, from the newest pages
            mirror.reconciler.resolve_intents(intents)
            _drain(mirror)
    finally:
        if bar:
            bar.stop()
        mirror.drained = pool.stop(time.monotonic() + mirror.settings.sync.shutdown_timeout_seconds)
    if mirror.fatal is not None:
        raise mirror.fatal
    mirror.check_root_identity()  # replaced mid-pass: the workers stopped, say why
    mirror.write_manifest()
    mirror.publish_depth()
    counts = mirror.journal.counts()
    converged = (counts.errors == 0 and counts.retrying == 0 and not mirror.problems()
                 and not mirror.queue.overflowed)
    return 0 if converged and counts.tombstones == 0 else 1


def _rescan_overflows(mirror: Mirror) -> None:
    """Marks were dropped (more paths to look at than the queue holds): rescan from the
    first dropped path and drain, until nothing is dropped. A rescan that drops from the
    same path again makes no progress (vanished paths the gate keeps): :meth:`problems`
    says so."""
    resumed: bytes | None = None
    while mirror.queue.overflowed and mirror.fatal is None and mirror.working():
        dropped = mirror.queue.first_dropped or ""
        if resumed is not None and os.fsencode(dropped) <= resumed:
            mirror.overflow_problem = (
                f"queue overflowed: more paths need a look than it holds "
                f"({mirror.queue.max_size}), and a rescan made no progress past {dropped!r};"
                " run `syncd sync` again"
            )
            return
        resumed = os.fsencode(dropped)
        mirror.rescan_owed = mirror.queue.clear_overflow()
        log.info("rescanning", reason="queue overflow", resume_at=dropped)
        try:
            mirror.scan(mark_from=dropped)
        finally:
            mirror.rescan_owed = 0
        _drain(mirror)


def _drain(mirror: Mirror) -> None:
    """Let the workers empty the queue; deletions and tombstones go last. Stops early when
    paused (the root is not the one synced): the workers take nothing then."""
    while mirror.fatal is None and mirror.working():
        _wait_idle(mirror)
        owed = mirror.run_deletions()
        retries_due = not mirror.queue.idle(ignore_future=False) and _retry_soon(mirror)
        if not retries_due and (owed == 0 or not _tombstones_soon(mirror)):
            return
        time.sleep(TICK)


def _wait_idle(mirror: Mirror) -> None:
    pause = min(TICK, max(0.02, mirror.settings.sync.settle_seconds / 4))
    while mirror.fatal is None and mirror.working() and not mirror.queue.idle():
        time.sleep(pause)


def _retry_soon(mirror: Mirror) -> bool:
    """True when a transient failure is due within ``max_sync_wait``. Not for a file this
    process cannot read: waiting does not fix a permission, so `sync` reports it at once."""
    horizon = mirror.clock() + mirror.options.max_sync_wait
    return any(
        row.failure is not None
        and row.failure.kind == "transient"
        and row.failure.next_attempt <= horizon
        and os.access(mirror.root / row.path, os.R_OK, effective_ids=True)
        for row in mirror.journal.errors()
    )


def _tombstones_soon(mirror: Mirror) -> bool:
    return bool(mirror.journal.tombstones(due_before=mirror.clock() + mirror.options.max_sync_wait))


def dry_run(mirror: Mirror, out: TextIO) -> int:
    """Print what a sync would do, without changing anything."""
    listing = list(mirror.client.iter_files())
    result = plan(listing, snapshot(mirror.journal), mirror.clock(),
                  max_missing_fraction=mirror.reconciler.max_missing_fraction)
    marked: list[str] = []
    scanned = scan_tree(mirror.root, mirror.ctx.rules, mirror.ctx.follow_symlinks, mirror.skipped,
                        mirror.journal, lambda path, _mtime_ns: marked.append(path))
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
    if result.refused:
        print(f"reconcile would be refused: {result.refused}", file=out)
    return 0
