"""engine.plan.plan(): the listing against a journal snapshot, built from values alone."""

from __future__ import annotations

from datetime import UTC, datetime

from hypothesis import given, settings
from hypothesis import strategies as st

from syncd.engine.intents import CLOCK_SKEW, INTENT_GRACE, MAX_SKEW
from syncd.engine.plan import (
    Missing,
    Ours,
    Plan,
    Snapshot,
    plan,
)
from syncd.model import FileRow, Intent, Synced
from syncd.remote.client import RemoteFile

T0 = 1_700_000_000.0
LISTED = T0 + 1000.0  # when the listing began
MTIME = 1_699_999_000 * 10**9


def remote(file_id: str, name: str = "a.txt", size: int = 10, created: float = T0) -> RemoteFile:
    return RemoteFile(file_id, name, "text/plain", size, datetime.fromtimestamp(created, UTC))


def intent(
    intent_id: int = 1, path: str = "a.txt", size: int = 10, started: float = T0,
    name: str | None = None, mtime_ns: int = MTIME,
) -> Intent:
    return Intent(intent_id, path, name or path, size, mtime_ns, 7, started)


def synced_row(path: str, file_id: str, synced_at: float) -> FileRow:
    copy = Synced(file_id, path, "ab" * 32, 10, MTIME, 7, "text/plain", synced_at)
    return FileRow(path, copy, None)


def snap(
    synced: dict[str, tuple[str, float]] | None = None,
    tombstoned: frozenset[str] = frozenset(),
    intents: tuple[Intent, ...] = (),
    rows: dict[str, FileRow] | None = None,
) -> Snapshot:
    ours = {file_id: Ours(*entry) for file_id, entry in (synced or {}).items()}
    return Snapshot(ours, tombstoned, intents, rows or {})


def test_synced_file_not_listed_is_missing() -> None:
    """A row synced before the listing whose file is not listed is uploaded again."""
    result = plan([], snap({"file_1": ("a.txt", T0)}), LISTED)
    expected = Plan(missing=(Missing("a.txt", "file_1", "missing"),))
    assert expected == result


def test_file_synced_during_the_listing_is_not_missing() -> None:
    """A row committed after the listing began may simply not be in it yet."""
    result = plan([], snap({"file_1": ("a.txt", LISTED + 1)}), LISTED)
    expected = Plan()
    assert expected == result


def test_held_path_is_not_missing() -> None:
    """A path a worker holds is left to the worker."""
    result = plan([], snap({"file_1": ("a.txt", T0)}), LISTED, held=frozenset({"a.txt"}))
    expected = Plan()
    assert expected == result


def test_listed_synced_and_tombstoned_files_are_ours() -> None:
    """Files the journal tracks or owes a delete are ours, neither missing nor foreign."""
    listing = [remote("file_1"), remote("file_2", "old.txt")]
    result = plan(listing, snap({"file_1": ("a.txt", T0)}, frozenset({"file_2"})), LISTED)
    expected = Plan(ours=2)
    assert expected == result


def test_foreign_files_are_counted_never_touched() -> None:
    """Files no row or intent accounts for are counted as foreign and put in no list."""
    listing = [remote("f1", "x.txt"), remote("f2", "y.txt", 3), remote("f3", "a.txt")]
    result = plan(listing, snap(), LISTED)
    expected = Plan(foreign=3)
    assert expected == result


def test_intent_match_without_row_is_adopted() -> None:
    """A lost upload (same name and size, created after the intent) is adopted."""
    lost = intent()
    copy = remote("file_9", created=T0 + 1)
    result = plan([copy], snap(intents=(lost,)), LISTED)
    expected = Plan(adopt=((lost, copy),), spent_intents=(lost,))
    assert expected == result


def test_intent_match_older_than_synced_copy_is_adopted() -> None:
    """A lost upload newer than the path's synced copy may stand in for it."""
    lost = intent(started=T0 + 100)
    copy = remote("file_9", created=T0 + 101)
    rows = {"a.txt": synced_row("a.txt", "file_1", T0)}
    result = plan([copy], snap(intents=(lost,), rows=rows), LISTED)
    expected = Plan(adopt=((lost, copy),), spent_intents=(lost,))
    assert expected == result


def test_intent_match_superseded_by_later_sync_is_an_orphan() -> None:
    """A lost upload is deleted when the path has a copy committed after that intent."""
    lost = intent(started=T0)
    copy = remote("file_9", created=T0 + 1)
    rows = {"a.txt": synced_row("a.txt", "file_2", T0 + 50)}
    listing = [copy, remote("file_2", created=T0 + 40)]
    result = plan(listing, snap({"file_2": ("a.txt", T0 + 50)}, intents=(lost,), rows=rows),
                  LISTED)
    expected = Plan(orphans=((lost, copy),), spent_intents=(lost,), ours=1)
    assert expected == result


def test_retried_post_adopts_the_newest_and_orphans_the_rest() -> None:
    """Several copies from one intent: the newest is adopted, the others are deleted."""
    lost = intent()
    copies = [remote("file_a", created=T0 + 1), remote("file_c", created=T0 + 9),
              remote("file_b", created=T0 + 5)]
    result = plan(copies, snap(intents=(lost,)), LISTED)
    expected = Plan(
        adopt=((lost, copies[1]),),
        orphans=((lost, copies[0]), (lost, copies[2])),
        spent_intents=(lost,),
    )
    assert expected == result


def test_later_intent_of_same_size_gets_the_newest_copy() -> None:
    """With two lost uploads of one path, the newest copy is paired with the newest intent."""
    first = intent(1, started=T0, mtime_ns=MTIME)
    second = intent(2, started=T0 + 200, mtime_ns=MTIME + 10**9)
    old_copy = remote("file_a", created=T0 + 1)
    new_copy = remote("file_b", created=T0 + 201)
    result = plan([new_copy, old_copy], snap(intents=(first, second)), LISTED)
    expected = Plan(
        adopt=((second, new_copy),), orphans=((first, old_copy),), spent_intents=(first, second)
    )
    assert expected == result


def test_near_miss_files_are_foreign() -> None:
    """Other size, other name, or created well before the intent: foreign, not touched."""
    lost = intent(started=T0)
    listing = [
        remote("other_size", size=11, created=T0 + 1),
        remote("other_name", "b.txt", created=T0 + 1),
        remote("too_old", created=T0 - CLOCK_SKEW - 1),
    ]
    result = plan(listing, snap(intents=(lost,)), LISTED)
    expected = Plan(spent_intents=(lost,), foreign=3)
    assert expected == result


def test_copy_created_within_clock_skew_before_intent_matches() -> None:
    """The service's clock may lag ours by up to CLOCK_SKEW: such a copy is still ours."""
    lost = intent(started=T0)
    copy = remote("file_9", created=T0 - CLOCK_SKEW + 1)
    result = plan([copy], snap(intents=(lost,)), LISTED)
    expected = Plan(adopt=((lost, copy),), spent_intents=(lost,))
    assert expected == result


def test_recently_deleted_file_is_not_foreign() -> None:
    """A file deleted moments ago that still lingers in the listing is neither foreign nor ours."""
    lost = intent()
    listing = [remote("gone", created=T0 + 1)]
    result = plan(listing, snap(intents=(lost,)), LISTED, recently_deleted=frozenset({"gone"}))
    expected = Plan(spent_intents=(lost,))
    assert expected == result


def test_tombstoned_file_matching_an_intent_is_ours_not_adopted() -> None:
    """A file already owed a delete is ours and is not adopted again."""
    lost = intent()
    listing = [remote("file_9", created=T0 + 1)]
    result = plan(listing, snap(tombstoned=frozenset({"file_9"}), intents=(lost,)), LISTED)
    expected = Plan(spent_intents=(lost,), ours=1)
    assert expected == result


def test_intent_of_held_path_is_ignored() -> None:
    """An upload in progress keeps its intent; its copy is left alone this round."""
    lost = intent()
    listing = [remote("file_9", created=T0 + 1)]
    result = plan(listing, snap(intents=(lost,)), LISTED, held=frozenset({"a.txt"}))
    expected = Plan(foreign=1)
    assert expected == result


def test_intent_started_after_listing_is_ignored() -> None:
    """An intent newer than the listing cannot be judged by it: kept, not spent."""
    late = intent(started=LISTED + 1)
    listing = [remote("file_9", created=LISTED + 2)]
    result = plan(listing, snap(intents=(late,)), LISTED)
    expected = Plan(foreign=1)
    assert expected == result


def test_intent_without_copy_is_spent() -> None:
    """An intent with no matching copy in a full listing is dropped."""
    lost = intent()
    result = plan([], snap(intents=(lost,)), LISTED)
    expected = Plan(spent_intents=(lost,))
    assert expected == result


def test_duplicate_ids_in_listing_count_once() -> None:
    """A file listed twice (pages shifted while paging) is counted once."""
    result = plan([remote("f1"), remote("f1")], snap(), LISTED)
    expected = Plan(foreign=1)
    assert expected == result


# -- invariant 1 as a property ----------------------------------------------------------------

NAMES = ["a.txt", "b.txt", "c.txt"]
IDS = [f"file_{i}" for i in range(12)]

remote_files = st.builds(
    remote,
    st.sampled_from(IDS),
    st.sampled_from(NAMES),
    st.integers(1, 3),
    st.floats(T0 - 200, LISTED + 100, allow_nan=False),
)
intents = st.builds(
    intent,
    st.integers(1, 1000),
    st.sampled_from(NAMES),
    st.integers(1, 3),
    st.floats(T0 - 200, LISTED + 100, allow_nan=False),
)
journal_ids = st.dictionaries(
    st.sampled_from(IDS),
    st.tuples(st.sampled_from(NAMES), st.floats(T0 - 200, LISTED + 100, allow_nan=False)),
    max_size=6,
)


@settings(max_examples=300, deadline=None)
@given(
    listing=st.lists(remote_files, max_size=12),
    synced=journal_ids,
    tombstoned=st.frozensets(st.sampled_from(IDS), max_size=4),
    open_intents=st.lists(intents, max_size=5),
    held=st.frozensets(st.sampled_from(NAMES), max_size=2),
    recent=st.frozensets(st.sampled_from(IDS), max_size=3),
)
def test_never_deletes_a_file_it_did_not_create(
    listing: list[RemoteFile],
    synced: dict[str, tuple[str, float]],
    tombstoned: frozenset[str],
    open_intents: list[Intent],
    held: frozenset[str],
    recent: frozenset[str],
) -> None:
    """Invariant 1: only files matching an intent by name, size and time are adopted or deleted."""
    rows = {p: synced_row(p, i, t) for i, (p, t) in synced.items()}
    snapshot = snap(synced, tombstoned, tuple(open_intents), rows)
    result = plan(listing, snapshot, LISTED, held, recent)
    touched = [*result.adopt, *result.orphans]
    ours = set(synced) | tombstoned
    bad = [
        (i, f) for i, f in touched
        if f.filename != i.remote_name or f.size_bytes != i.size
        or f.created_at.timestamp() < i.started_at - CLOCK_SKEW
        or f.id in ours or f.id in recent or i.path in held or i not in open_intents
    ]
    ids = [f.id for _, f in touched]
    listed = {f.id for f in listing}
    unknown = listed - ours - recent
    adopted_paths = [i.path for i, _ in result.adopt]
    expected = ([], len(set(ids)), len(set(adopted_paths)), len(unknown))
    actual = (bad, len(ids), len(adopted_paths), result.foreign + len(ids))
    assert expected == actual


# -- the remote guard and expiry (a complete listing that lacks too much is not believed) -------


def many(n: int, synced_at: float = T0) -> dict[str, tuple[str, float]]:
    return {f"file_{i}": (f"f{i}.txt", synced_at) for i in range(n)}


def test_a_listing_lacking_30_percent_of_our_files_changes_nothing() -> None:
    """30 of 100 synced files missing at once (over 10%): refused, nothing planned."""
    journal = many(100)
    listing = [remote(f"file_{i}", f"f{i}.txt") for i in range(30, 100)]
    result = plan(listing, snap(journal, intents=(intent(),)), LISTED, max_missing_fraction=0.1)
    assert ((), (), (), ()) == (result.missing, result.adopt, result.orphans,
                                result.spent_intents)
    assert "lacks 30 of our 100 synced files" in (result.refused or "")


def test_an_empty_listing_is_refused_when_we_have_files() -> None:
    """`data: []` proven complete, against 20 synced files: refused, nothing forgotten."""
    result = plan([], snap(many(20)), LISTED, max_missing_fraction=0.1)
    assert ((), True) == (result.missing, result.refused is not None)


def test_ten_missing_files_or_fewer_are_always_believed() -> None:
    """The guard never trips for 10 files or fewer, whatever the fraction."""
    result = plan([], snap(many(10)), LISTED, max_missing_fraction=0.1)
    assert (10, None) == (len(result.missing), result.refused)


def test_expired_copies_are_gone_and_do_not_trip_the_guard() -> None:
    """Copies whose expires_at has passed are re-uploaded, however many: expiry is expected."""
    journal = {f"file_{i}": Ours(f"f{i}.txt", T0, T0 + 10) for i in range(50)}
    result = plan([], Snapshot(journal, frozenset(), ()), LISTED, max_missing_fraction=0.1)
    assert (50, {"expired"}, None) == (
        len(result.missing), {m.reason for m in result.missing}, result.refused)


def test_a_listed_copy_past_its_expiry_is_gone() -> None:
    """A listed copy whose listed expires_at has passed is treated like a missing one."""
    listed = RemoteFile("file_1", "a.txt", "text/plain", 10, datetime.fromtimestamp(T0, UTC),
                        expires_at=datetime.fromtimestamp(LISTED - 1, UTC))
    result = plan([listed], snap({"file_1": ("a.txt", T0)}), LISTED)
    assert (Missing("a.txt", "file_1", "expired"),) == result.missing


def test_rows_already_marked_gone_are_not_planned_again() -> None:
    """A path already waiting for its re-upload is neither missing again nor counted."""
    journal = {"file_1": Ours("a.txt", T0, None, gone=True)}
    result = plan([], Snapshot(journal, frozenset(), ()), LISTED)
    assert () == result.missing


def test_a_session_scoped_file_is_never_adopted_or_deleted() -> None:
    """A session output with our name and size is foreign, even with an open intent."""
    scoped = RemoteFile("file_s", "a.txt", "text/plain", 10,
                        datetime.fromtimestamp(T0 + 5, UTC), scoped=True)
    lost = intent()
    result = plan([scoped], snap(intents=(lost,)), LISTED)
    assert ((), (), 1) == (result.adopt, result.orphans, result.foreign)


# -- the service's clock (learnt skew widens the window) -----------------------------------------


def test_copy_from_a_service_clock_120s_behind_matches_with_the_learnt_skew() -> None:
    """Our clock 120 s ahead (skew -120): a lost copy stamped 120 s before its intent is ours."""
    lost = intent(started=T0)
    copy = remote("file_9", created=T0 - 119)
    result = plan([copy], snap(intents=(lost,)), LISTED, clock_skew=-120.0)
    expected = Plan(adopt=((lost, copy),), spent_intents=(lost,))
    assert expected == result


def test_skew_widens_the_window_by_its_size_only() -> None:
    """Older than skew + CLOCK_SKEW is still foreign; a service ahead of us widens nothing."""
    lost = intent(started=T0)
    listing = [remote("too_old", created=T0 - 120 - CLOCK_SKEW - 1)]
    behind = plan(listing, snap(intents=(lost,)), LISTED, clock_skew=-120.0)
    ahead = plan([remote("f", created=T0 - CLOCK_SKEW - 1)], snap(intents=(lost,)), LISTED,
                 clock_skew=300.0)
    expected = (Plan(spent_intents=(lost,), foreign=1), Plan(spent_intents=(lost,), foreign=1))
    assert expected == (behind, ahead)


def test_a_date_from_years_ago_widens_the_window_by_max_skew_only() -> None:
    """A service claiming a date far back cannot make an old foreign file match an intent."""
    lost = intent(started=T0)
    listing = [remote("old_foreign", created=T0 - MAX_SKEW - CLOCK_SKEW - 1)]
    result = plan(listing, snap(intents=(lost,)), LISTED, clock_skew=-1e9)
    expected = Plan(spent_intents=(lost,), foreign=1)
    assert expected == result


def test_a_young_intent_is_not_ended_by_a_listing_without_its_copy() -> None:
    """A listing that lies "complete and empty" right after a crash must not end the intents
    whose copies it hides (they would stay forever as foreign files): an intent is ended by
    the absence of its copy only once it is INTENT_GRACE old when the listing starts."""
    young = intent(1, started=LISTED - INTENT_GRACE + 1)
    old = intent(2, "b.txt", started=LISTED - INTENT_GRACE - 1)
    result = plan([], snap(intents=(young, old)), LISTED)
    later = plan([remote("file_9", created=LISTED - 1)], snap(intents=(young,)), LISTED + 60)
    expected = (Plan(spent_intents=(old,)), Plan(adopt=((young, remote("file_9",
                created=LISTED - 1)),), spent_intents=(young,)))
    assert expected == (result, later)
