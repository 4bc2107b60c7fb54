"""The listing streamed into a compact structure: the same plan as from File objects, the
journal read as plan() iterates it, and an incomplete listing still changes nothing."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from syncd.engine import oneshot
from syncd.engine.plan import Ours, Plan, Shown, Snapshot, plan, snapshot
from syncd.errors import IncompleteListing
from syncd.journal import Journal
from syncd.model import Intent
from syncd.remote.client import FilesClient, RemoteFile
from syncd.remote.listing import Listing
from syncd.remote.pacer import Pacer
from tests.syncenv import API_KEY, bench
from tests.unit.test_client import FILE
from tests.unit.test_journal import open_journal
from tests.unit.test_journal import synced as synced_copy
from tests.unit.test_reconcile_plan import LISTED, T0, intent, remote, snap


def expiring(file_id: str, expires: float, name: str = "a.txt") -> RemoteFile:
    return RemoteFile(file_id, name, "text/plain", 10, datetime.fromtimestamp(T0, UTC),
                      expires_at=datetime.fromtimestamp(expires, UTC))


def test_a_file_listed_twice_is_one_file_and_its_last_sighting_counts() -> None:
    """Pages that shift while paging list a file twice: one entry, as the last page saw it."""
    listing = Listing.of([remote("file_1"), remote("file_2"), expiring("file_1", LISTED - 1)])
    expected = (2, 3, 0, 1, -1, LISTED - 1, None)
    assert expected == (len(listing), listing.sightings, listing.index("file_1"),
                        listing.index("file_2"), listing.index("file_3"),
                        listing.expires_at(0), listing.expires_at(1))


def test_many_ids_are_each_found_at_their_index() -> None:
    """Past many table growths every id is found where it was added, and no other id is."""
    ids = [f"file_{i:06d}" for i in range(5000)]
    listing = Listing.of(remote(i) for i in ids)
    found = [listing.index(i) for i in ids]
    absent = [listing.index(f"file_{i:06d}") for i in range(5000, 5100)]
    assert (list(range(5000)), [-1] * 100) == (found, absent)


def test_files_expected_keep_no_details() -> None:
    """Only files the journal did not know (foreign files, lost uploads) are kept whole."""
    files = [remote(f"file_{i}") for i in range(10)]
    listing = Listing.of(files, (f"file_{i}" for i in range(0, 10, 2)))
    expected = [(5 + i // 2, files[i]) for i in range(1, 10, 2)]
    assert expected == list(listing.details())


def test_an_expected_file_not_listed_is_not_found() -> None:
    """An id the journal knows is no evidence of a listed file until a page shows it."""
    listing = Listing.of([remote("file_2")], ["file_1", "file_2"])
    expected = (-1, 1, bytearray([3, 0]))
    assert expected == (listing.index("file_1"), listing.index("file_2"), listing.marks(3))


def test_an_expected_file_that_is_not_ours_is_foreign_and_untouched() -> None:
    """A file expected (ours before the listing) whose row went away while paging has no
    details: it stays foreign, whatever intent it might match."""
    lost = intent()
    copy = remote("file_9", created=T0 + 1)
    result = plan(Listing.of([copy], ["file_9"]), snap(intents=(lost,)), LISTED)
    expected = Plan(spent_intents=(lost,), foreign=1)
    assert expected == result


# -- the compact listing plans exactly as the File objects did ------------------------------

NAMES = ["a.txt", "b.txt", "c.txt"]
IDS = [f"file_{i}" for i in range(10)]


def listed_file(file_id: str, name: str, size: int, created: float, expires: float | None,
                scoped: bool) -> RemoteFile:
    return RemoteFile(file_id, name, "text/plain", size, datetime.fromtimestamp(created, UTC),
                      expires_at=None if expires is None else datetime.fromtimestamp(expires, UTC),
                      scoped=scoped)


times = st.floats(T0 - 200, LISTED + 100, allow_nan=False)
listed_files = st.builds(listed_file, st.sampled_from(IDS), st.sampled_from(NAMES),
                         st.integers(1, 3), times, st.none() | times, st.booleans())
intents = st.builds(intent, st.integers(1, 1000), st.sampled_from(NAMES), st.integers(1, 3),
                    times)
copies = st.dictionaries(st.sampled_from(IDS), st.builds(
    Ours, st.sampled_from(NAMES), times, st.none() | times, st.booleans()))


@settings(max_examples=300, deadline=None)
@given(
    listing=st.lists(listed_files, max_size=14),  # ids repeat: duplicates are common
    synced=copies,
    tombstoned=st.frozensets(st.sampled_from(IDS), max_size=3),
    recent=st.frozensets(st.sampled_from(IDS), max_size=2),
    open_intents=st.lists(intents, max_size=4, unique_by=lambda i: i.id),
    held=st.frozensets(st.sampled_from(NAMES), max_size=1),
    fraction=st.sampled_from([0.1, 1.0]),
)
def test_the_compact_listing_plans_as_the_file_objects_do(
    listing: list[RemoteFile], synced: dict[str, Ours], tombstoned: frozenset[str],
    recent: frozenset[str], open_intents: list[Intent], held: frozenset[str], fraction: float,
) -> None:
    """Expecting our ids (as reconcile does) or not, the plan is the same."""
    state = Snapshot(synced, tombstoned, tuple(open_intents))
    expected = [*synced, *tombstoned]

    def planned(files: Listing | list[RemoteFile]) -> Plan:
        return plan(files, state, LISTED, held, recent, fraction)

    assert planned(listing) == planned(Listing.of(listing, expected))


def test_a_snapshot_against_the_listing_plans_as_a_full_one(tmp_path: Path) -> None:
    """Copies the listing shows are only counted, not held: the plan is the same."""
    with open_journal(tmp_path / "state.db") as journal:
        for i in range(40):
            journal.commit_upload(f"p{i:02d}", synced_copy(f"file_{i}", name=f"p{i:02d}"), None)
        journal.mark_gone("p03", "file_3", "missing")
        journal.add_tombstone("file_t", "t", "t", "orphan")
        files = [remote(f"file_{i}") for i in range(0, 40, 2)] + [remote("file_t")]
        files += [expiring("file_1", LISTED + 5), expiring("file_5", LISTED + 20)]
        listing = Listing.of(files, (f"file_{i}" for i in range(40)))
        full = plan(files, snapshot(journal), LISTED + 10)
        compact = snapshot(journal, listing, LISTED + 10)
        result = plan(listing, compact, LISTED + 10)
    kept = sorted(compact.synced)
    assert (full, 18, 23, 19) == (result, len(result.missing), result.ours, len(kept))


def test_a_snapshot_is_for_one_listing() -> None:
    """A snapshot taken against one listing is refused with another (it would miscount)."""
    listing = Listing.of([remote("file_1")])
    state = Snapshot({}, frozenset(), (), shown=Shown(listing, LISTED, bytearray(1), 0))
    with pytest.raises(ValueError, match="another listing"):
        plan([remote("file_1")], state, LISTED)


# -- an incomplete listing still changes nothing ---------------------------------------------


def broken_after(pages: int, ids: list[str]) -> Callable[[httpx.Request], httpx.Response]:
    """A listing whose page ``pages`` has no end marker (it proves nothing about the rest)."""
    calls: list[int] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(1)
        body: dict[str, object] = {"data": [dict(FILE, id=f"{ids[0]}{len(calls)}")]}
        if len(calls) < pages:
            body["next_page"] = f"page_{len(calls)}"
        return httpx.Response(200, json=body)
    return handler


def test_an_incomplete_listing_aborts_before_any_action(tmp_path: Path) -> None:
    """Our file absent from a listing that never proves its end: nothing marked, deleted or
    forgotten; the journal is exactly as it was."""
    with bench(tmp_path) as b:
        b.write("a.txt", b"alpha")
        with b.daemon() as daemon:
            assert 0 == oneshot.sync_once(daemon)
            journal: Journal = daemon.journal
            before = (list(journal.iter_rows()), journal.intents(), journal.tombstones())
            requests: list[str] = []
            handler = broken_after(3, ["file_other"])

            def recorded(request: httpx.Request) -> httpx.Response:
                requests.append(request.method)
                return handler(request)

            hostile = FilesClient(API_KEY, "https://files.test", sleep=lambda s: None,
                                  pacer=Pacer(60000, burst=100),
                                  transport=httpx.MockTransport(recorded))
            with pytest.raises(IncompleteListing):
                daemon.reconciler.run(hostile)
            after = (list(journal.iter_rows()), journal.intents(), journal.tombstones())
    assert (before, ["GET"] * 3) == (after, requests)

