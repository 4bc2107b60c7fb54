"""Turns: several folders sharing one pacer take its slots live first, then round robin."""

from __future__ import annotations

import threading
import time

from syncd.remote.pacer import Pacer
from syncd.remote.turns import LIVE, Turns, _Waiter, next_waiter
from tests.fakes import Clock


def waiters(*spec: tuple[bool, str]) -> list[_Waiter]:
    return [_Waiter(live, folder, ticket) for ticket, (live, folder) in enumerate(spec)]


def test_a_live_request_goes_before_any_backlog_request() -> None:
    waiting = waiters((False, "a"), (False, "b"), (True, "c"))
    assert next_waiter(waiting, last="") is waiting[2]


def test_folders_take_turns_after_the_last_served() -> None:
    """Round robin by folder name: after "a" comes "b", after "c" comes "a" again; within a
    folder the oldest request."""
    waiting = waiters((False, "a"), (False, "a"), (False, "b"), (False, "c"))
    order = []
    last = ""
    while waiting:
        chosen = next_waiter(waiting, last)
        assert chosen is not None
        order.append((chosen.folder, chosen.ticket))
        waiting.remove(chosen)
        last = chosen.folder
    assert order == [("a", 0), ("b", 2), ("c", 3), ("a", 1)]


def test_a_busy_folder_cannot_take_more_than_its_turn() -> None:
    """Folder a has 100 requests waiting and b one: b goes right after a's next one."""
    waiting = waiters(*[(False, "a")] * 100, (False, "b"))
    first = next_waiter(waiting, last="")
    assert first is not None
    waiting.remove(first)
    second = next_waiter(waiting, last=first.folder)
    assert (first.folder, second.folder if second else None) == ("a", "b")


class GatedPacer(Pacer):
    """A pacer whose every acquire waits for the test to open the gate once."""

    def __init__(self) -> None:
        super().__init__(6e6, burst=1000, clock=Clock(0.0), sleep=lambda _: None)
        self.gate = threading.Semaphore(0)
        self.entered = threading.Semaphore(0)

    def acquire(self) -> float:
        self.entered.release()
        assert self.gate.acquire(timeout=10)
        return 0.0


def test_threads_of_three_folders_are_served_in_turns_live_first() -> None:
    """Real threads: while one request waits in the pacer, the rest queue in Turns; they are
    then served live first, then a, b, c, a, b... whatever order they arrived in."""
    pacer = GatedPacer()
    turns = Turns(pacer)
    order: list[str] = []
    lock = threading.Lock()

    def request(folder: str, live: bool) -> None:
        LIVE.set(live)
        turns.folder(folder).acquire()
        with lock:
            order.append(f"{folder}{'*' if live else ''}")

    first = threading.Thread(target=request, args=("z", False))
    first.start()
    assert pacer.entered.acquire(timeout=10)  # z holds the pacer: everyone else queues
    threads = [threading.Thread(target=request, args=(f, False)) for f in "aaabbc"]
    threads.append(threading.Thread(target=request, args=("c", True)))
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + 10
    while turns.waiting() < len(threads) and time.monotonic() < deadline:
        time.sleep(0.01)
    for _ in threads:  # each release lets the next in turn into the pacer
        pacer.gate.release()
        assert pacer.entered.acquire(timeout=10)
    pacer.gate.release()
    for thread in [first, *threads]:
        thread.join(10)
    assert order == ["z", "c*", "a", "b", "c", "a", "b", "a"]
    assert turns.served == {"z": 1, "a": 3, "b": 2, "c": 2}


def test_a_folders_pacer_shares_rate_and_pause() -> None:
    """What one folder's client sets (a learned rate, a 429's pause) is the shared pacer's."""
    clock = Clock(0.0)
    shared = Pacer(90, burst=1, clock=clock, sleep=lambda _: None)
    turns = Turns(shared)
    a, b = turns.folder("a"), turns.folder("b")
    a.set_rate(300)
    a.pause_for(5)
    assert (b.requests_per_minute, round(b.paused_for()), b.burst) == (300, 5, 1)
