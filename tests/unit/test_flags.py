"""The daemon's cross-thread flags: each transition is seen by exactly one thread."""

from __future__ import annotations

import threading

from syncd.engine.flags import Flags


def test_of_many_threads_suspending_at_once_exactly_one_sees_the_pause_begin() -> None:
    flags, start, firsts = Flags(), threading.Barrier(8), []

    def suspend(n: int) -> None:
        start.wait(10)
        for i in range(200):
            if flags.suspend(f"disk full {n}.{i}") is None:
                firsts.append(n)

    threads = [threading.Thread(target=suspend, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert (1, True) == (len(firsts), flags.suspended is not None)


def test_a_probe_does_not_end_a_pause_that_a_later_failure_renewed() -> None:
    flags = Flags()
    flags.suspend("disk full")
    flags.suspend("read-only file system")  # a worker failed after the probe read the reason
    assert (False, "read-only file system") == (flags.resume("disk full"), flags.suspended)
    assert (True, None) == (flags.resume("read-only file system"), flags.suspended)


def test_the_first_fatal_error_is_the_one_kept() -> None:
    flags, first, second = Flags(), RuntimeError("key rejected"), RuntimeError("later")
    assert (True, False, first) == (flags.stop_on(first), flags.stop_on(second), flags.fatal)


def test_root_and_thread_verdicts_return_what_they_replace() -> None:
    flags = Flags()
    assert [None, "gone", None] == [flags.refuse_root("gone"), flags.refuse_root(None),
                                    flags.note_threads("worker-2 dead")]
    assert ("worker-2 dead", None) == (flags.note_threads(None), flags.threads_problem)
