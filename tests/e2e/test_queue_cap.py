"""More paths to look at than the dirty queue holds (issue 11, item 2), with the cap scaled down.

A nested tree of 400 files and room for 50 in the queue: `sync` uploads every file once and
exits 0 only when it has; the service loop converges with a rescan per low-water refill, not one
per loop turn; and no status says "0 pending" while dropped marks wait for that rescan.
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any

import pytest
from structlog.testing import capture_logs

from syncd.cli.main import main
from syncd.cli.report import status_data
from syncd.emulator.faults import Faults
from syncd.engine import dirtyqueue, oneshot
from syncd.engine.mirror import Mirror, Options
from syncd.service.loop import status_line
from tests.syncenv import API_KEY, Bench, bench, run_in_thread, wait_until

pytestmark = pytest.mark.timeout(180)

CAP = 50
FILES = 400


def nested_tree(b: Bench, n: int = FILES) -> list[str]:
    """``n`` files, a few a directory, two to four levels deep (in no particular order)."""
    paths = []
    for i in range(n):
        top, mid, leaf = i % 3, i // 3 % 5, i // 15 % 4
        depth = ("", f"/l{leaf}", f"/l{leaf}/m{i % 2}")[i % 3]
        path = f"t{top}/s{mid}{depth}/f{i:04}.txt"
        b.write(path, b"file %d\n" % i)
        paths.append(path)
    return paths


def capped(b: Bench, cap: int = CAP, options: Options | None = None) -> Mirror:
    daemon = b.daemon(options)
    daemon.queue.max_size = cap
    return daemon


def test_sync_of_more_files_than_the_queue_holds_uploads_each_once_and_exits_0(
    tmp_path: Path,
) -> None:
    """400 files in a nested tree, room for 50: all 400 uploaded exactly once, exit 0."""
    with bench(tmp_path) as b:
        nested_tree(b)
        b.emu.reset_stats()
        with capped(b) as daemon:
            code = oneshot.sync_once(daemon)
            problems = daemon.problems()
        assert (0, [], FILES) == (code, problems, b.counts()["upload"])
        b.assert_converged()


def test_syncd_sync_command_builds_its_queue_with_the_cap_and_converges(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`syncd sync` (the command, its own client and queue) with the cap set to 50 before the
    daemon is built: 400 files uploaded once, exit 0."""
    with bench(tmp_path) as b:
        nested_tree(b)
        config = tmp_path / "c.toml"
        config.write_text(
            f'root = "{b.root}"\n[remote]\nbase_url = "{b.emu.base_url}"\n'
            "requests_per_minute = 60000\nburst = 100\n[sync]\nsettle_seconds = 0.2\n"
            f'[state]\njournal = "{tmp_path / "state" / "j.db"}"\n'
        )
        monkeypatch.setenv("ANTHROPIC_API_KEY", API_KEY)
        monkeypatch.setattr(dirtyqueue, "MAX_SIZE", CAP)
        built: list[int] = []
        real_init = dirtyqueue.DirtyQueue.__init__

        def recording_init(self: dirtyqueue.DirtyQueue, *args: Any, **kwargs: Any) -> None:
            real_init(self, *args, **kwargs)
            built.append(self.max_size)

        monkeypatch.setattr(dirtyqueue.DirtyQueue, "__init__", recording_init)
        b.emu.reset_stats()
        code = main(["sync", "--config", str(config)])
        assert (0, [CAP], FILES) == (code, built, b.counts()["upload"])
        b.assert_converged()


def test_sync_that_cannot_get_past_its_cap_exits_1_and_says_why(tmp_path: Path) -> None:
    """Every upload fails (a 500 each time, after the listing) and waits its retry in the queue:
    the queue stays full, a rescan gets no further, `sync` exits 1 naming the overflow."""
    with bench(tmp_path) as b:
        nested_tree(b, 120)
        with capped(b, 20, Options(max_sync_wait=0.0)) as daemon:
            listed = daemon.reconciler.run

            def list_then_fail() -> None:
                if not b.emu.faults.error_rate:
                    listed()
                b.emu.set_faults(Faults(error_rate=1.0))

            daemon.reconciler.run = list_then_fail  # type: ignore[method-assign]
            code = oneshot.sync_once(daemon)
            problems = daemon.problems()
    assert 1 == code
    assert any(p.startswith("queue overflowed") for p in problems), problems


def test_status_is_not_pending_0_while_dropped_marks_wait_for_a_rescan(tmp_path: Path) -> None:
    """The queue drained after an overflowing scan, the rescan not yet run: status says work is
    pending (STATUS= and `syncd status`), never "0 pending"."""
    with bench(tmp_path) as b:
        nested_tree(b, 120)
        with capped(b, 20) as daemon:
            daemon.scan()
            for _ in range(20):  # the queue's whole content, handed out and finished
                path = daemon.queue.get(timeout=10)
                assert path is not None
                daemon.queue.done(path)
            daemon.publish_depth()
            line = status_line(daemon)
            data = status_data(daemon.settings)
        assert (True, 0) == (daemon.queue.overflowed, sum(daemon.queue.depth()))
    assert ", 0 pending" not in line, line
    assert "queue overflowed" in line, line
    assert data["pending"] > 0


def run_loop(daemon: Mirror) -> contextlib.AbstractContextManager[None]:
    """The daemon's run loop in a thread (real watcher), stopped on exit."""
    return run_in_thread(daemon, 60)


def test_run_over_the_cap_converges_without_a_rescan_storm(tmp_path: Path) -> None:
    """`syncd run` over 400 files with room for 50: every file uploaded once, one rescan per
    refill from the low-water mark (not one per loop turn), and STATUS= never says "0 pending"
    before the tree is synced."""
    with bench(tmp_path) as b:
        nested_tree(b)
        b.emu.reset_stats()
        daemon = capped(b)
        seen: list[str] = []
        with capture_logs() as logs, daemon, run_loop(daemon):
            def synced() -> bool:
                seen.append(status_line(daemon))
                return len(b.remote()) == FILES and daemon.queue.idle()

            wait_until(synced, timeout=120, what="every file uploaded")
        b.assert_converged()
        assert FILES == b.counts()["upload"]
    rescans = [e for e in logs if e["event"] == "rescanning"]
    refills = -(-(FILES - CAP) // (CAP - CAP // 2))  # ceil: each refill takes max - low water
    assert all(e["reason"] == "queue overflow" for e in rescans), rescans
    assert 1 <= len(rescans) <= refills, rescans
    early = [s for s in seen if " 0 pending" in s and not s.startswith(f"{FILES} synced")]
    assert [] == early
