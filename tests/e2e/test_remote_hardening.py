"""A hostile or broken service: its text, its clock, its endless listings, and slow wipes."""

from __future__ import annotations

import email.utils
import os
import time
from collections.abc import Callable
from itertools import islice
from pathlib import Path

import httpx
import pytest

from syncd import logs
from syncd.emulator.faults import Faults
from syncd.engine import oneshot
from syncd.engine.deletes import delete_owed
from syncd.engine.mirror import Mirror
from syncd.errors import IncompleteListing
from syncd.journal import Journal
from syncd.remote.client import FilesClient
from syncd.remote.pacer import Pacer
from tests.conftest import Recorder
from tests.syncenv import API_KEY, bench
from tests.unit.test_client import FILE, client_with

pytestmark = pytest.mark.timeout(120)
HOSTILE = f"bad key {API_KEY}\x1b[31m\nERROR forged line\u202e" + "x" * 2000
NOW = 1_700_000_000.0


def hostile_error(status: int) -> httpx.Response:
    """An error answer whose message carries the key, control characters and a lot of text."""
    return httpx.Response(status, json={"type": "error", "error": {
        "type": "invalid_request_error" if status < 500 else "api_error", "message": HOSTILE}})


def assert_clean(text: str) -> None:
    """No key, no control or format character, at most 300 characters."""
    bad = [c for c in text if ord(c) < 32 or 0x7F <= ord(c) < 0xA0 or c == "\u202e"]
    expected = (False, [], True, True)
    assert expected == (API_KEY in text, bad, len(text) <= 300, "<redacted>" in text)


def ga_page(ids: list[str], next_page: str | None) -> httpx.Response:
    return httpx.Response(200, json={"data": [dict(FILE, id=i) for i in ids],
                                     "next_page": next_page})


# -- 3: server text is redacted before it is stored -------------------------------------------


def test_upload_error_text_is_stored_redacted_escaped_and_capped(tmp_path: Path) -> None:
    """A 400 whose message holds the key, escapes and 2,000 characters is stored cleaned."""
    logs.add_secret(API_KEY)

    def handler(request: httpx.Request) -> httpx.Response:
        request.read()
        if request.method == "GET":
            return ga_page([], None)
        return hostile_error(400)

    with bench(tmp_path) as b:
        b.write("a.txt", b"alpha")
        client = client_with(handler, Recorder())
        with Mirror(b.settings(), client=client) as daemon:
            assert 1 == oneshot.sync_once(daemon)
            [row] = daemon.journal.errors()
    assert row.failure is not None
    assert_clean(row.failure.message)
    assert "\\x1b[31m\\nERROR forged line\\u202e" in row.failure.message


def test_delete_error_text_is_stored_redacted_in_the_tombstone(tmp_path: Path) -> None:
    """A failed DELETE keeps its tombstone with the server's message cleaned."""
    logs.add_secret(API_KEY)
    client = client_with(lambda request: hostile_error(500), Recorder(), max_retries=0)
    root = tmp_path / "root"
    root.mkdir()
    with Journal.open(tmp_path / "journal.db", str(root), "https://files.test") as journal:
        journal.add_tombstone("file_1", "a.txt", "a.txt", "removed")
        assert False is delete_owed(client, journal, "file_1", lambda: NOW)
        [tomb] = journal.tombstones()
    assert_clean(tomb.last_error)


# -- 7: reconcile never forgets a copy committed after its snapshot ---------------------------


def test_upload_committed_between_snapshot_and_apply_survives(tmp_path: Path) -> None:
    """A missing copy is marked by (path, file_id): a worker's newer upload is kept as it is."""
    empty = client_with(lambda request: ga_page([], None), Recorder())
    with bench(tmp_path) as b:
        b.write("a.txt", b"alpha")
        with b.daemon() as daemon:
            assert 0 == oneshot.sync_once(daemon)
            old = daemon.journal.get("a.txt")
            assert old is not None and old.synced is not None
            os.utime(b.write("a.txt", b"alpha, edited meanwhile"), (NOW, NOW))  # settled
            held = daemon.queue.held

            def worker_commits_then_held() -> frozenset[str]:
                # Called by reconcile after its snapshot and before its apply.
                daemon.syncer.process("a.txt")
                return held()

            daemon.queue.held = worker_commits_then_held  # type: ignore[method-assign]
            result = daemon.reconciler.run(empty)  # a complete listing that lacks a.txt
            daemon.queue.held = held  # type: ignore[method-assign]
            row = daemon.journal.get("a.txt")
            assert row is not None and row.synced is not None
            expected = ([old.synced.file_id], True, None)
            assert expected == ([m.file_id for m in result.missing],
                                row.synced.file_id != old.synced.file_id, row.gone)
            assert 0 == oneshot.sync_once(daemon)
        b.assert_converged()


# -- 9: the service's clock ---------------------------------------------------------------------


def dated(seconds_behind: float, local: float = NOW) -> Callable[[httpx.Request], httpx.Response]:
    """A handler whose `date` header runs ``seconds_behind`` the local clock."""
    def handler(request: httpx.Request) -> httpx.Response:
        date = email.utils.formatdate(local - seconds_behind, usegmt=True)
        return httpx.Response(200, headers={"date": date},
                              json={"data": [], "next_page": None})
    return handler


def test_client_learns_the_clock_skew_from_the_date_header(recorder: Recorder) -> None:
    """Date has 1 s resolution: each reading is the middle of its second, here exact."""
    client = client_with(dated(120.5), recorder, clock=lambda: NOW)
    before = client.clock_skew()
    for _ in range(3):
        client.list_page()
    expected = (0.0, -120.5)
    assert expected == (before, client.clock_skew())


def test_client_ignores_a_missing_or_garbled_date(recorder: Recorder) -> None:
    """No `date`, or one that does not parse, teaches nothing."""
    answers = iter([httpx.Response(200, json={"data": [], "next_page": None}),
                    httpx.Response(200, headers={"date": "yesterday, around noon"},
                                   json={"data": [], "next_page": None})])
    client = client_with(lambda request: next(answers), recorder, clock=lambda: NOW)
    client.list_page()
    client.list_page()
    assert 0.0 == client.clock_skew()


def test_emulator_dates_its_answers_by_its_own_clock(tmp_path: Path) -> None:
    """The emulator's `date` header follows its injected clock (one header, not uvicorn's too)."""
    with bench(tmp_path, clock=lambda: NOW) as b:
        response = httpx.get(b.emu.base_url + "/v1/files", headers={
            "x-api-key": API_KEY, "anthropic-version": "2026-10-21"})
    expected = [email.utils.formatdate(NOW, usegmt=True)]
    assert expected == response.headers.get_list("date")


def test_lost_uploads_are_matched_with_the_service_clock_120s_behind(tmp_path: Path) -> None:
    """Local clock 120 s ahead, 40% lost responses: every lost copy is found, none stays."""
    with bench(tmp_path, faults=Faults(lose_response_rate=0.4),
               clock=lambda: time.time() - 120) as b:
        for i in range(20):
            b.write(f"d/f{i}.txt", b"file %d" % i)
        b.sync_once()
        b.emu.set_faults(Faults())
        assert 0 == b.sync_once()
        assert 0 < b.emu.stats()["fault:lose_response"]
        b.assert_converged()


# -- 10: a listing that never ends --------------------------------------------------------------


def endless(calls: list[int], end_after: int = 1000) -> Callable[[httpx.Request], httpx.Response]:
    """A listing with a fresh cursor on every page (it ends only after ``end_after`` pages)."""
    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(1)
        n = len(calls)
        return ga_page([f"file_x{n}"], None if n >= end_after else f"page_{n}")
    return handler


def test_iter_files_fails_a_listing_longer_than_max_pages(recorder: Recorder) -> None:
    """A never-ending listing stops at max_pages with IncompleteListing naming the cap."""
    calls: list[int] = []
    client = client_with(endless(calls), recorder)
    with pytest.raises(IncompleteListing) as caught:
        list(islice(client.iter_files(limit=2, max_pages=5), 2000))
    assert (5, True) == (len(calls), "5 pages" in str(caught.value))


def test_reconcile_caps_a_listing_at_ten_times_the_last_complete_one(tmp_path: Path) -> None:
    """After a 1-page listing, reconcile gives up on an endless one after 10 x 1 + 100 pages."""
    calls: list[int] = []
    with bench(tmp_path) as b:
        b.write("a.txt", b"alpha")
        with b.daemon() as daemon:
            assert 0 == oneshot.sync_once(daemon)  # one complete page
            before = daemon.journal.get("a.txt")
            hostile = FilesClient(API_KEY, "https://files.test", sleep=lambda s: None,
                                  pacer=Pacer(60000, burst=100),
                                  transport=httpx.MockTransport(endless(calls)))
            with pytest.raises(IncompleteListing) as caught:
                daemon.reconciler.run(hostile)
            expected = (110, True, before)
            assert expected == (len(calls), "110 pages" in str(caught.value),
                                daemon.journal.get("a.txt"))


# -- 16: a slow wipe is still a mass delete -------------------------------------------------------


def test_a_slow_wipe_is_refused_by_one_daemon_across_passes(tmp_path: Path) -> None:
    """40 files removed 4 at a time, one pass each: half are deleted remotely, then refused."""
    with bench(tmp_path) as b:
        for i in range(40):
            b.write(f"f{i:02d}.txt", b"file %d" % i)
        with b.daemon() as daemon:
            assert 0 == oneshot.sync_once(daemon)
            for start in range(0, 40, 4):
                for i in range(start, start + 4):
                    (b.root / f"f{i:02d}.txt").unlink()
                oneshot.sync_once(daemon)
            refused = daemon.gate.refused
        expected = (20, True)
        assert expected == (len(b.remote()), "refusing to delete" in (refused or ""))
