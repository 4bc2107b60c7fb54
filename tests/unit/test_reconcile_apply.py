"""Reconciler.run and start_up against FakeFiles and a real journal: the plan applied."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from syncd.engine.context import SyncContext
from syncd.engine.deletes import DeleteGate
from syncd.engine.dirtyqueue import DirtyQueue
from syncd.engine.plan import Missing
from syncd.engine.reconcile import LISTED_META, Reconciler
from syncd.errors import IncompleteListing
from syncd.journal import Journal
from syncd.model import FileRow, LocalStat, Synced, stamp
from tests.fakes import Clock, FakeFiles, fake_context

T0 = 1_700_000_000.0
MTIME = 1_699_990_000 * 10**9
LISTING = [("iter_files",), ("list_page", "limit=1000")]  # one page, read to its end


@dataclass
class Env:
    root: Path
    fake: FakeFiles
    journal: Journal
    queue: DirtyQueue
    gate: DeleteGate
    ctx: SyncContext

    def write(self, rel: str, data: bytes) -> LocalStat:
        path = self.root / rel
        path.write_bytes(data)
        os.utime(path, ns=(MTIME, MTIME))
        return LocalStat.from_stat(path.stat())

    def synced(self, path: str, file_id: str, size: int = 5) -> Synced:
        """Commit a row for ``path`` holding ``file_id``, synced before the listing begins."""
        copy = Synced(file_id, path, "ab" * 32, size, MTIME, 7, "text/plain", T0 - 100)
        self.journal.commit_upload(path, copy, None)
        return copy

    def state(self) -> tuple[object, ...]:
        """Everything a refused or failed reconcile must leave as it was."""
        j = self.journal
        return (list(j.iter_rows()), j.intents(), j.tombstones(), dict(self.fake.files),
                self.queue.depth())


@pytest.fixture
def env(tmp_path: Path) -> Iterator[Env]:
    fake = FakeFiles(clock := Clock(T0))
    with fake_context(tmp_path, clock, fake) as ctx:
        yield Env(ctx.root, fake, ctx.journal, ctx.queue, ctx.gate, ctx)


def test_a_copy_the_listing_lacks_is_marked_gone_and_queued(env: Env) -> None:
    """b.txt's copy is not listed: its row keeps the id, marked gone, and the path is queued;
    a.txt's listed copy is left alone; nothing is deleted."""
    a = env.synced("a.txt", env.fake.add("a.txt", 5, T0 - 200).id)
    b = env.synced("b.txt", "file_lost")
    result = Reconciler(env.ctx, env.gate, 0.5).run()
    expected = (
        LISTING, (Missing("b.txt", "file_lost", "missing"),), 1, 0,
        FileRow("a.txt", a, None), FileRow("b.txt", b, None, gone="missing"),
        "b.txt", None, stamp(T0), "1",
    )
    assert expected == (
        env.fake.calls, result.missing, result.ours, result.foreign,
        env.journal.get("a.txt"), env.journal.get("b.txt"),
        env.queue.pop_ready(), env.ctx.journal.get_meta("reconcile_refused") or None,
        env.journal.get_meta(LISTED_META), env.journal.get_meta("listing_pages"),
    )


def test_a_lost_upload_is_adopted_and_its_twin_deleted_as_an_orphan(env: Env) -> None:
    """An open intent, two copies matching it (a retried POST), the local file unchanged: the
    newest copy becomes the row's, the other is deleted, the intent is closed."""
    stat = env.write("c.txt", b"lost!")
    env.journal.add_intent("c.txt", "c.txt", stat, T0 - 50)
    older = env.fake.add("c.txt", 5, T0 - 49)
    newest = env.fake.add("c.txt", 5, T0 - 48)
    result = Reconciler(env.ctx, env.gate, 0.5).run()
    copy = Synced(newest.id, "c.txt", hashlib.sha256(b"lost!").hexdigest(), 5, MTIME, stat.ino,
                  "text/plain", T0)
    expected = (
        [*LISTING, ("delete", older.id)], FileRow("c.txt", copy, None), [], [],
        [newest.id], {older.id}, 0, (0, 0),
    )
    assert expected == (
        env.fake.calls, env.journal.get("c.txt"), env.journal.intents(),
        env.journal.tombstones(), list(env.fake.files), env.gate.recently_deleted(),
        result.foreign, env.queue.depth(),
    )


def test_a_lost_upload_of_a_version_since_changed_is_deleted_and_the_path_queued(
    env: Env,
) -> None:
    """The local file is no longer what the intent sent: its copy is an orphan, not adopted."""
    stat = env.write("c.txt", b"lost!")
    env.journal.add_intent("c.txt", "c.txt", stat, T0 - 50)
    lost = env.fake.add("c.txt", 5, T0 - 49)
    env.write("c.txt", b"newer content")
    Reconciler(env.ctx, env.gate, 0.5).run()
    expected = ([*LISTING, ("delete", lost.id)], None, [], [], {}, "c.txt")
    assert expected == (
        env.fake.calls, env.journal.get("c.txt"), env.journal.intents(),
        env.journal.tombstones(), env.fake.files, env.queue.pop_ready(),
    )


def test_foreign_files_are_counted_and_never_deleted(env: Env) -> None:
    """Files no row, tombstone or intent accounts for, even one named like our path with an
    intent of another size, are counted as foreign and left alone."""
    stat = env.write("a.txt", b"a much longer file")
    env.journal.add_intent("a.txt", "a.txt", stat, T0 - 50)
    env.fake.add("report.pdf", 1000, T0 - 1000, "application/pdf")
    env.fake.add("a.txt", 5, T0 - 40)
    before = dict(env.fake.files)
    result = Reconciler(env.ctx, env.gate, 0.5).run()
    expected = (LISTING, 2, (), (), "2", before, [], None)
    assert expected == (
        env.fake.calls, result.foreign, result.adopt, result.orphans,
        env.journal.get_meta("foreign_files"), env.fake.files, env.journal.intents(),
        env.journal.get("a.txt"),
    )


def test_a_listing_lacking_too_many_copies_is_refused_and_changes_nothing(env: Env) -> None:
    """15 of 20 copies missing, over max_missing_fraction 0.1: nothing marked, queued or
    deleted; the refusal is recorded for status and the next start-up."""
    copies = [env.fake.add(f"f{i:02d}.txt", 5, T0 - 200) for i in range(20)]
    for i, copy in enumerate(copies):
        env.synced(f"f{i:02d}.txt", copy.id)
    for copy in copies[5:]:
        del env.fake.files[copy.id]
    before = env.state()
    reconciler = Reconciler(env.ctx, env.gate, 0.1)
    result = reconciler.run()
    refusal = result.refused or ""
    expected = (LISTING, before, True, (), refusal, refusal)
    assert expected == (
        env.fake.calls, env.state(), "lacks 15 of our 20 synced files" in refusal,
        result.missing, env.journal.get_meta("reconcile_refused"), reconciler.last_refusal(),
    )


def test_a_listing_not_proven_complete_raises_before_anything_is_done(env: Env) -> None:
    """A listing that does not reach its end page within the cap (10 x the pages the journal
    suggests + 100: 110 here) is no evidence: the missing copy is not marked, no meta written."""
    env.fake.page_size = 1
    for i in range(111):
        env.fake.add(f"x{i:03d}.txt", 5, T0 - 200)
    env.synced("b.txt", "file_lost")
    before = env.state()
    with pytest.raises(IncompleteListing, match="within 110 pages"):
        Reconciler(env.ctx, env.gate, 0.5).run()
    pages = [c for c in env.fake.calls if c[0] == "list_page"]
    expected = (110, ("list_page", "limit=1000", "page=109"), before, None, None)
    assert expected == (
        len(pages), pages[-1], env.state(), env.journal.get_meta(LISTED_META),
        env.journal.get_meta("listing_pages"),
    )


def test_start_up_with_a_recent_listing_sends_one_probe(env: Env) -> None:
    """A full pass 100 s ago, no intents: one `limit=1` request, and the next pass is due in
    the rest of the interval."""
    env.synced("a.txt", env.fake.add("a.txt", 5, T0 - 200).id)
    env.journal.set_meta(LISTED_META, stamp(T0 - 100))
    due = Reconciler(env.ctx, env.gate, 0.5).start_up(3600.0)
    expected = (3500.0, [("list_page", "limit=1")], stamp(T0 - 100))
    assert expected == (due, env.fake.calls, env.journal.get_meta(LISTED_META))


def test_start_up_with_an_open_intent_and_a_listing_ending_in_its_window_is_a_full_pass(
    env: Env,
) -> None:
    """Uploads in flight at the last stop: the newest pages are read for their copies; a
    listing that ends before the window is enough is complete, so it is reconciled whole (the
    intent without a copy is spent) and recorded as the full pass."""
    stat = env.write("c.txt", b"lost!")
    env.journal.add_intent("c.txt", "c.txt", stat, T0 - 50)
    env.journal.set_meta(LISTED_META, stamp(T0 - 100))
    due = Reconciler(env.ctx, env.gate, 0.5).start_up(3600.0)
    expected = (3600.0, [("list_page", "limit=1000")], stamp(T0), [])
    assert expected == (due, env.fake.calls, env.journal.get_meta(LISTED_META),
                        env.journal.intents())


def test_start_up_probe_of_an_empty_workspace_forces_the_full_pass(env: Env) -> None:
    """The probe lists nothing while the journal holds copies: list everything at once."""
    env.synced("a.txt", "file_elsewhere")
    env.journal.set_meta(LISTED_META, stamp(T0 - 100))
    due = Reconciler(env.ctx, env.gate, 0.5).start_up(3600.0)
    expected = (3600.0, [("list_page", "limit=1"), *LISTING], "missing")
    row = env.journal.get("a.txt")
    assert expected == (due, env.fake.calls, row.gone if row else None)
