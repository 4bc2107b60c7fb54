"""The storage-quota pause: one probe at a time, every 5 minutes, resuming by itself."""

from __future__ import annotations

from syncd.engine.quota import PROBE_INTERVAL, QuotaPause
from tests.conftest import Recorder


def test_uploads_run_freely_until_the_quota_is_full(recorder: Recorder) -> None:
    """No pause: every caller may upload."""
    pause = QuotaPause(recorder.clock)
    assert [None, None] == [pause.blocked_until(), pause.blocked_until()]


def test_a_full_quota_pauses_everyone_then_lets_one_probe_through(recorder: Recorder) -> None:
    """After a quota error nobody uploads for PROBE_INTERVAL; then exactly one probe runs."""
    pause = QuotaPause(recorder.clock)
    probe_at = pause.full("400 storage_quota_exceeded")
    waiting = pause.blocked_until()
    recorder.now = probe_at
    first, second = pause.blocked_until(), pause.blocked_until()
    assert (recorder.now, probe_at, None) == (probe_at, waiting, first)
    assert second is not None and second > recorder.now


def test_a_failed_probe_pauses_again_and_a_good_one_resumes(recorder: Recorder) -> None:
    """The probe's quota error waits another interval; its success clears the pause."""
    pause = QuotaPause(recorder.clock)
    recorder.now += PROBE_INTERVAL * (pause.full("full") > 0)
    assert pause.blocked_until() is None  # the probe
    again = pause.full("still full")
    assert (recorder.now + PROBE_INTERVAL, "storage quota full (still full)") == (
        again, pause.reason)
    recorder.now = again
    assert pause.blocked_until() is None
    pause.succeeded()
    assert (None, None, None) == (pause.reason, pause.blocked_until(), pause.blocked_until())


def test_a_probe_that_fails_otherwise_lets_another_probe_run(recorder: Recorder) -> None:
    """A probe ending in some other error (a 500, a vanished file) does not wedge the pause."""
    pause = QuotaPause(recorder.clock)
    recorder.now = pause.full("full")
    assert pause.blocked_until() is None
    pause.settled()
    assert (None, "storage quota full (full)") == (pause.blocked_until(), pause.reason)
