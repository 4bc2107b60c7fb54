"""Workers: take a dirty path, decide, act, commit. One path is never held by two workers.

Uploads are make-before-break: the new content is uploaded and committed (the old file_id
becoming a tombstone in the same transaction); the old remote copy is deleted afterwards, when
the daemon's loop pays the tombstones (one thread pays them all, so no copy is deleted twice).
An intent is written before every upload so a lost response is found by reconcile. Deletions of
removed files do not happen here: they go to the :class:`~syncd.engine.deletes.DeleteGate`, which
refuses mass deletes.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import structlog

from syncd import logs
from syncd.engine.context import SyncContext
from syncd.engine.decide import Action, decide, decide_after_hash, retry_backoff
from syncd.engine.dirtyqueue import DirtyQueue
from syncd.engine.lanes import Lane
from syncd.errors import (
    ApiError,
    AuthenticationFailed,
    ConnectionFailed,
    FileChangedError,
    JournalError,
    JournalMismatchError,
    LocalFileError,
    PermanentError,
    QuotaExceeded,
    RootMoved,
    TransientError,
)
from syncd.local.contenttype import HEAD_BYTES, content_type
from syncd.local.fs import FileSource
from syncd.local.scan import local_stat
from syncd.model import Failure, FileRow, LocalStat, Synced
from syncd.remote.names import encode_name
from syncd.remote.throttle import WarnOnce
from syncd.remote.turns import LIVE

log = structlog.get_logger("syncd.worker")


class Syncer:
    """Processes one path at a time; thread-safe as long as the queue hands paths out once."""

    def __init__(self, ctx: SyncContext) -> None:
        self.ctx = ctx
        self.warn = ctx.warn or WarnOnce()

    def process(self, path: str) -> None:
        """Bring the remote copy of ``path`` in line with the local file."""
        ctx = self.ctx
        with FileSource(ctx.root, path, ctx.follow_symlinks, ctx.root_identity()) as source:
            self._process(path, source)

    def _process(self, path: str, source: FileSource) -> None:
        ctx = self.ctx
        try:
            local = None if ctx.rules.ignored(path) else source.look()
        except LocalFileError as exc:
            self._fail(path, None, ctx.journal.get(path), exc, transient=True)
            return
        row = ctx.journal.get(path)
        decision = decide(local, row, ctx.clock())
        action = decision.action
        if action is Action.VERIFY and local is not None and row is not None:
            action = self._verify(path, local, row, source)
        if self._held_open(path, action):
            return
        if action is Action.WAIT:
            ctx.queue.defer(path, decision.retry_at)
        elif action is Action.FORGET:
            ctx.journal.forget(path)
        elif action is Action.DELETE:
            ctx.gate.request(path)
        elif action is Action.UPLOAD and local is not None:
            ctx.gate.cancel(path)
            self._upload(path, local, row, source)

    def _held_open(self, path: str, action: Action) -> bool:
        """Defer a changed file the watcher saw opened for writing and not yet closed (a stalled
        download). A file that matches the journal is not being written, whatever the watcher
        said: watchdog reports every file of a new directory as created again, once per level
        of a deep tree, and those reports must not hold a quiet file for ``settle_max``."""
        writes = self.ctx.writes
        if writes is None or action is Action.WAIT:
            return False
        if action is not Action.UPLOAD:  # in sync, gone or ignored: nothing is being written
            writes.closed(path)
            return False
        hold = writes.hold_until(path)
        if hold is not None:
            self.ctx.queue.defer(path, hold)
        return hold is not None

    def _verify(self, path: str, local: LocalStat, row: FileRow, source: FileSource) -> Action:
        """Hash a file whose stat moved but size did not: a touch costs no request."""
        try:
            sha = source.hash_unchanged(local)
        except LocalFileError:
            sha = None
        if sha is None:  # changed since the look, gone or unreadable: the upload finds out which
            return Action.UPLOAD
        action = decide_after_hash(sha, row)
        if action is Action.NOTHING:
            self.ctx.journal.update_stat(path, local, self.ctx.clock())
            log.debug("touched", path=path)
        return action

    def _upload(
        self, path: str, local: LocalStat, row: FileRow | None, source: FileSource
    ) -> None:
        ctx = self.ctx
        retry_at = ctx.quota.blocked_until()
        if retry_at is not None:  # the storage quota is full: wait for the probe's verdict
            ctx.queue.defer(path, retry_at)
            return
        try:
            # The file looked at is the one sniffed, and the one the first attempt sends.
            self._upload_now(path, local, row, source)
        finally:
            ctx.quota.settled()

    def _upload_now(
        self, path: str, local: LocalStat, row: FileRow | None, source: FileSource
    ) -> None:
        ctx = self.ctx
        remote_name = encode_name(path, ctx.name_prefix)
        mime = content_type(path, source.head(HEAD_BYTES))
        intent = ctx.journal.add_intent(path, remote_name, local, ctx.clock())
        started = time.monotonic()
        try:
            result = ctx.client.upload(source, remote_name, mime, expected=local)
        except QuotaExceeded as exc:  # the organization's storage, not this file
            if not exc.maybe_stored:
                ctx.journal.drop_intent(intent.id)
            ctx.queue.defer(path, ctx.quota.full(str(exc)))
            return
        except FileChangedError as exc:
            self._superseded(path, remote_name, intent.id, exc)
            return
        except ApiError as exc:
            if not isinstance(exc, ConnectionFailed) and not exc.maybe_stored:
                ctx.journal.drop_intent(intent.id)  # an answer came back: nothing was stored
            if isinstance(exc, AuthenticationFailed):
                raise  # the key, not this file: every path would fail the same way
            self._fail(path, local, row, exc, transient=isinstance(exc, TransientError))
            return
        except LocalFileError as exc:
            if not exc.maybe_stored:  # else an earlier, unanswered attempt may have left a copy
                ctx.journal.drop_intent(intent.id)
            if self._vanished(path):
                ctx.queue.mark(path, settle=False)  # deleted or moved away, not failing
                return
            self._fail(path, local, row, exc, transient=True)
            return
        ctx.quota.succeeded()
        old = row.synced if row else None
        expires = result.file.expires_at
        synced = Synced(
            file_id=result.file.id, remote_name=remote_name, sha256=result.sha256,
            size=result.local.size, mtime_ns=result.local.mtime_ns, ino=result.local.ino,
            mime_type=mime, synced_at=ctx.clock(),
            expires_at=expires.timestamp() if expires else None,
        )
        # A retried POST may have left copies: keep the intent so reconcile finds them.
        ctx.journal.commit_upload(path, synced, None if result.maybe_orphans else intent.id)
        elapsed = time.monotonic() - started
        ctx.metrics.uploaded(synced.size, elapsed)
        log.info(
            ("renewed" if row and row.gone else "replaced") if old else "uploaded", path=path,
            file_id=synced.file_id, bytes=synced.size, mime_type=mime,
            duration_ms=round(elapsed * 1000, 1),
        )
        self.warn.clear(path)
        if result.local != local:
            ctx.queue.mark(path)  # it changed between the look and the read: look again

    def _vanished(self, path: str) -> bool:
        """True when ``path`` is no longer an eligible file (so a failed read is no error)."""
        try:
            ctx = self.ctx
            return local_stat(ctx.root, path, ctx.follow_symlinks, ctx.root_identity()) is None
        except LocalFileError:
            return False

    def _superseded(self, path: str, name: str, intent_id: int, exc: FileChangedError) -> None:
        """The file changed mid-upload: delete the stale copy, look again when it settles."""
        ctx = self.ctx
        if exc.uploaded_id:
            ctx.journal.add_tombstone(exc.uploaded_id, name, path, "superseded")
        if not exc.maybe_stored:  # else an earlier, unanswered attempt may have left a copy
            ctx.journal.drop_intent(intent_id)
        log.info("superseded", path=path, file_id=exc.uploaded_id)
        ctx.queue.mark(path)

    def _fail(
        self,
        path: str,
        local: LocalStat | None,
        row: FileRow | None,
        exc: Exception,
        transient: bool,
    ) -> None:
        """Record a failure: permanent ones wait for the file to change, transient ones back off."""
        ctx = self.ctx
        previous = row.failure if row and row.failure and row.failure.stat == local else None
        attempts = (previous.attempts if previous else 0) + 1
        now = ctx.clock()
        next_attempt = now + retry_backoff(attempts) if transient else 0.0
        kind = "transient" if transient else "permanent"
        # Server text is cleaned before the journal keeps it (and `syncd errors` prints it).
        ctx.journal.record_failure(
            path, Failure(kind, logs.stored_text(str(exc)), attempts, next_attempt, local)
        )
        ctx.metrics.error(kind)
        if transient:
            ctx.queue.defer(path, next_attempt)
        self.warn.warn(path, "sync failed", kind=kind, error=str(exc), attempt=attempts,
                       retry_in_s=round(next_attempt - now, 1) if transient else None)


class WorkerPool:
    """``n`` threads taking paths from the queue until stopped."""

    def __init__(
        self,
        syncer: Syncer,
        queue: DirtyQueue,
        n: int,
        on_fatal: Callable[[BaseException], None],
        on_journal_error: Callable[[JournalError], None] | None = None,
        may_work: Callable[[], bool] = lambda: True,
        on_root_moved: Callable[[], None] = lambda: None,
    ) -> None:
        self._syncer = syncer
        self._queue = queue
        self._stop = threading.Event()
        self._on_fatal = on_fatal
        self._on_journal_error = on_journal_error or on_fatal
        self._may_work = may_work
        self._on_root_moved = on_root_moved
        self._threads = [
            threading.Thread(target=self._run, name=f"syncd-worker-{i}", daemon=True)
            for i in range(n)
        ]
        self.busy = 0
        self._lock = threading.Lock()

    def start(self) -> None:
        """Start the threads."""
        for thread in self._threads:
            thread.start()

    def stop(self, deadline: float) -> bool:
        """Stop taking work; wait until ``deadline`` (monotonic) for in-flight paths. True if all
        threads finished."""
        self._stop.set()
        self._queue.wake()  # the queue outlives this pool: `sync` then `run` share it
        for thread in self._threads:
            if thread.ident is not None:  # a pool stopped before it started has nothing to join
                thread.join(timeout=max(0.0, deadline - time.monotonic()))
        return not any(t.is_alive() for t in self._threads)

    def alive(self) -> bool:
        """True while every thread runs (a dead worker is a bug: the daemon must say so)."""
        return not self.dead()

    def dead(self) -> list[str]:
        """The names of threads that have ended although the pool was not stopped."""
        if self._stop.is_set():
            return []
        return [t.name for t in self._threads if t.ident is not None and not t.is_alive()]

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self._turn()
            except Exception as exc:  # a bug outside a path: log it, breathe, carry on
                log.exception("worker turn failed", error=repr(exc))
                self._stop.wait(1.0)

    def _turn(self) -> None:
        """Take one path (if work is allowed and one is ready) and process it."""
        if not self._may_work():
            self._stop.wait(0.5)  # paused (journal not writable, root refused): take no work
            return
        path = self._queue.get(timeout=0.5)
        if path is None:
            return
        if self._stop.is_set() or not self._may_work():  # leave it for later (or the next run)
            self._queue.done(path)
            self._queue.mark(path, settle=False)
            return
        with self._lock:
            self.busy += 1
        # Its requests go first when folders share one budget (syncd.remote.turns).
        live = LIVE.set(self._queue.lane_of(path) is Lane.LIVE)
        try:
            self._syncer.process(path)
        except RootMoved:  # another directory at the root's path: nothing under it was read
            self._queue.defer_for(path, 1)
            self._on_root_moved()
        except JournalMismatchError as exc:  # another workspace: stop before acting
            self._queue.defer_for(path, 1)
            self._on_fatal(exc)
        except JournalError as exc:
            self._queue.defer_for(path, 1)  # lose nothing: look again later
            self._on_journal_error(exc)
        except AuthenticationFailed as exc:
            self._queue.defer_for(path, 1)
            self._on_fatal(exc)
        except (PermanentError, TransientError) as exc:
            log.warning("action failed", path=path, error=str(exc))
            self._queue.defer_for(path, 30)
        except Exception as exc:  # a bug must not kill the worker or lose the path
            log.exception("unexpected error", path=path, error=repr(exc))
            self._queue.defer_for(path, 60)
        finally:
            LIVE.reset(live)
            with self._lock:
                self.busy -= 1
            self._queue.done(path)
