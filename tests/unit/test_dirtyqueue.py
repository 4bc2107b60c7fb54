"""DirtyQueue on an injected clock: coalescing, settling, one holder per path, retries, overflow."""

from __future__ import annotations

import threading

from syncd.engine.dirtyqueue import DirtyQueue
from tests.fakes import Clock, drain


def make(settle: float = 2.0, settle_max: float = 10.0, **kwargs: int) -> tuple[DirtyQueue, Clock]:
    clock = Clock()
    return DirtyQueue(settle, settle_max, clock=clock, **kwargs), clock


def test_marks_coalesce() -> None:
    """A path marked five times is handed out once."""
    queue, clock = make()
    for _ in range(5):
        queue.mark("a.txt")
    clock.advance(2.0)
    expected = ["a.txt"]
    assert expected == drain(queue)


def test_not_ready_before_settling() -> None:
    """A path is not handed out before it has been quiet for `settle` seconds."""
    queue, clock = make(settle=2.0)
    queue.mark("a.txt")
    clock.advance(1.9)
    expected = None
    assert expected == queue.pop_ready()


def test_ready_after_settling() -> None:
    """A path quiet for `settle` seconds is handed out."""
    queue, clock = make(settle=2.0)
    queue.mark("a.txt")
    clock.advance(2.0)
    expected = "a.txt"
    assert expected == queue.pop_ready()


def test_a_new_mark_restarts_settling() -> None:
    """Marking again while settling pushes the ready time back."""
    queue, clock = make(settle=2.0)
    queue.mark("a.txt")
    clock.advance(1.5)
    queue.mark("a.txt")
    clock.advance(1.5)
    first = queue.pop_ready()
    clock.advance(0.5)
    expected = (None, "a.txt")
    assert expected == (first, queue.pop_ready())


def test_settle_max_caps_a_path_that_never_settles() -> None:
    """A path marked every 0.5 s goes out settle_max seconds after its first mark."""
    queue, clock = make(settle=2.0, settle_max=10.0)
    handed: list[tuple[float, str]] = []
    for _ in range(40):  # 20 seconds of marks, bounded
        queue.mark("log.txt")
        path = queue.pop_ready()
        if path is not None:
            handed.append((clock.now - 1000.0, path))
            queue.done(path)
        clock.advance(0.5)
    expected = (10.0, "log.txt")
    assert expected == handed[0]


def test_mark_without_settle_is_ready_at_once() -> None:
    """mark(settle=False) skips the wait."""
    queue, _ = make()
    queue.mark("a.txt", settle=False)
    expected = "a.txt"
    assert expected == queue.pop_ready()


def test_mark_without_settle_hurries_a_settling_path() -> None:
    """A path already settling becomes ready at once when marked with settle=False."""
    queue, _ = make()
    queue.mark("a.txt")
    queue.mark("a.txt", settle=False)
    expected = "a.txt"
    assert expected == queue.pop_ready()


def test_held_path_is_not_handed_out_twice() -> None:
    """While a worker holds a path, marking it does not hand it to another worker."""
    queue, clock = make(settle=0.0)
    queue.mark("a.txt")
    first = queue.pop_ready()
    queue.mark("a.txt")
    clock.advance(100.0)
    expected = ("a.txt", None)
    assert expected == (first, queue.pop_ready())


def test_path_marked_while_held_comes_back_after_done() -> None:
    """A mark during processing is not lost: the path is pending again after done()."""
    queue, clock = make(settle=2.0)
    queue.mark("a.txt", settle=False)
    path = queue.pop_ready()
    assert path is not None
    queue.mark("a.txt")
    queue.done(path)
    early = queue.pop_ready()
    clock.advance(2.0)
    expected = (None, "a.txt")
    assert expected == (early, queue.pop_ready())


def test_done_without_new_mark_leaves_nothing() -> None:
    """A path released without being marked again is not handed out again."""
    queue, clock = make(settle=0.0)
    queue.mark("a.txt")
    queue.done(queue.pop_ready() or "")
    clock.advance(100.0)
    expected = (None, True)
    assert expected == (queue.pop_ready(), queue.idle())


def test_defer_honours_the_retry_time() -> None:
    """A deferred path is not handed out before its retry time, and is after it."""
    queue, clock = make(settle=0.0)
    queue.defer("a.txt", clock.now + 30.0)
    clock.advance(29.0)
    early = queue.pop_ready()
    clock.advance(1.0)
    expected = (None, "a.txt")
    assert expected == (early, queue.pop_ready())


def test_defer_holds_back_a_marked_path() -> None:
    """A mark does not make a deferred path skip its retry time."""
    queue, clock = make(settle=0.0)
    queue.defer("a.txt", clock.now + 30.0)
    queue.mark("a.txt", settle=False)
    early = queue.pop_ready()
    clock.advance(30.0)
    expected = (None, "a.txt")
    assert expected == (early, queue.pop_ready())


def test_defer_while_held_is_not_handed_out_until_done() -> None:
    """A worker deferring the path it holds does not give it to a second worker meanwhile."""
    queue, clock = make(settle=0.0)
    queue.mark("a.txt")
    held = queue.pop_ready()
    queue.defer("a.txt", clock.now + 5.0)
    clock.advance(10.0)
    during = queue.pop_ready()
    queue.done("a.txt")
    expected = ("a.txt", None, "a.txt")
    assert expected == (held, during, queue.pop_ready())


def test_defer_while_held_keeps_the_retry_time_after_done() -> None:
    """The retry time set while held still holds once the worker is done."""
    queue, clock = make(settle=0.0)
    queue.mark("a.txt")
    queue.pop_ready()
    queue.defer("a.txt", clock.now + 30.0)
    queue.done("a.txt")
    early = queue.pop_ready()
    clock.advance(30.0)
    expected = (None, "a.txt")
    assert expected == (early, queue.pop_ready())


def test_claim_fails_for_a_held_path() -> None:
    """claim() refuses a path a worker holds and takes a free one."""
    queue, _ = make(settle=0.0)
    queue.mark("a.txt")
    queue.pop_ready()
    expected = (False, True, frozenset({"a.txt", "b.txt"}))
    assert expected == (queue.claim("a.txt"), queue.claim("b.txt"), queue.held())


def test_claimed_path_is_not_handed_out() -> None:
    """A path claimed by reconcile is not given to a worker until released."""
    queue, _ = make(settle=0.0)
    queue.claim("a.txt")
    queue.mark("a.txt", settle=False)
    during = queue.pop_ready()
    queue.done("a.txt")
    expected = (None, "a.txt")
    assert expected == (during, queue.pop_ready())


def test_idle() -> None:
    """idle() is true only with nothing pending or held (future retries excepted if asked)."""
    queue, clock = make(settle=0.0)
    empty = queue.idle()
    queue.mark("a.txt")
    pending = queue.idle()
    path = queue.pop_ready() or ""
    held = queue.idle()
    queue.done(path)
    queue.defer("b.txt", clock.now + 60.0)
    expected = (True, False, False, True, False)
    assert expected == (empty, pending, held, queue.idle(), queue.idle(ignore_future=False))


def test_overflow_drops_marks_and_says_so() -> None:
    """Past max_size new paths are dropped and `overflowed` tells the caller to rescan."""
    queue, clock = make(settle=0.0, max_size=3)
    for name in ["a", "b", "c", "d"]:
        queue.mark(name)
    queue.mark("a")  # an existing path still coalesces
    clock.advance(1.0)
    expected = (True, ["a", "b", "c"])
    assert expected == (queue.overflowed, sorted(drain(queue)))


def test_overflow_counts_the_dropped_marks_until_a_scan_takes_them_over() -> None:
    """Dropped marks are counted (pending work no depth shows); clear_overflow hands the count
    to the scan that starts and starts again from zero."""
    queue, clock = make(settle=0.0, max_size=2)
    for name in ["a", "b", "c", "d", "e"]:
        queue.mark(name)
    clock.advance(1.0)
    drained = sorted(drain(queue))
    before = (queue.dropped, queue.first_dropped)
    handed = queue.clear_overflow()
    expected = (["a", "b"], (3, "c"), 3, (0, None, False))
    assert expected == (drained, before, handed,
                        (queue.dropped, queue.first_dropped, queue.overflowed))


def test_depth_counts_pending_and_held() -> None:
    """depth() is (pending, held)."""
    queue, _ = make(settle=0.0)
    for name in ["a", "b", "c"]:
        queue.mark(name)
    queue.pop_ready()
    expected = (2, 1)
    assert expected == queue.depth()


def test_many_paths_come_out_in_order_of_readiness() -> None:
    """10,000 paths marked at different times are handed out once each, earliest ready first."""
    queue, clock = make(settle=2.0, settle_max=1000.0)
    names = [f"dir/{i:05d}.txt" for i in range(10_000)]
    for name in reversed(names):  # marked 1 ms apart over 10 s
        queue.mark(name)
        clock.advance(0.001)
    for name in names[::2]:  # re-marked at 10 s: ready at 12 s, behind all the others
        queue.mark(name)
    clock.advance(1.9995)
    first = drain(queue)
    clock.advance(100.0)
    rest = drain(queue)
    expected = (list(reversed(names[1::2])), list(reversed(names[::2])))
    assert expected == (first, rest)


def test_get_returns_none_after_stop() -> None:
    """get() returns None once the queue is stopped, even with work pending."""
    queue, _ = make(settle=0.0)
    queue.mark("a.txt")
    queue.stop()
    expected = None
    assert expected == queue.get(timeout=0.01)


def test_threads_never_hold_the_same_path_at_once() -> None:
    """Four threads taking paths concurrently never receive a path another one holds."""
    queue = DirtyQueue(0.0, 0.0)
    lock = threading.Lock()
    start = threading.Barrier(4, timeout=10)
    holding: set[str] = set()
    clashes: list[str] = []
    taken: list[str] = []

    def take() -> str | None:
        path = queue.get(timeout=0.05)
        if path is not None:
            with lock:
                if path in holding:
                    clashes.append(path)
                holding.add(path)
                taken.append(path)
        return path

    def release(path: str) -> None:
        with lock:
            holding.discard(path)
        queue.done(path)

    def work() -> None:
        start.wait()
        kept = take()  # held for the whole run and marked again and again meanwhile
        for _ in range(100):
            path = take()
            if kept is not None:
                queue.mark(kept, settle=False)
            if path is not None:
                queue.mark(path, settle=False)
                release(path)
        if kept is not None:
            release(kept)

    for i in range(10):
        queue.mark(f"p{i}", settle=False)
    threads = [threading.Thread(target=work) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    expected: tuple[list[str], bool] = ([], True)
    assert expected == (clashes, len(taken) > 300)


def test_overflow_asks_for_a_rescan_only_below_the_low_water_mark() -> None:
    """After dropped marks a rescan is due once the queue drained to max_size / 2, not before."""
    queue, clock = make(settle=0.0, max_size=4)
    for name in ["a", "b", "c", "d", "e"]:
        queue.mark(name)
    clock.advance(1.0)
    full = queue.rescan_due()
    first = queue.pop_ready()
    assert first is not None
    queue.done(first)
    one_out = queue.rescan_due()
    second = queue.pop_ready()
    assert second is not None
    queue.done(second)
    drained = queue.rescan_due()
    queue.clear_overflow()
    expected = (False, False, True, False)
    assert expected == (full, one_out, drained, queue.rescan_due())


def test_wake_ends_a_wait_for_work_without_stopping_the_queue() -> None:
    """wake() makes a waiting get() return None (a pool stopping does not wait out its poll),
    and the queue still hands out work afterwards."""
    queue = DirtyQueue(0.0, 0.0)
    got: list[str | None] = []
    waiter = threading.Thread(target=lambda: got.append(queue.get(timeout=60)), daemon=True)
    waiter.start()
    for _ in range(200):  # bounded: ~10 s; the waiter may not be waiting yet at the first wake
        queue.wake()
        waiter.join(0.05)
        if not waiter.is_alive():
            break
    queue.mark("a.txt")
    expected = ([None], "a.txt")
    assert expected == (got, queue.get(timeout=5))
