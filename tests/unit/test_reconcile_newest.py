"""Open intents resolved from the newest pages, and the full pass's interval stretched to the
budget share: pure rules, then Reconciler.start_up against FakeFiles and a real journal."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from syncd.engine.context import SyncContext
from syncd.engine.deletes import DeleteGate
from syncd.engine.dirtyqueue import DirtyQueue
from syncd.engine.intents import WINDOW_MAX_PAGES, Window
from syncd.engine.plan import full_pass_interval
from syncd.engine.reconcile import (
    INTERVAL_META,
    LISTED_META,
    PAGES_META,
    Reconciler,
)
from syncd.errors import IncompleteListing
from syncd.journal import Journal
from syncd.model import FileRow, LocalStat, Synced, stamp
from syncd.remote.client import RemoteFile
from tests.fakes import Clock, FakeFiles, fake_context

T0 = 1_700_000_000.0
MTIME = 1_699_990_000 * 10**9
INTERVAL = 3600.0


def remote(created: float, file_id: str = "file_x") -> RemoteFile:
    return RemoteFile(file_id, "x.txt", "text/plain", 5, datetime.fromtimestamp(created, UTC))


# --- the pure rules ----------------------------------------------------------------------------


def test_the_window_is_enough_once_a_page_ends_older_than_the_intent_less_the_slack() -> None:
    """Intent at T0: with 60 s of slack, a page ending at T0 - 60 is not enough (a copy may be
    stamped exactly then), one ending at T0 - 61 is; an empty page proves nothing."""
    window = Window(T0)
    verdicts = [window.read([remote(T0 + 5), remote(T0 + 5), remote(T0 - 60)], 60.0),
                window.read([], 60.0), window.read([remote(T0 - 61)], 60.0)]
    assert ([False, False, True], True, 3) == (verdicts, window.ordered, window.pages)


def test_a_created_at_that_increases_across_pages_makes_the_window_unordered() -> None:
    window = Window(T0)
    verdicts = [window.read([remote(T0 + 9), remote(T0 + 1)], 60.0),
                window.read([remote(T0 + 2), remote(T0 - 900)], 60.0)]
    assert ([False, False], False) == (verdicts, window.ordered)


@pytest.mark.parametrize(
    ("files", "per_minute", "expected"),
    [
        (10_000, 90, 600.0),  # 10 pages: 133 s of listing budget, under the base interval
        (100_000, 90, 60 * 100 / 4.5),  # 100 pages: 22 min
        (1_000_000, 90, 60 * 1000 / 4.5),  # 1000 pages: 3.7 h
        (10_000, 475, 600.0),  # learned: 500/min announced, 95% of it
        (100_000, 475, 600.0),
        (1_000_000, 475, 60 * 1000 / 23.75),  # 42 min
    ],
)
def test_the_full_pass_interval_stretches_to_five_percent_of_the_budget(
    files: int, per_minute: float, expected: float
) -> None:
    """interval = max(base, pages / (share x requests per minute)) minutes, 1000 files a page."""
    pages = -(-files // 1000)
    actual = full_pass_interval(600.0, pages, 0.05, per_minute)
    assert expected == pytest.approx(actual)
    assert pages / (actual / 60 * per_minute) <= 0.05 + 1e-12  # the share listing spends


def test_no_pages_or_no_rate_leave_the_interval_as_configured() -> None:
    assert [600.0, 600.0] == [full_pass_interval(600.0, 0, 0.05, 90),
                              full_pass_interval(600.0, 9, 0.05, 0)]


# --- against FakeFiles -----------------------------------------------------------------------


class Env:
    def __init__(self, root: Path, fake: FakeFiles, journal: Journal, queue: DirtyQueue,
                 gate: DeleteGate, ctx: SyncContext) -> None:
        self.root, self.fake, self.journal, self.queue, self.gate, self.ctx = (
            root, fake, journal, queue, gate, ctx)

    def lost_upload(self, path: str = "c.txt", started: float = T0 - 50,
                    copy_at: float | None = T0 - 49) -> RemoteFile | None:
        """An intent for ``path`` begun at ``started``, and its copy (if ``copy_at``)."""
        file = self.root / path
        file.write_bytes(b"lost!")
        os.utime(file, ns=(MTIME, MTIME))
        self.journal.add_intent(path, path, LocalStat.from_stat(file.stat()), started)
        return None if copy_at is None else self.fake.add(path, 5, copy_at)

    def synced(self, path: str, file_id: str) -> Synced:
        copy = Synced(file_id, path, "ab" * 32, 5, MTIME, 7, "text/plain", T0 - 1000)
        self.journal.commit_upload(path, copy, None)
        return copy

    def adopted(self, path: str = "c.txt") -> str | None:
        row = self.journal.get(path)
        return row.synced.file_id if row and row.synced else None

    def pass_records(self) -> tuple[str | None, ...]:
        """What only a full pass writes."""
        j = self.journal
        return (j.get_meta(LISTED_META), j.get_meta(PAGES_META), j.get_meta("foreign_files"),
                j.get_meta("last_reconcile"))

    def start_up(self) -> float:
        return Reconciler(self.ctx, self.gate, 0.5).start_up(INTERVAL)

    def pages(self) -> int:
        return sum(1 for c in self.fake.calls if c[0] == "list_page")


@pytest.fixture
def env(tmp_path: Path) -> Iterator[Env]:
    """A journal whose last full pass began 100 s ago (2 pages), and a service listing newest
    first."""
    fake = FakeFiles(clock := Clock(T0))
    fake.newest_first = True
    with fake_context(tmp_path, clock, fake) as ctx:
        ctx.journal.set_meta(LISTED_META, stamp(T0 - 100))
        ctx.journal.set_meta(PAGES_META, "2")
        yield Env(ctx.root, fake, ctx.journal, ctx.queue, ctx.gate, ctx)


RECORDS = (stamp(T0 - 100), "2", None, None)


def test_a_lost_upload_is_adopted_from_the_newest_page_alone(env: Env) -> None:
    """2,500 older files, 1000 a page: the first page holds the copy and ends older than the
    intent less the margin, so one request adopts it. Nothing else is decided from that page:
    b.txt's copy, not on it, is not marked gone, and the full pass's records are untouched."""
    for i in range(2500):
        env.fake.add(f"old{i:04d}.txt", 5, T0 - 10_000 + i)
    b = env.synced("b.txt", "file_notlisted")
    copy = env.lost_upload()
    assert copy is not None
    due = env.start_up()
    expected = (INTERVAL - 100, [("list_page", "limit=1000")], copy.id, [],
                FileRow("b.txt", b, None), RECORDS, (0, 0))
    assert expected == (due, env.fake.calls, env.adopted(), env.journal.intents(),
                        env.journal.get("b.txt"), env.pass_records(), env.queue.depth())


def test_a_retried_post_leaves_two_copies_in_the_window_the_older_is_deleted(env: Env) -> None:
    for i in range(30):
        env.fake.add(f"old{i:02d}.txt", 5, T0 - 5000 + i)
    older = env.lost_upload()
    newest = env.fake.add("c.txt", 5, T0 - 48)
    assert older is not None
    env.start_up()
    expected = ([("list_page", "limit=1000"), ("delete", older.id)], newest.id, [], [])
    assert expected == (env.fake.calls, env.adopted(), env.journal.intents(),
                        env.journal.tombstones())


@pytest.mark.parametrize(("skew", "pages"), [(0.0, 1), (120.0, 1), (-120.0, 2)],
                         ids=["in-step", "service-ahead", "service-120s-behind"])
def test_the_window_reaches_back_to_the_intent_less_the_skew_margin(
    env: Env, skew: float, pages: int
) -> None:
    """Intent at T0 - 50, two files a page, the first page ending at T0 - 111: 60 s of margin
    makes that page enough; a service whose clock runs 120 s behind ours widens the margin to
    180 s (one ahead does not narrow it), so a second page is read."""
    env.fake.page_size = 2
    env.fake.skew = skew
    for created in (T0 - 900, T0 - 800, T0 - 700, T0 - 300, T0 - 111):
        env.fake.add(f"x{created}.txt", 5, created)
    copy = env.lost_upload()
    assert copy is not None
    env.start_up()
    assert (pages, copy.id, [], RECORDS) == (
        env.pages(), env.adopted(), env.journal.intents(), env.pass_records())


@pytest.mark.parametrize(
    ("newest_first", "created"),
    [(False, (T0 - 300, T0 - 200, T0 - 100)), (True, (T0 - 300, T0 - 60, T0 - 10))],
    ids=["oldest-first-within-a-page", "newer-at-the-top-of-page-2"],
)
def test_a_listing_that_is_not_newest_first_is_paged_to_its_end_as_a_full_pass(
    env: Env, newest_first: bool, created: tuple[float, ...]
) -> None:
    """A created_at newer than the file before it (within a page, or from one page to the
    next): the order cannot be trusted, so the pages already read are kept and the listing is
    paged on to its end, then reconciled whole: the copy is adopted, b.txt's unlisted copy is
    marked gone, the full pass recorded; one info line says why."""
    env.fake.newest_first = newest_first
    env.fake.page_size = 2
    env.fake.add("x0.txt", 5, created[0])
    copy = env.lost_upload(copy_at=T0 - 40)  # newest first: [T0-10, T0-60] [T0-40 (!), T0-300]
    for i, at in enumerate(created[1:], start=1):
        env.fake.add(f"x{i}.txt", 5, at)
    env.synced("b.txt", "file_notlisted")
    assert copy is not None
    with capture_logs() as logs:
        due = env.start_up()
    why = [e.get("reason") for e in logs if e["event"] == "listing the whole workspace"]
    row = env.journal.get("b.txt")
    expected = (INTERVAL, 2, copy.id, "missing", (stamp(T0), "2", "3", stamp(T0)),
                ["the listing is not newest first"])
    assert expected == (due, env.pages(), env.adopted(), row.gone if row else None,
                        env.pass_records(), why)


def test_a_window_deeper_than_its_cap_goes_on_as_a_full_pass(env: Env) -> None:
    """Every file newer than the intent's window, one a page: after WINDOW_MAX_PAGES pages the
    listing is paged on to its end (25 pages, no page read twice) and reconciled whole."""
    env.fake.page_size = 1
    copy = env.lost_upload()
    for i in range(24):
        env.fake.add(f"n{i:02d}.txt", 5, T0 - 45 + i)
    assert copy is not None
    with capture_logs() as logs:
        env.start_up()
    why = [e.get("reason") for e in logs if e["event"] == "listing the whole workspace"]
    reason = f"the lost uploads may lie beyond {WINDOW_MAX_PAGES} pages"
    expected = (25, copy.id, stamp(T0), [reason])
    assert expected == (env.pages(), env.adopted(), env.journal.get_meta(LISTED_META), why)


def test_short_pages_are_read_until_the_window_is_enough(env: Env) -> None:
    """A server that hands out one file a page whatever the limit: pages are read until one
    ends older than T0 - 110 (the third), not to the end of the listing."""
    env.fake.page_size = 1
    for created in (T0 - 9000, T0 - 8000, T0 - 120, T0 - 80):
        env.fake.add(f"x{created}.txt", 5, created)
    copy = env.lost_upload()
    assert copy is not None
    env.start_up()
    assert (3, copy.id, RECORDS) == (env.pages(), env.adopted(), env.pass_records())


def test_a_page_that_proves_nothing_raises_and_changes_nothing(env: Env) -> None:
    """A page without an end marker (the client raises IncompleteListing) ends the start-up
    reconcile before anything is decided: the intent stays open, the copy is not adopted."""
    env.lost_upload()
    env.fake.fail("list_page", IncompleteListing("a page without next_page or has_more"))
    with pytest.raises(IncompleteListing):
        env.start_up()
    assert (1, None, 1, RECORDS) == (
        env.pages(), env.adopted(), len(env.journal.intents()), env.pass_records())


def test_a_hostile_date_ends_the_window_early_and_the_intent_stays_open(env: Env) -> None:
    """The newest page claims a file from 1970: the window stops there, so the copy on the next
    page is not seen. Nothing is decided from its absence: the intent stays open, nothing is
    deleted or marked; the next full pass finds and adopts the copy."""
    env.fake.page_size = 1
    copy = env.lost_upload()
    env.fake.add("liar.txt", 5, 0.0)
    assert copy is not None
    env.start_up()
    before = (env.pages(), env.adopted(), len(env.journal.intents()), len(env.fake.files),
              env.pass_records())
    Reconciler(env.ctx, env.gate, 0.5).run()
    assert ((1, None, 1, 2, RECORDS), copy.id, []) == (
        before, env.adopted(), env.journal.intents())


def test_an_intent_whose_copy_is_older_than_the_window_stays_open_until_a_full_pass(
    env: Env,
) -> None:
    """The only file named like the intent was created 450 s before it began (outside any
    margin): not its copy, and the window, which stops above it, does not look for it. The
    intent stays open (a window never proves a copy absent); the next full pass spends it and
    leaves the file alone, as foreign."""
    env.fake.add("c.txt", 5, T0 - 500)
    for i in range(5):
        env.fake.add(f"n{i}.txt", 5, T0 - 200 + i)
    env.lost_upload(copy_at=None)
    env.start_up()
    after_window = (env.pages(), len(env.journal.intents()), len(env.fake.files),
                    env.pass_records())
    result = Reconciler(env.ctx, env.gate, 0.5).run()
    assert ((1, 1, 6, RECORDS), [], 6, 6) == (
        after_window, env.journal.intents(), len(env.fake.files), result.foreign)


def test_the_window_leaves_our_copies_and_deletions_alone(env: Env) -> None:
    """A file in the window that matches the intent's name and size but is a copy the journal
    holds (or a tombstone) is ours, never adopted again or deleted as an orphan."""
    env.fake.add("old.txt", 5, T0 - 9000)
    held = env.fake.add("c.txt", 5, T0 - 45)
    env.synced("c.txt", held.id)
    env.lost_upload(started=T0 - 50, copy_at=None)
    env.start_up()
    assert ([("list_page", "limit=1000")], held.id, 1) == (
        env.fake.calls, env.adopted(), len(env.journal.intents()))


def test_start_up_stretches_the_interval_to_the_budget_share(env: Env) -> None:
    """1000 pages at 90 requests a minute: a full pass every 13,333 s, not every 3600 s, so a
    start 4000 s after the last one probes once; the interval is recorded for status."""
    env.journal.set_meta(PAGES_META, "1000")
    env.journal.set_meta(LISTED_META, stamp(T0 - 4000))
    env.fake.add("a.txt", 5, T0 - 9000)
    due = env.start_up()
    stretched = 60 * 1000 / (0.05 * 90)
    assert (pytest.approx(stretched - 4000), [("list_page", "limit=1")], stretched) == (
        due, env.fake.calls, float(env.journal.get_meta(INTERVAL_META) or "nan"))


def test_the_interval_follows_the_learned_budget(env: Env) -> None:
    env.journal.set_meta(PAGES_META, "1000")
    env.fake.budget = 475.0
    reconciler = Reconciler(env.ctx, env.gate, 0.5, budget_share=0.1)
    assert pytest.approx(60 * 1000 / 47.5) == reconciler.full_pass_interval(600.0)


def test_a_sha_is_kept_for_the_adopted_copy(env: Env) -> None:
    """The adopted row is the local file as the intent sent it (its sha256)."""
    env.fake.add("old.txt", 5, T0 - 9000)
    env.lost_upload()
    env.start_up()
    row = env.journal.get("c.txt")
    assert hashlib.sha256(b"lost!").hexdigest() == (row.synced.sha256 if row and row.synced
                                                    else None)
