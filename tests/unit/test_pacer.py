"""The shared pacer holds the configured rate and pauses everyone after a 429."""

from __future__ import annotations

import threading

from syncd.remote.pacer import Pacer
from tests.conftest import Recorder


def test_pacing_holds_the_configured_rate_within_five_percent(recorder: Recorder) -> None:
    """600 requests/min for 301 requests with burst 1 takes 30 s of (fake) time."""
    pacer = Pacer(600, burst=1, clock=recorder.clock, sleep=recorder.sleep)
    start = recorder.now
    for _ in range(301):
        pacer.acquire()
    rate = 300 / (recorder.now - start) * 60
    assert abs(rate - 600) / 600 < 0.05


def test_burst_is_free_then_paced(recorder: Recorder) -> None:
    """The first `burst` requests go at once; the next waits one interval."""
    pacer = Pacer(60, burst=3, clock=recorder.clock, sleep=recorder.sleep)
    waits = [pacer.acquire() for _ in range(4)]
    assert waits == [0.0, 0.0, 0.0, 1.0]


def test_pause_holds_back_another_thread(recorder: Recorder) -> None:
    """A 429 pause taken by one caller makes a caller in another thread wait it out."""
    pacer = Pacer(6000, burst=10, clock=recorder.clock, sleep=recorder.sleep)
    pacer.pause_for(5.0)
    waited: list[float] = []
    worker = threading.Thread(target=lambda: waited.append(pacer.acquire()))
    worker.start()
    worker.join(timeout=10)
    assert waited == [5.0]


def test_threads_never_exceed_the_rate() -> None:
    """Four threads sharing a pacer never get more grants than burst + rate * elapsed."""
    lock = threading.Lock()
    state = {"now": 0.0}
    grants: list[float] = []

    def clock() -> float:
        with lock:
            return state["now"]

    def sleep(seconds: float) -> None:
        with lock:
            state["now"] += seconds

    pacer = Pacer(120, burst=2, clock=clock, sleep=sleep)

    def run() -> None:
        for _ in range(25):
            pacer.acquire()
            grants.append(clock())

    threads = [threading.Thread(target=run) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)
    grants.sort()
    over = [
        (i, j)
        for i in range(len(grants))
        for j in range(i, len(grants))
        if j - i + 1 > 2 + (grants[j] - grants[i]) * 2 + 1e-9
    ]
    assert (len(grants), over) == (100, [])


def test_set_rate_changes_the_spacing(recorder: Recorder) -> None:
    """From 60/min to 120/min: the next waits are half a second, not one."""
    pacer = Pacer(60, burst=1, clock=recorder.clock, sleep=recorder.sleep)
    pacer.acquire()
    pacer.set_rate(120)
    waits = [pacer.acquire() for _ in range(3)]
    assert (120.0, [0.5, 0.5, 0.5]) == (pacer.requests_per_minute, waits)


def test_set_rate_respaces_requests_booked_ahead(recorder: Recorder) -> None:
    """Four slots booked at once at 60/min (burst 4) end at 4 s; at 30/min they end at 8 s,
    so with the 3-slot tolerance (now 6 s) the fifth waits 2 s instead of 1."""
    pacer = Pacer(60, burst=4, clock=recorder.clock, sleep=recorder.sleep)
    for _ in range(4):
        pacer.acquire()
    pacer.set_rate(30)
    assert 2.0 == pacer.acquire()


def test_set_rate_keeps_a_429_pause(recorder: Recorder) -> None:
    """A pause in force when the rate changes still holds everyone back for its full length."""
    pacer = Pacer(600, burst=1, clock=recorder.clock, sleep=recorder.sleep)
    pacer.pause_for(5.0)
    pacer.set_rate(6000)
    assert (5.0, 5.0) == (pacer.paused_for(), pacer.acquire())


def test_set_rate_refuses_nonsense(recorder: Recorder) -> None:
    """Zero, negative, infinite and NaN rates are refused; the rate in force is unchanged."""
    pacer = Pacer(600, burst=1, clock=recorder.clock, sleep=recorder.sleep)
    for bad in (0.0, -1.0, float("inf"), float("nan")):
        try:
            pacer.set_rate(bad)
        except ValueError:
            continue
        raise AssertionError(f"set_rate({bad}) was accepted")
    assert 600.0 == pacer.requests_per_minute
