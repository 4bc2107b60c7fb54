"""Against the emulator: a restart with an upload in flight reads only the newest pages for its
copy (requests counted at the emulator), falls back to the whole listing when the listing is
not newest first, and status shows the full pass's interval stretched to the budget share."""

from __future__ import annotations

from pathlib import Path

import pytest

from syncd.cli.report import status_data
from syncd.engine.reconcile import LISTED_META
from syncd.journal import Journal
from syncd.model import rfc3339, stamp
from syncd.remote.client import RemoteFile
from syncd.remote.protocol import BETA_VERSION, GA_VERSION
from tests.e2e.test_sync_versions import Clock, journal_rows, tree
from tests.syncenv import Bench, bench, sha

T0 = 1_800_000_000.0
INTERVAL = 3600.0


def lost_upload(b: Bench, clock: Clock) -> RemoteFile:
    """late.txt uploaded by another client (its answer "lost" to syncd): an open intent begun
    5 s before the copy was stored."""
    b.write("late.txt", b"uploaded, answer lost")
    with b.client() as other:
        uploaded = other.upload(b.root / "late.txt", "late.txt", "text/plain")
    with b.daemon() as daemon:
        daemon.journal.add_intent("late.txt", "late.txt", uploaded.local, clock() - 5)
    return uploaded.file


def journal_meta(b: Bench, key: str) -> str | None:
    with Journal.open_readonly(b.tmp / "state" / "journal.db") as journal:
        return journal.get_meta(key)


@pytest.mark.parametrize("version", [GA_VERSION, BETA_VERSION])
def test_a_restart_with_an_upload_in_flight_reads_only_the_newest_page(
    tmp_path: Path, version: str
) -> None:
    """250 synced files and 2 foreign ones, 100 a page: the full listing is 3 requests. With one
    intent open, its copy is on the newest page, which ends long before the intent began: the
    restart costs 1 list request in all, adopts the copy, uploads nothing, and leaves the last
    full pass's time as it was."""
    clock = Clock(T0)
    with bench(tmp_path, clock=clock, api_version=version, page_max=100) as b:
        b.clock = clock
        tree(b, 250)
        assert 0 == b.sync_once(settle_seconds=0, reconcile_interval_seconds=INTERVAL)
        clock.now += 1000
        copy = lost_upload(b, clock)
        clock.now += 10
        b.emu.reset_stats()
        assert 0 == b.sync_once(settle_seconds=0, reconcile_interval_seconds=INTERVAL)
        assert {"list": 1} == b.counts()
        assert ("late.txt", copy.id) in journal_rows(b)
        assert stamp(T0) == journal_meta(b, LISTED_META)
        with Journal.open_readonly(b.tmp / "state" / "journal.db") as journal:
            assert [] == journal.intents()
        b.assert_converged()


def test_a_listing_not_newest_first_falls_back_to_every_page(tmp_path: Path) -> None:
    """A foreign file stored after the lost upload but stamped earlier (the service's clock
    stepped back) tops the listing: created_at increases from it to the copy, so the restart
    pages on to the end (3 requests, no page read twice) and records a full pass."""
    clock = Clock(T0)
    with bench(tmp_path, clock=clock, page_max=100) as b:
        b.clock = clock
        tree(b, 250)
        assert 0 == b.sync_once(settle_seconds=0, reconcile_interval_seconds=INTERVAL)
        clock.now = T0 + 2000
        copy = lost_upload(b, clock)
        clock.now = T0 + 1000
        data = b"a file from another program"
        b.foreign_ids[b.emu.seed_foreign("stepped-back.txt", data)] = sha(data)
        clock.now = T0 + 2100
        b.emu.reset_stats()
        assert 0 == b.sync_once(settle_seconds=0, reconcile_interval_seconds=INTERVAL)
        assert {"list": 3} == b.counts()
        assert ("late.txt", copy.id) in journal_rows(b)
        assert stamp(T0 + 2100) == journal_meta(b, LISTED_META)
        b.assert_converged()


def test_status_shows_the_full_pass_stretched_to_the_budget_share(tmp_path: Path) -> None:
    """At the bench's 60,000 requests a minute and a share of one millionth, listing may take
    one request every 1000 s: the first pass (1 page, before the uploads) puts the next one
    1000 s later, not the configured 600 s; that one lists 3 pages, so the next is 3000 s
    after it, as the daemon scheduled them."""
    clock = Clock(T0)
    with bench(tmp_path, clock=clock, page_max=100) as b:
        b.clock = clock
        tree(b, 250)
        seen = []
        for _ in range(2):
            assert 0 == b.sync_once(settle_seconds=0, reconcile_budget_share=1e-6)
            data = status_data(b.settings(reconcile_budget_share=1e-6))
            seen.append((data["next_full_pass"], data["full_pass_requests"]))
            clock.now += 1000
    assert [(rfc3339(T0 + 1000), 1), (rfc3339(T0 + 4000), 3)] == seen
