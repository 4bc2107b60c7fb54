"""Syncer.process and WorkerPool against FakeFiles: real files, a real journal, no sockets."""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from syncd.engine.context import SyncContext
from syncd.engine.deletes import DeleteGate
from syncd.engine.dirtyqueue import DirtyQueue
from syncd.engine.quota import PROBE_INTERVAL
from syncd.engine.worker import Syncer, WorkerPool
from syncd.errors import BadAnswer, BadRequest, ConnectionFailed, QuotaExceeded, ServerError
from syncd.journal import Journal
from syncd.model import Failure, FileRow, Intent, LocalStat, Synced, Tombstone
from tests.fakes import Clock, FakeFiles, fake_context
from tests.syncenv import wait_until

T0 = 1_700_000_000.0
MTIME = 1_699_990_000 * 10**9  # long before T0: a stat recorded at T0 is never racy


@dataclass
class Env:
    root: Path
    clock: Clock
    fake: FakeFiles
    journal: Journal
    queue: DirtyQueue
    gate: DeleteGate
    ctx: SyncContext
    syncer: Syncer

    def write(self, rel: str, data: bytes, mtime_ns: int = MTIME) -> LocalStat:
        path = self.root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        os.utime(path, ns=(mtime_ns, mtime_ns))
        return LocalStat.from_stat(path.stat())


@pytest.fixture
def env(tmp_path: Path) -> Iterator[Env]:
    fake = FakeFiles(clock := Clock(T0))
    with fake_context(tmp_path, clock, fake) as ctx:
        yield Env(ctx.root, clock, fake, ctx.journal, ctx.queue, ctx.gate, ctx, Syncer(ctx))


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def synced(file_id: str, name: str, data: bytes, stat: LocalStat, at: float = T0) -> Synced:
    return Synced(file_id, name, sha(data), stat.size, stat.mtime_ns, stat.ino, "text/plain", at)


def test_new_file_is_uploaded_once_after_its_intent_and_committed(env: Env) -> None:
    """Intent before upload; one POST; the row holds the copy; the intent is dropped."""
    stat = env.write("docs/a.txt", b"hello")
    seen: list[list[Intent]] = []
    env.fake.during_upload = lambda name: seen.append(env.journal.intents())
    env.syncer.process("docs/a.txt")
    expected = (
        [("upload", "docs%2Fa.txt")],
        [[Intent(1, "docs/a.txt", "docs%2Fa.txt", 5, MTIME, stat.ino, T0)]],
        FileRow("docs/a.txt", synced("file_fake0001", "docs%2Fa.txt", b"hello", stat), None),
        [], [], {"file_fake0001": sha(b"hello")}, (0, 0),
    )
    assert expected == (
        env.fake.calls, seen, env.journal.get("docs/a.txt"), env.journal.intents(),
        env.journal.tombstones(), env.fake.sha256, env.queue.depth(),
    )


@pytest.mark.parametrize("new", [b"HELLO", b"hello, world"], ids=["same-size", "other-size"])
def test_modified_file_is_uploaded_and_the_old_copy_tombstoned_not_deleted(
    env: Env, new: bytes
) -> None:
    """Make before break: the new id is committed, the old one owed a DELETE the worker does
    not send (the janitor pays tombstones)."""
    env.write("a.txt", b"hello")
    env.syncer.process("a.txt")
    stat = env.write("a.txt", new, MTIME + 10**9)
    env.clock.now = T0 + 10
    env.syncer.process("a.txt")
    expected = (
        [("upload", "a.txt"), ("upload", "a.txt")],
        FileRow("a.txt", synced("file_fake0002", "a.txt", new, stat, T0 + 10), None),
        [Tombstone("file_fake0001", "a.txt", "a.txt", "replaced", 0, 0.0, "")],
        ["file_fake0001", "file_fake0002"], [],
    )
    assert expected == (
        env.fake.calls, env.journal.get("a.txt"), env.journal.tombstones(),
        list(env.fake.files), env.journal.intents(),
    )


def test_touched_file_costs_no_request_and_records_the_new_stat(env: Env) -> None:
    """Same bytes, new mtime: hashed locally, stat and synced_at updated, nothing sent."""
    env.write("a.txt", b"hello")
    env.syncer.process("a.txt")
    stat = env.write("a.txt", b"hello", MTIME + 10**9)
    env.clock.now = T0 + 10
    env.syncer.process("a.txt")
    expected = (
        [("upload", "a.txt")],
        FileRow("a.txt", synced("file_fake0001", "a.txt", b"hello", stat, T0 + 10), None), [],
    )
    assert expected == (env.fake.calls, env.journal.get("a.txt"), env.journal.tombstones())


def test_deleted_file_goes_to_the_gate_and_nothing_is_deleted(env: Env) -> None:
    """A removed file is a request to the gate; the worker sends no DELETE, the row stays."""
    stat = env.write("a.txt", b"hello")
    env.syncer.process("a.txt")
    (env.root / "a.txt").unlink()
    env.syncer.process("a.txt")
    expected = (
        [("upload", "a.txt")],
        FileRow("a.txt", synced("file_fake0001", "a.txt", b"hello", stat), None),
        [], ["a.txt"], ["file_fake0001"],
    )
    assert expected == (
        env.fake.calls, env.journal.get("a.txt"), env.journal.tombstones(),
        env.gate.approve(1, None), list(env.fake.files),
    )


def test_transient_failures_back_off_and_nothing_is_lost(env: Env) -> None:
    """A 529 twice: a transient failure with its retry time, the path deferred (5 s, then
    10 s), not retried before; the third look uploads and clears the failure."""
    stat = env.write("a.txt", b"hello")
    env.fake.fail("upload", ServerError("overloaded", status=529), times=2)
    env.syncer.process("a.txt")
    first = (env.journal.get("a.txt"), env.journal.intents(), env.queue.pop_ready())
    env.syncer.process("a.txt")  # before the retry time: waits, sends nothing
    env.clock.now = T0 + 5
    ready = env.queue.pop_ready()
    env.syncer.process("a.txt")
    env.queue.done("a.txt")
    second = env.journal.get("a.txt")
    env.clock.now = T0 + 15
    again = env.queue.pop_ready()
    env.syncer.process("a.txt")
    env.queue.done("a.txt")
    expected = (
        (FileRow("a.txt", None, Failure("transient", "529: overloaded", 1, T0 + 5, stat)),
         [], None),
        "a.txt",
        FileRow("a.txt", None, Failure("transient", "529: overloaded", 2, T0 + 15, stat)),
        "a.txt",
        [("upload", "a.txt")] * 3,
        FileRow("a.txt", synced("file_fake0001", "a.txt", b"hello", stat, T0 + 15), None),
        (0, 0),
    )
    assert expected == (
        first, ready, second, again, env.fake.calls, env.journal.get("a.txt"), env.queue.depth()
    )


def test_an_unanswered_upload_keeps_its_intent_for_reconcile(env: Env) -> None:
    """No answer at all: the copy may exist, so the intent stays; the failure is transient."""
    stat = env.write("a.txt", b"hello")
    env.fake.fail("upload", ConnectionFailed("ReadTimeout: timed out"))
    env.syncer.process("a.txt")
    expected = (
        FileRow("a.txt", None, Failure("transient", "no response: ReadTimeout: timed out", 1,
                                       T0 + 5, stat)),
        [Intent(1, "a.txt", "a.txt", 5, MTIME, stat.ino, T0)],
    )
    assert expected == (env.journal.get("a.txt"), env.journal.intents())


def test_permanent_failure_waits_for_the_file_to_change(env: Env) -> None:
    """A 400 is recorded permanent (no retry time, not queued); looks at the same version send
    nothing, however late; a new version is uploaded and clears it."""
    stat = env.write("a.txt", b"hello")
    env.fake.fail("upload", BadRequest("bad file", status=400,
                                       error_type="invalid_request_error"))
    env.syncer.process("a.txt")
    failed = (env.journal.get("a.txt"), env.journal.intents(), env.queue.depth())
    env.clock.now = T0 + 86400
    env.syncer.process("a.txt")
    still = (list(env.fake.calls), env.journal.get("a.txt"))
    changed = env.write("a.txt", b"hello!", MTIME + 10**9)
    env.syncer.process("a.txt")
    row = FileRow("a.txt", None, Failure(
        "permanent", "400 invalid_request_error: bad file", 1, 0.0, stat))
    expected = (
        (row, [], (0, 0)),
        ([("upload", "a.txt")], row),
        [("upload", "a.txt")] * 2,
        FileRow("a.txt", synced("file_fake0001", "a.txt", b"hello!", changed, T0 + 86400), None),
    )
    assert expected == (failed, still, env.fake.calls, env.journal.get("a.txt"))


def test_ignored_paths_send_nothing_and_leave_no_row(env: Env) -> None:
    """Editor and OS litter is decided before any stat or request."""
    for rel in (".DS_Store", "notes.txt.swp", "draft.txt~"):
        env.write(rel, b"litter")
        env.syncer.process(rel)
    expected = ([], [], [], 0, (0, 0))
    assert expected == (
        env.fake.calls, list(env.journal.iter_rows()), env.journal.intents(),
        env.gate.pending(), env.queue.depth(),
    )


def test_a_file_changed_mid_upload_is_superseded_and_looked_at_again(env: Env) -> None:
    """The stored copy of a version that moved under the read is tombstoned, not committed."""
    env.write("a.txt", b"hello")
    env.fake.during_upload = lambda name: env.write("a.txt", b"hello again", MTIME + 10**9)
    env.syncer.process("a.txt")
    expected = (
        None, [], [Tombstone("file_fake0001", "a.txt", "a.txt", "superseded", 0, 0.0, "")],
        "a.txt",
    )
    assert expected == (
        env.journal.get("a.txt"), env.journal.intents(), env.journal.tombstones(),
        env.queue.pop_ready(),
    )


def test_a_full_quota_pauses_every_upload_until_the_probe(env: Env) -> None:
    """The first QuotaExceeded pauses uploads: no failure recorded, the path waits for the
    probe, other paths send nothing; the probe's success resumes."""
    stat = env.write("a.txt", b"hello")
    env.write("b.txt", b"world")
    env.fake.fail("upload", QuotaExceeded("storage full", status=400,
                                          error_code="storage_quota_exceeded"))
    env.syncer.process("a.txt")
    env.syncer.process("b.txt")
    paused = (list(env.fake.calls), env.journal.get("a.txt"), env.journal.intents(),
              env.ctx.quota.reason is not None, env.queue.pop_ready())
    env.clock.now = T0 + PROBE_INTERVAL
    env.syncer.process(probe := env.queue.pop_ready() or "")
    expected = (
        ([("upload", "a.txt")], None, [], True, None),
        "a.txt",
        [("upload", "a.txt"), ("upload", "a.txt")],
        FileRow("a.txt", synced("file_fake0001", "a.txt", b"hello", stat, T0 + PROBE_INTERVAL),
                None),
        None,
    )
    assert expected == (
        paused, probe, env.fake.calls, env.journal.get("a.txt"), env.ctx.quota.reason
    )


def test_worker_pool_uploads_every_marked_path_exactly_once(env: Env) -> None:
    """20 paths marked, 4 workers: 20 uploads, one each, all committed; stop() drains."""
    paths = [f"dir{i % 3}/f{i:02d}.txt" for i in range(20)]
    for path in paths:
        env.write(path, path.encode())
        env.queue.mark(path)
    fatal: list[BaseException] = []
    pool = WorkerPool(env.syncer, env.queue, 4, on_fatal=fatal.append)
    pool.start()
    try:
        wait_until(lambda: env.journal.counts().synced == 20 and env.queue.idle(),
                   timeout=30, what="20 uploads committed")
    finally:
        stopped = pool.stop(time.monotonic() + 10)
    committed = {p: r.synced.sha256 for p in paths if (r := env.journal.get(p)) and r.synced}
    expected = (
        True, [], sorted(p.replace("/", "%2F") for p in paths),
        {p: sha(p.encode()) for p in paths}, [], 20,
    )
    assert expected == (
        stopped, fatal, sorted(env.fake.uploads()), committed, env.journal.intents(),
        len(env.fake.files),
    )


def test_a_success_with_an_unreadable_answer_keeps_its_intent(env: Env) -> None:
    """A 2xx whose body cannot be used (the client flags it maybe stored): the intent stays so
    reconcile can adopt or delete the copy; the path waits in a permanent error meanwhile."""
    env.write("a.txt", b"hello")
    answer = BadAnswer("the service sent an invalid file id ('../x')")
    answer.maybe_stored = True
    env.fake.fail("upload", answer)
    env.syncer.process("a.txt")
    row = env.journal.get("a.txt")
    assert ("permanent", 1) == (row.failure.kind if row and row.failure else None,
                                len(env.journal.intents()))


def test_a_pool_retry_is_timed_by_the_queues_clock() -> None:
    """An error that escapes the syncer defers the path 30 s by the queue's own clock (an
    injected one here), not the wall clock."""
    now = [1000.0]
    queue = DirtyQueue(0.0, 0.0, clock=lambda: now[0])
    seen: list[str] = []

    class Failing:
        def process(self, path: str) -> None:
            seen.append(path)
            raise ServerError("overloaded", status=529)

    pool = WorkerPool(Failing(), queue, 1, lambda exc: None)  # type: ignore[arg-type]
    queue.mark("a.txt")
    pool.start()
    try:
        wait_until(lambda: seen == ["a.txt"] and queue.depth() == (1, 0), timeout=10,
                   what="the path processed and deferred")
    finally:
        pool.stop(time.monotonic() + 10)
    now[0] = 1029.9
    early = queue.get(timeout=0)
    now[0] = 1030.0
    assert (None, "a.txt") == (early, queue.get(timeout=0))


def test_a_root_swapped_under_a_worker_reads_nothing_and_pauses(env: Env, tmp_path: Path) -> None:
    """The root's identity is checked on the fd the worker reads under: with another directory
    at the root's path, nothing is uploaded or recorded as failed, the path waits (not lost),
    and the pool reports the swap so the daemon pauses."""
    env.write("a.txt", b"first")
    info = env.root.stat()
    env.ctx.root_identity = lambda: (info.st_dev, info.st_ino)
    os.rename(env.root, tmp_path / "away")
    env.root.mkdir()
    (env.root / "a.txt").write_bytes(b"a stranger's file")
    env.queue.mark("a.txt")
    moved: list[bool] = []
    pool = WorkerPool(env.syncer, env.queue, 1, on_fatal=pytest.fail,
                      on_root_moved=lambda: moved.append(True))
    pool.start()
    try:
        wait_until(lambda: bool(moved), timeout=10, what="the swap reported")
    finally:
        pool.stop(time.monotonic() + 10)
    assert (env.fake.uploads(), env.journal.get("a.txt"), env.queue.depth()) == ([], None, (1, 0))
