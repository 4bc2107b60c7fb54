"""decide(): what a worker does with one path, from its local stat and its journal row alone."""

from __future__ import annotations

import pytest

from syncd.engine.decide import (
    Action,
    Decision,
    decide,
    decide_after_hash,
    retry_backoff,
)
from syncd.model import RACY_WINDOW_NS, Failure, FileRow, LocalStat, Synced, is_racy

MTIME = 1_700_000_000_000_000_000  # ns
SYNCED_AT = MTIME / 1e9 + 60.0  # recorded a minute after the last write: not racy
NOW = SYNCED_AT + 3600.0
SHA = "ab" * 32
STAT = LocalStat(size=10, mtime_ns=MTIME, ino=42)


def synced(stat: LocalStat = STAT, synced_at: float = SYNCED_AT, sha: str = SHA) -> Synced:
    return Synced("file_1", "a.txt", sha, stat.size, stat.mtime_ns, stat.ino, "text/plain",
                  synced_at)


def failure(kind: str, stat: LocalStat | None = STAT, next_attempt: float = 0.0) -> Failure:
    return Failure(kind, "boom", 1, next_attempt, stat)


def row(synced_copy: Synced | None = None, fail: Failure | None = None) -> FileRow:
    return FileRow("a.txt", synced_copy, fail)


def moved(size: int = 0, mtime: int = 0, ino: int = 0) -> LocalStat:
    return LocalStat(STAT.size + size, STAT.mtime_ns + mtime, STAT.ino + ino)


def test_no_file_no_row_does_nothing() -> None:
    """A path that exists neither locally nor in the journal needs nothing."""
    expected = Decision(Action.NOTHING)
    assert expected == decide(None, None, NOW)


def test_gone_file_with_synced_copy_is_deleted() -> None:
    """A synced file that is gone locally has its remote copy deleted."""
    expected = Decision(Action.DELETE)
    assert expected == decide(None, row(synced()), NOW)


def test_gone_file_with_only_a_failure_is_forgotten() -> None:
    """A file that never synced and is gone has its row dropped, no request made."""
    expected = Decision(Action.FORGET)
    assert expected == decide(None, row(fail=failure("permanent")), NOW)


def test_gone_file_with_synced_copy_and_failure_is_deleted() -> None:
    """A failure on a newer version does not stop the delete of the synced copy."""
    expected = Decision(Action.DELETE)
    assert expected == decide(None, row(synced(), failure("transient", moved(size=1))), NOW)


def test_new_file_is_uploaded() -> None:
    """A file the journal does not know is uploaded."""
    expected = Decision(Action.UPLOAD)
    assert expected == decide(STAT, None, NOW)


def test_unchanged_synced_file_does_nothing() -> None:
    """Same size, mtime and inode, recorded well after the write: no request."""
    expected = Decision(Action.NOTHING)
    assert expected == decide(STAT, row(synced()), NOW)


def test_racy_synced_file_is_verified() -> None:
    """A file recorded within the racy window of its mtime is hashed again despite equal stats."""
    racy_at = (MTIME + RACY_WINDOW_NS // 2) / 1e9
    expected = Decision(Action.VERIFY)
    assert expected == decide(STAT, row(synced(synced_at=racy_at)), NOW)


def test_racy_window_edges() -> None:
    """is_racy is true inside RACY_WINDOW_NS of the recording time and false beyond it."""
    recorded = 1_700_000_000.0
    recorded_ns = 1_700_000_000 * 10**9
    expected = [True, True, False]
    actual = [
        is_racy(recorded_ns, recorded),
        is_racy(recorded_ns - RACY_WINDOW_NS + 1_000, recorded),
        is_racy(recorded_ns - RACY_WINDOW_NS - 1_000_000, recorded),
    ]
    assert expected == actual


def test_size_change_is_uploaded() -> None:
    """A different size is new content for sure: upload without hashing."""
    expected = Decision(Action.UPLOAD)
    assert expected == decide(moved(size=5, mtime=10**9), row(synced()), NOW)


@pytest.mark.parametrize("change", [{"mtime": 10**9}, {"ino": 1}])
def test_mtime_or_inode_change_same_size_is_verified(change: dict[str, int]) -> None:
    """Stat moved but size did not: hash to tell a touch from an edit."""
    expected = Decision(Action.VERIFY)
    assert expected == decide(moved(**change), row(synced()), NOW)


def test_permanent_failure_same_stat_does_nothing() -> None:
    """A permanent failure stops retries until the file changes."""
    expected = Decision(Action.NOTHING)
    assert expected == decide(STAT, row(fail=failure("permanent")), NOW)


def test_permanent_failure_same_stat_with_synced_copy_does_nothing() -> None:
    """A permanent failure on a newer version of a synced file also waits for a change."""
    local = moved(size=1, mtime=10**9)
    expected = Decision(Action.NOTHING)
    assert expected == decide(local, row(synced(), failure("permanent", local)), NOW)


def test_permanent_failure_then_change_is_uploaded() -> None:
    """Once the file changes after a permanent failure it is tried again."""
    expected = Decision(Action.UPLOAD)
    assert expected == decide(moved(size=1), row(fail=failure("permanent")), NOW)


def test_permanent_failure_then_change_of_synced_file_same_size_is_verified() -> None:
    """A synced file that failed and then changed without changing size is hashed first."""
    failed = moved(size=1, mtime=10**9)
    local = moved(mtime=2 * 10**9)
    expected = Decision(Action.VERIFY)
    assert expected == decide(local, row(synced(), failure("permanent", failed)), NOW)


def test_permanent_failure_then_change_of_synced_file_new_size_is_uploaded() -> None:
    """A synced file that failed and then changed size is uploaded."""
    failed = moved(size=1, mtime=10**9)
    local = moved(size=2, mtime=2 * 10**9)
    expected = Decision(Action.UPLOAD)
    assert expected == decide(local, row(synced(), failure("permanent", failed)), NOW)


def test_transient_failure_waits_until_next_attempt() -> None:
    """A transient failure backs off: WAIT with the retry time."""
    retry_at = NOW + 30
    expected = Decision(Action.WAIT, retry_at)
    assert expected == decide(STAT, row(fail=failure("transient", next_attempt=retry_at)), NOW)


def test_transient_failure_acts_after_next_attempt() -> None:
    """Once its retry time has passed, a transiently failed new file is uploaded again."""
    fail = failure("transient", next_attempt=NOW - 1)
    expected = Decision(Action.UPLOAD)
    assert expected == decide(STAT, row(fail=fail), NOW)


def test_transient_failure_at_exactly_next_attempt_acts() -> None:
    """The retry time itself is no longer a wait."""
    fail = failure("transient", next_attempt=NOW)
    expected = Decision(Action.UPLOAD)
    assert expected == decide(STAT, row(fail=fail), NOW)


def test_transient_failure_then_change_acts_at_once() -> None:
    """A changed file does not wait out the backoff of its previous version."""
    fail = failure("transient", next_attempt=NOW + 300)
    expected = Decision(Action.UPLOAD)
    assert expected == decide(moved(size=3), row(fail=fail), NOW)


def test_transient_failure_of_synced_file_after_backoff_verifies() -> None:
    """A synced file whose newer, same-size version failed transiently is hashed on retry."""
    local = moved(mtime=10**9)
    fail = failure("transient", local, next_attempt=NOW - 1)
    expected = Decision(Action.VERIFY)
    assert expected == decide(local, row(synced(), fail), NOW)


def test_failure_without_stat_does_not_block() -> None:
    """A failure recorded without a stat (the stat itself failed) never blocks a retry."""
    expected = Decision(Action.UPLOAD)
    assert expected == decide(STAT, row(fail=failure("permanent", None)), NOW)


def test_after_hash_same_content_is_a_touch() -> None:
    """Same sha256 after VERIFY: nothing to upload."""
    expected = Action.NOTHING
    assert expected == decide_after_hash(SHA, row(synced()))


def test_after_hash_new_content_is_uploaded() -> None:
    """Different sha256 after VERIFY: upload."""
    expected = Action.UPLOAD
    assert expected == decide_after_hash("cd" * 32, row(synced()))


def test_after_hash_without_synced_copy_is_uploaded() -> None:
    """A row with no synced copy has nothing to compare with: upload."""
    expected = Action.UPLOAD
    assert expected == decide_after_hash(SHA, row(fail=failure("transient")))


def test_retry_backoff_doubles_from_the_base() -> None:
    """Backoff starts at the base and doubles with each attempt."""
    expected = [5.0, 5.0, 10.0, 20.0, 40.0, 80.0]
    assert expected == [retry_backoff(n) for n in range(6)]


def test_retry_backoff_is_capped() -> None:
    """Backoff never exceeds the cap, even after very many attempts."""
    expected = [900.0, 900.0, 60.0]
    actual = [retry_backoff(9), retry_backoff(10_000), retry_backoff(50, base=1.0, cap=60.0)]
    assert expected == actual


def test_an_unchanged_file_whose_copy_is_gone_is_uploaded_again() -> None:
    """A copy missing, expired or due for renewal is replaced though the file is unchanged."""
    for reason in ("missing", "expired", "renew"):
        gone = FileRow("a.txt", synced(), None, gone=reason)
        assert Decision(Action.UPLOAD) == decide(STAT, gone, NOW)


def test_a_gone_copy_of_a_deleted_file_is_deleted_not_uploaded() -> None:
    """A file deleted locally while its copy was gone goes to the delete gate as usual."""
    assert Decision(Action.DELETE) == decide(None, FileRow("a.txt", synced(), None, "missing"), NOW)
