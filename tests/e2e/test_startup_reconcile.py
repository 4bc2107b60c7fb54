"""Start-up reconcile that costs what changed: the whole listing only when one is owed (no
complete listing yet, uploads in flight, a refusal, the periodic pass due, or an empty answer
while the journal holds copies); otherwise one ``limit=1`` request proves key and workspace."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from syncd.cli.report import status_data
from syncd.engine import oneshot
from syncd.engine.mirror import Options
from syncd.engine.plan import full_listing_owed
from syncd.journal import Journal
from syncd.model import rfc3339
from tests.e2e.test_rebuild import cli
from tests.e2e.test_sync_versions import Clock, journal_rows, live_files, tree
from tests.syncenv import API_KEY, Bench, bench

T0 = 1_800_000_000.0
INTERVAL = 600.0


@pytest.mark.parametrize(
    ("last", "now", "refused", "expected"),
    [
        (None, T0, False, "no complete listing recorded yet"),
        (T0, T0 + 10, True, "the last reconcile was refused"),
        (T0, T0 + INTERVAL, False, "the periodic full pass is due"),
        (T0, T0 - 5, False, "the periodic full pass is due"),  # the clock went back
        (T0, T0 + INTERVAL - 1, False, None),
        (T0, T0, False, None),
    ],
    ids=["never", "refused", "due", "clock-back", "almost-due", "just-listed"],
)
def test_the_start_up_lists_only_when_a_listing_is_owed(
    last: float | None, now: float, refused: bool, expected: str | None
) -> None:
    """Uploads in flight at the stop are not a reason: their copies are looked for in the
    newest pages (test_an_upload_in_flight_at_stop_is_found_by_a_full_listing)."""
    assert expected == full_listing_owed(last, now, INTERVAL, refused)


class Recorder(httpx.BaseTransport):
    """The real emulator behind a transport that records each list request's ``limit``."""

    def __init__(self) -> None:
        self.inner = httpx.HTTPTransport()
        self.limits: list[str | None] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if request.method == "GET" and request.url.path == "/v1/files":
            self.limits.append(request.url.params.get("limit"))
        return self.inner.handle_request(request)


def recorded(b: Bench) -> Recorder:
    recorder = Recorder()
    b.client_options = {"transport": recorder}
    return recorder


def test_a_restart_with_nothing_changed_costs_one_request(tmp_path: Path) -> None:
    """300 synced files over 3 pages: the next start sends one list request of limit=1, and
    the janitor's first full pass is due when the last one's interval ends."""
    clock = Clock(T0)
    with bench(tmp_path, clock=clock, page_max=100) as b:
        b.clock = clock
        tree(b, 300)
        assert 0 == b.sync_once(settle_seconds=0)
        recorder = recorded(b)
        clock.now += 100
        b.emu.reset_stats()
        with b.daemon(settle_seconds=0, reconcile_interval_seconds=INTERVAL) as daemon:
            due = daemon.reconciler.start_up(INTERVAL)
        assert ({"list": 1}, ["1"], INTERVAL - 100) == (b.counts(), recorder.limits, due)
        assert 0 == b.sync_once(settle_seconds=0)
        assert {"list": 2} == b.counts()


def test_the_periodic_pass_due_at_start_lists_every_page(tmp_path: Path) -> None:
    clock = Clock(T0)
    with bench(tmp_path, clock=clock, page_max=100) as b:
        b.clock = clock
        tree(b, 250)
        assert 0 == b.sync_once(settle_seconds=0)
        clock.now += INTERVAL
        b.emu.reset_stats()
        assert 0 == b.sync_once(settle_seconds=0, reconcile_interval_seconds=INTERVAL)
        assert {"list": 3} == b.counts()  # 250 ours + 2 foreign, 100 a page


def test_an_upload_in_flight_at_stop_is_found_by_a_full_listing(tmp_path: Path) -> None:
    """An intent left open (an answer lost as syncd stopped): the start lists everything, adopts
    the copy the service holds and ends the intent; nothing is uploaded twice."""
    with bench(tmp_path, page_max=100) as b:
        tree(b, 150)
        assert 0 == b.sync_once(settle_seconds=0)
        b.write("late.txt", b"uploaded, answer lost")
        with b.client() as other:
            uploaded = other.upload(b.root / "late.txt", "late.txt", "text/plain")
        with b.daemon() as daemon:
            daemon.journal.add_intent("late.txt", "late.txt", uploaded.local, b.clock() - 5)
        b.emu.reset_stats()
        assert 0 == b.sync_once(settle_seconds=0)
        assert {"list": 2} == b.counts()
        assert ("late.txt", uploaded.file.id) in journal_rows(b)
        with Journal.open_readonly(b.tmp / "state" / "journal.db") as journal:
            assert [] == journal.intents()
        b.assert_converged()


def test_an_empty_workspace_behind_a_quiet_start_gets_the_full_pass(tmp_path: Path) -> None:
    """Every file gone remotely (foreign ones too): the probe lists nothing while the journal
    holds copies, so the full pass runs at once and refuses to believe it; nothing changes."""
    clock = Clock(T0)
    with bench(tmp_path, clock=clock) as b:
        b.clock = clock
        tree(b, 20)
        assert 0 == b.sync_once(settle_seconds=0)
        rows = journal_rows(b)
        with b.client() as other:
            for file_id in live_files(b):
                assert other.delete(file_id)
        clock.now += 10  # past the emulator's lingering of deleted files in listings
        b.emu.reset_stats()
        with b.daemon(settle_seconds=0) as daemon:
            assert 1 == oneshot.sync_once(daemon)
            assert ["the listing lacks"] == [p[:17] for p in daemon.problems()]
        assert ({"list": 2}, rows) == (b.counts(), journal_rows(b))


def test_a_refused_reconcile_is_listed_again_at_the_next_start(tmp_path: Path) -> None:
    clock = Clock(T0)
    with bench(tmp_path, clock=clock) as b:
        b.clock = clock
        tree(b, 20)
        assert 0 == b.sync_once(settle_seconds=0)
        with b.client() as other:
            for _path, file_id in journal_rows(b):
                assert other.delete(str(file_id))
        clock.now += INTERVAL
        assert 1 == b.sync_once(settle_seconds=0)  # due: listed, and refused
        clock.now += 10
        b.emu.reset_stats()
        assert 1 == b.sync_once(settle_seconds=0)  # not due, but refused last time: listed
        assert {"list": 1} == b.counts()  # one page: the 2 foreign files, not the probe
        assert 0 == b.sync_once(Options(allow_mass_reupload=True), settle_seconds=0)
        b.assert_converged()


def test_sync_full_reconcile_lists_the_whole_workspace(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", API_KEY)
    with bench(tmp_path, page_max=100) as b:
        tree(b, 120)
        assert 0 == b.sync_once()
        b.emu.reset_stats()
        code, _, err = cli(b, capsys, "sync", "--full-reconcile")
        assert (0, {"list": 2}) == (code, b.counts()), err
        b.emu.reset_stats()
        code, _, err = cli(b, capsys, "sync")
        assert (0, {"list": 1}) == (code, b.counts()), err



def test_status_shows_when_the_next_full_pass_runs_and_its_cost(tmp_path: Path) -> None:
    """The cost is what the last complete listing paged: 1 page before the uploads, 2 once 150
    files and 2 foreign ones are listed at 100 a page."""
    clock = Clock(T0)
    with bench(tmp_path, clock=clock, page_max=100) as b:
        b.clock = clock
        settings = b.settings()
        b.daemon().close()  # a journal, no listing yet
        seen = [status_data(settings)]
        tree(b, 150)
        assert 0 == b.sync_once(settle_seconds=0)
        seen.append(status_data(settings))
        clock.now += 60
        assert 0 == b.sync_once(Options(full_reconcile=True), settle_seconds=0)
        seen.append(status_data(settings))
    expected = [(None, None), (rfc3339(T0 + INTERVAL), 1), (rfc3339(T0 + 60 + INTERVAL), 2)]
    assert expected == [(d["next_full_pass"], d["full_pass_requests"]) for d in seen]
