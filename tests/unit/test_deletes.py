"""The mass-delete guard and the DeleteGate that holds removals until it approves them."""

from __future__ import annotations

from syncd.engine.deletes import (
    DELETE_WINDOW,
    MIN_GUARDED,
    RECENT_SECONDS,
    DeleteGate,
    mass_delete_problem,
)


def test_small_batches_are_never_refused() -> None:
    """Up to MIN_GUARDED deletions pass even if they are every synced file."""
    expected = [None, None, None]
    actual = [
        mass_delete_problem(MIN_GUARDED, MIN_GUARDED, 0.5),
        mass_delete_problem(1, 1, 0.0),
        mass_delete_problem(MIN_GUARDED, 0, 0.1),
    ]
    assert expected == actual


def test_batch_over_the_fraction_is_refused_naming_the_overrides() -> None:
    """More than max_fraction of the synced files is refused with a fixable message."""
    problem = mass_delete_problem(51, 100, 0.5) or ""
    expected = (True, True, True)
    actual = ("51 of 100" in problem, "--allow-mass-delete" in problem,
              "max_delete_fraction" in problem)
    assert expected == actual


def test_batch_at_the_fraction_passes() -> None:
    """Exactly max_fraction of the synced files may be deleted."""
    expected = None
    assert expected == mass_delete_problem(50, 100, 0.5)


def test_just_over_min_guarded_is_checked() -> None:
    """One more than MIN_GUARDED is subject to the fraction."""
    expected = True
    assert expected == (mass_delete_problem(MIN_GUARDED + 1, MIN_GUARDED + 1, 0.5) is not None)


def test_fraction_one_disables_the_guard() -> None:
    """max_delete_fraction = 1.0 lets any batch through."""
    expected = None
    assert expected == mass_delete_problem(10_000, 10_000, 1.0)


def test_request_cancel_pending() -> None:
    """Requests coalesce by path and a cancel withdraws one."""
    gate = DeleteGate(0.5)
    for path in ["a", "b", "a", "c"]:
        gate.request(path)
    gate.cancel("b")
    gate.cancel("never-requested")
    expected = 2
    assert expected == gate.pending()


def test_approve_returns_the_batch_and_empties_it() -> None:
    """An approved batch is handed out sorted, once."""
    gate = DeleteGate(0.5)
    for path in ["b", "a"]:
        gate.request(path)
    first = gate.approve(synced=100, root_problem=None)
    expected = (["a", "b"], [], 0, None)
    assert expected == (first, gate.approve(100, None), gate.pending(), gate.refused)


def test_root_problem_refuses_and_keeps_the_batch() -> None:
    """A root that looks wrong deletes nothing and keeps the requests for later."""
    gate = DeleteGate(0.5, allow_mass_delete=True)
    gate.request("a")
    refused = gate.approve(100, "root /srv/docs is not reachable")
    expected = ([], 1, "root /srv/docs is not reachable", ["a"])
    assert expected == (refused, gate.pending(), gate.refused, gate.approve(100, None))


def test_mass_delete_is_refused_then_approved_when_it_shrinks() -> None:
    """A refused batch stays pending; once back under the guard it goes through."""
    gate = DeleteGate(0.5)
    paths = [f"f{i:02d}" for i in range(20)]
    for path in paths:
        gate.request(path)
    refused = gate.approve(synced=20, root_problem=None)
    reason = gate.refused
    for path in paths[5:]:
        gate.cancel(path)
    expected = ([], True, paths[:5], None)
    assert expected == (refused, reason is not None, gate.approve(20, None), gate.refused)


def test_allow_mass_delete_approves_everything() -> None:
    """With allow_mass_delete the whole batch goes even if it is every file."""
    gate = DeleteGate(0.5, allow_mass_delete=True)
    paths = [f"f{i:02d}" for i in range(50)]
    for path in paths:
        gate.request(path)
    expected = paths
    assert expected == gate.approve(synced=50, root_problem=None)


def test_recently_deleted_expires_after_an_hour() -> None:
    """Deleted ids are remembered for RECENT_SECONDS and then forgotten."""
    gate = DeleteGate(0.5)
    gate.note_deleted("old", 1000.0)
    gate.note_deleted("new", 1000.0 + RECENT_SECONDS)
    both = gate.recently_deleted()
    gate.note_deleted("newer", 1000.0 + RECENT_SECONDS + 1)
    expected = ({"old", "new"}, {"new", "newer"})
    assert expected == (both, gate.recently_deleted())


class FakeClock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 5000.0

    def __call__(self) -> float:
        return self.now


def slow_wipe(gate: DeleteGate, clock: FakeClock, remove: int = 100, synced: int = 100,
              step: int = 10) -> list[int]:
    """Remove ``remove`` of ``synced`` files, ``step`` every 2.5 s; return each pass's approvals."""
    approved: list[int] = []
    for start in range(0, remove, step):
        for i in range(start, start + step):
            gate.request(f"f{i:03d}")
        batch = gate.approve(synced, None)
        synced -= len(batch)
        approved.append(len(batch))
        clock.now += 2.5
    return approved


def test_a_slow_wipe_is_refused_over_the_window() -> None:
    """100 files removed 10 every 2.5 s: half go, then the window's sum trips the guard."""
    clock = FakeClock()
    gate = DeleteGate(0.5, clock=clock)
    approved = slow_wipe(gate, clock)
    expected = ([10, 10, 10, 10, 10, 0, 0, 0, 0, 0], 50, True)
    assert expected == (approved, gate.pending(), "refusing to delete" in (gate.refused or ""))


def test_the_refusal_counts_the_window_against_its_starting_count() -> None:
    """The refusal names what the window already deleted and the synced count at its start."""
    clock = FakeClock()
    gate = DeleteGate(0.5, clock=clock)
    slow_wipe(gate, clock, remove=60, synced=60)
    expected = ("refusing to delete 30 more remote files: with the 30 deleted in the last hour"
                " that is 60 of 60 (more than 50%)")
    assert expected == (gate.refused or "").split(";")[0]


def test_the_window_slides_after_an_hour() -> None:
    """Deletions older than DELETE_WINDOW no longer count: a small batch later is approved."""
    clock = FakeClock()
    gate = DeleteGate(0.5, clock=clock)
    slow_wipe(gate, clock, remove=50)  # 50 of 100: all approved, at the limit
    for path in ["x1", "x2", "x3"]:
        gate.request(path)
    refused = gate.approve(50, None)
    clock.now += DELETE_WINDOW
    expected = ([], ["x1", "x2", "x3"])
    assert expected == (refused, gate.approve(50, None))


def test_min_guarded_applies_to_the_window_sum() -> None:
    """Up to MIN_GUARDED deletions in a window pass whatever the synced count."""
    clock = FakeClock()
    gate = DeleteGate(0.1, clock=clock)
    approved = slow_wipe(gate, clock, remove=MIN_GUARDED + 2, synced=MIN_GUARDED + 2, step=2)
    expected = [2] * (MIN_GUARDED // 2) + [0]
    assert expected == approved


def test_allow_mass_delete_overrides_the_window() -> None:
    """--allow-mass-delete approves a slow wipe to the last file."""
    clock = FakeClock()
    gate = DeleteGate(0.5, allow_mass_delete=True, clock=clock)
    expected = [10] * 10
    assert expected == slow_wipe(gate, clock)
