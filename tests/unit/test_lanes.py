"""The queue's lanes on an injected clock: live before backlog, the backlog's order and share,
promotion, retries, lanes off. No threads, no sleeps."""

from __future__ import annotations

from syncd.engine.dirtyqueue import DirtyQueue
from syncd.engine.lanes import Lane, LanePolicy, ShareRule
from tests.fakes import Clock, drain

LIVE, BACKLOG = Lane.LIVE, Lane.BACKLOG


def make(policy: LanePolicy | None = None, settle: float = 0.0) -> tuple[DirtyQueue, Clock]:
    clock = Clock(1000.0)
    return DirtyQueue(settle, 60.0, clock=clock, policy=policy), clock


def test_live_paths_go_before_the_backlog() -> None:
    """Ready live paths are handed out before ready backlog paths marked earlier."""
    queue, _ = make()
    for name in ["b1", "b2", "b3"]:
        queue.mark(name, mtime_ns=1)
    for name in ["l1", "l2"]:
        queue.mark(name, lane=LIVE)
    expected = ["l1", "l2", "b1", "b2", "b3"]
    assert expected == drain(queue)


def test_live_paths_keep_their_settle_time() -> None:
    """A live mark still waits to settle: the ready backlog goes meanwhile."""
    queue, clock = make(settle=2.0)
    queue.mark("backlog.txt", mtime_ns=1)
    clock.now += 2.0
    queue.mark("live.txt", lane=LIVE)
    first = queue.pop_ready()
    early = queue.pop_ready()
    clock.now += 2.0
    expected = ("backlog.txt", None, "live.txt")
    assert expected == (first, early, queue.pop_ready())


def test_backlog_goes_newest_first() -> None:
    """With backlog_order "newest", the most recently modified path goes first."""
    queue, _ = make(LanePolicy(order="newest"))
    for name, mtime in [("old", 100), ("newest", 300), ("middle", 200)]:
        queue.mark(name, mtime_ns=mtime)
    expected = ["newest", "middle", "old"]
    assert expected == drain(queue)


def test_backlog_goes_by_path_when_asked() -> None:
    """With backlog_order "path", the backlog goes in path order, whatever the mtimes."""
    queue, _ = make(LanePolicy(order="path"))
    for name, mtime in [("b", 100), ("c", 300), ("a", 200)]:
        queue.mark(name, mtime_ns=mtime)
    expected = ["a", "b", "c"]
    assert expected == drain(queue)


def test_backlog_paths_without_mtime_go_first_in_order_of_readiness() -> None:
    """Backlog marks without an mtime (repairs, renewals) go before the scan's, first ready
    first, as before lanes."""
    queue, clock = make(LanePolicy(order="newest"), settle=1.0)
    queue.mark("scanned", mtime_ns=500)
    queue.mark("repair-2")
    clock.now -= 0.5  # marked earlier (the clock moves only when told)
    queue.mark("repair-1")
    clock.now += 2.0
    expected = ["repair-1", "repair-2", "scanned"]
    assert expected == drain(queue)


def test_newest_order_uses_the_latest_mtime_a_mark_brings() -> None:
    """A path marked again with a newer mtime moves up the backlog."""
    queue, _ = make()
    queue.mark("a", mtime_ns=100)
    queue.mark("b", mtime_ns=200)
    queue.mark("a", mtime_ns=300)
    expected = ["a", "b"]
    assert expected == drain(queue)


def test_share_rule_gives_the_backlog_one_pop_in_five() -> None:
    """With both lanes ready, share 0.2 serves the backlog at every fifth pop, exactly."""
    rule = ShareRule(0.2)
    expected = [LIVE, LIVE, LIVE, LIVE, BACKLOG] * 4
    assert expected == [rule.choose(True, True) for _ in range(20)]


def test_share_rule_serves_whichever_lane_is_ready_alone() -> None:
    """A lane alone gets every pop, and earns the backlog no credit; neither: None."""
    rule = ShareRule(0.5)
    alone = [rule.choose(True, False), rule.choose(False, True), rule.choose(False, False)]
    expected = ([LIVE, BACKLOG, None], [LIVE, BACKLOG])
    assert expected == (alone, [rule.choose(True, True), rule.choose(True, True)])


def test_constant_live_marks_do_not_starve_the_backlog() -> None:
    """A folder edited without pause: a new live path ready at every pop, 1,000 pops; the
    backlog still gets at least its share (20%) of them."""
    queue, clock = make(LanePolicy(share=0.2))
    for i in range(1000):
        queue.mark(f"backlog/{i:04d}", mtime_ns=i)
    taken: list[str] = []
    for i in range(1000):
        queue.mark(f"live/{i:04d}", lane=LIVE)
        path = queue.pop_ready()
        assert path is not None
        taken.append(path)
        queue.done(path)
        clock.now += 0.1
    backlog = sum(p.startswith("backlog/") for p in taken)
    expected = (True, 200)
    assert expected == (backlog >= 0.2 * len(taken), backlog)


def test_a_live_mark_promotes_a_queued_backlog_path() -> None:
    """A backlog path the watcher then reports moves to the live lane (counted there)."""
    queue, _ = make()
    for name in ["a", "b", "c"]:
        queue.mark(name, mtime_ns=1)
    queue.mark("c", lane=LIVE)
    depths = queue.lane_depths()
    expected = ({LIVE: 1, BACKLOG: 2}, ["c", "a", "b"])
    assert expected == (depths, drain(queue))


def test_a_backlog_mark_leaves_a_live_path_live() -> None:
    """A scan finding a path already queued live does not send it back to the backlog."""
    queue, _ = make()
    queue.mark("a", mtime_ns=1)
    queue.mark("b", lane=LIVE)
    queue.mark("b", mtime_ns=9)
    expected = ({LIVE: 1, BACKLOG: 1}, ["b", "a"])
    assert expected == (queue.lane_depths(), drain(queue))


def test_retries_of_a_live_path_stay_live() -> None:
    """A live path deferred by its worker (a retry) or marked again while held comes back in
    the live lane, ahead of the backlog."""
    queue, clock = make()
    queue.mark("edited", lane=LIVE)
    queue.mark("changed", lane=LIVE)
    for name in ["b1", "b2"]:
        queue.mark(name, mtime_ns=1)
    first, second = queue.pop_ready(), queue.pop_ready()
    queue.defer("edited", clock.now + 30.0)  # what a worker does after a transient error
    queue.mark("changed")  # the worker saw it change under the upload (no lane given)
    queue.done("edited")
    queue.done("changed")
    after_retry = queue.lane_depths()
    clock.now += 30.0
    expected = (("edited", "changed"), {LIVE: 2, BACKLOG: 2}, ["changed", "edited", "b1", "b2"])
    assert expected == ((first, second), after_retry, drain(queue))


def test_a_live_mark_while_held_makes_the_path_live() -> None:
    """A backlog path the watcher reports while a worker holds it comes back live."""
    queue, _ = make()
    queue.mark("a", mtime_ns=1)
    queue.mark("b", mtime_ns=2)
    held = queue.pop_ready()
    queue.mark("b", lane=LIVE)
    queue.done("b")
    expected = ("b", {LIVE: 1, BACKLOG: 1}, ["b", "a"])
    assert expected == (held, queue.lane_depths(), drain(queue))


def test_lanes_off_is_first_in_first_out() -> None:
    """lanes = false: one lane in order of readiness, live marks included (as before)."""
    queue, clock = make(LanePolicy(enabled=False), settle=1.0)
    queue.mark("b1", mtime_ns=1)
    clock.now += 0.1
    queue.mark("b2", mtime_ns=9)
    clock.now += 0.1
    queue.mark("live", lane=LIVE)
    clock.now += 1.0
    expected = ["b1", "b2", "live"]
    assert expected == drain(queue)


def test_lane_depths_count_pending_and_held() -> None:
    """lane_depths() splits depth() by lane: held paths count in their lane."""
    queue, _ = make()
    queue.mark("l1", lane=LIVE)
    for name in ["b1", "b2"]:
        queue.mark(name, mtime_ns=1)
    queue.pop_ready()  # l1, now held
    expected = ({LIVE: 1, BACKLOG: 2}, (2, 1))
    assert expected == (queue.lane_depths(), queue.depth())


def test_a_claim_takes_a_queued_path_with_it() -> None:
    """claim() of a queued path: no worker gets it while claimed (one holder), and it is
    queued again, in its lane, once released."""
    queue, _ = make()
    queue.mark("a", lane=LIVE)
    claimed = queue.claim("a")
    during = queue.pop_ready()
    queue.done("a")
    expected = (True, None, {LIVE: 1, BACKLOG: 0}, ["a"])
    assert expected == (claimed, during, queue.lane_depths(), drain(queue))
