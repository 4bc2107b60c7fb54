"""End to end on both API versions: exact request counts, listings that prove nothing, the
workspace binding, expiry and the storage quota (the emulator over a real loopback socket)."""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import structlog

from syncd.cli import main as cli
from syncd.cli.report import status_data
from syncd.emulator.faults import Faults
from syncd.engine import oneshot
from syncd.engine.mirror import Options
from syncd.errors import ApiError, WorkspaceMismatch
from syncd.journal import Journal
from syncd.remote.protocol import BETA_VERSION, GA_VERSION
from syncd.service.loop import status_line
from tests.syncenv import API_KEY, FOREIGN, Bench, bench, wait_until

DAY = 86400.0


class Clock:
    """One clock for the emulator and the daemon."""

    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def tree(b: Bench, files: int, per_dir: int = 20) -> None:
    """``files`` files spread over directories of ``per_dir``, two levels deep."""
    for i in range(files):
        b.write(f"d{i // per_dir // 4}/e{i // per_dir}/f{i}.txt", f"file {i}\n".encode())


def journal_rows(b: Bench) -> list[tuple[str, str | None]]:
    with Journal.open_readonly(b.tmp / "state" / "journal.db") as journal:
        return [(r.path, r.synced.file_id if r.synced else None) for r in journal.iter_rows()]


def live_files(b: Bench) -> set[str]:
    return {f.id for f in b.emu.stored() if not f.deleted}


@pytest.mark.parametrize("page_max", [None, 100])
@pytest.mark.parametrize("version", [GA_VERSION, BETA_VERSION])
def test_320_files_through_several_reconciles_cost_exact_requests(
    tmp_path: Path, version: str, page_max: int | None
) -> None:
    """Each listing costs ceil(N/page) requests, no more; no duplicates, no orphans, ever."""
    with bench(tmp_path, api_version=version, page_max=page_max) as b:
        tree(b, 320)
        page = page_max or 1000
        assert 0 == b.sync_once()
        assert {"upload": 320, "list": 1} == b.counts()
        b.emu.reset_stats()
        for i in range(10):
            b.write(f"d0/e0/f{i}.txt", f"edited {i}\n".encode())  # same dirs, new content
        for i in range(300, 305):
            (b.root / f"d3/e15/f{i}.txt").unlink()
        assert 0 == b.sync_once()  # the full pass is not due: one request proves the key
        assert {"upload": 10, "delete": 15, "list": 1} == b.counts()
        b.emu.reset_stats()
        with b.daemon() as daemon:
            for _ in range(3):
                daemon.reconciler.run()
        listed = 315 + len(FOREIGN)
        assert {"list": 3 * math.ceil(listed / page)} == b.counts()
        b.assert_converged()
        assert len(live_files(b)) == 315 + len(FOREIGN)


class Tamper(httpx.BaseTransport):
    """The real emulator behind a proxy that rewrites list answers while ``edit`` is set."""

    def __init__(self) -> None:
        self.inner = httpx.HTTPTransport()
        self.edit: Callable[[dict[str, Any]], dict[str, Any]] | None = None

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = self.inner.handle_request(request)
        if self.edit is None or request.method != "GET" or request.url.path != "/v1/files":
            return response
        body = json.loads(response.read())
        headers = {k: v for k, v in response.headers.items()
                   if k.lower() not in ("content-length", "content-encoding")}
        return httpx.Response(response.status_code, headers=headers, json=self.edit(body))


def _no_marker(body: dict[str, Any]) -> dict[str, Any]:
    return {"data": body["data"]}


def _empty(body: dict[str, Any]) -> dict[str, Any]:
    return {"data": [], "next_page": None}


def _empty_page_more(body: dict[str, Any]) -> dict[str, Any]:
    return {"data": [], "has_more": True, "last_id": None}


def _lacks_30_percent(body: dict[str, Any]) -> dict[str, Any]:
    ours = [f for f in body["data"] if f["filename"].startswith("f")]
    dropped = {f["id"] for f in ours[: len(ours) * 3 // 10]}
    return {**body, "data": [f for f in body["data"] if f["id"] not in dropped]}


@pytest.mark.parametrize(
    ("edit", "refused"),
    [(_no_marker, False), (_empty, True), (_empty_page_more, False), (_lacks_30_percent, True)],
    ids=["full-page-without-marker", "empty-listing", "empty-page-says-more", "lacks-30pct"],
)
def test_a_listing_cut_short_changes_nothing(
    tmp_path: Path, edit: Callable[[dict[str, Any]], dict[str, Any]], refused: bool
) -> None:
    """Whatever the short answer, the journal and the workspace stay exactly as they were."""
    with bench(tmp_path, page_max=100) as b:
        for i in range(40):
            b.write(f"f{i}.txt", f"{i}".encode())
        tamper = Tamper()
        b.client_options = {"transport": tamper}
        assert 0 == b.sync_once()
        rows, files = journal_rows(b), live_files(b)
        b.emu.reset_stats()
        tamper.edit = edit
        with b.daemon(Options(full_reconcile=True)) as daemon:
            if refused:
                assert 1 == oneshot.sync_once(daemon)
                assert ["the listing lacks"] == [p[:17] for p in daemon.problems()]
            else:
                with pytest.raises(ApiError, match=r"next_page|last_id|complete"):
                    oneshot.sync_once(daemon)
        assert (rows, files) == (journal_rows(b), live_files(b))
        assert {"list"} == set(b.counts())
        tamper.edit = None
        assert 0 == b.sync_once()  # an honest listing again: nothing to repair
        assert (rows, files) == (journal_rows(b), live_files(b))


def test_missing_copies_are_reuploaded_make_before_break(tmp_path: Path) -> None:
    """Copies deleted behind syncd's back come back once; the old ids are tombstoned, not lost."""
    clock = Clock(1_800_000_000.0)
    with bench(tmp_path, clock=clock) as b:
        b.clock = clock
        for i in range(30):
            b.write(f"f{i}.txt", f"{i}".encode())
        assert 0 == b.sync_once(settle_seconds=0)
        before = dict(journal_rows(b))
        victims = [before[f"f{i}.txt"] for i in range(3)]
        with b.client() as other:
            for file_id in victims:
                assert other.delete(str(file_id))
        clock.now += 601  # the full pass is due (and deleted files no longer linger listed)
        b.emu.reset_stats()
        assert 0 == b.sync_once(settle_seconds=0)
        after = dict(journal_rows(b))
        changed = sorted(p for p in after if after[p] != before[p])
        # One upload each; the DELETE of each old id answers 404 (it is gone): no duplicate.
        assert ({"list": 1, "upload": 3, "delete": 3}, ["f0.txt", "f1.txt", "f2.txt"]) == (
            b.counts(), changed)
        b.assert_converged()


def test_the_override_believes_a_listing_that_lacks_many_files(tmp_path: Path) -> None:
    """`--allow-mass-reupload` re-uploads what a complete listing lacks, however many."""
    clock = Clock(1_800_000_000.0)
    with bench(tmp_path, clock=clock) as b:
        b.clock = clock
        for i in range(20):
            b.write(f"f{i}.txt", f"{i}".encode())
        assert 0 == b.sync_once(settle_seconds=0)
        with b.client() as other:
            for _path, file_id in journal_rows(b):
                other.delete(str(file_id))
        clock.now += 601  # the periodic full pass is due
        assert 1 == b.sync_once(settle_seconds=0)
        b.emu.reset_stats()
        assert 0 == b.sync_once(Options(allow_mass_reupload=True), settle_seconds=0)
        assert 20 == b.counts()["upload"]
        b.assert_converged()


def test_a_key_moved_to_another_workspace_is_refused_before_any_change(tmp_path: Path) -> None:
    """The journal records the first workspace; another one stops syncd before any upload."""
    with bench(tmp_path) as b:
        b.write("a.txt", b"one")
        b.write("b.txt", b"two")
        assert 0 == b.sync_once()
        with Journal.open_readonly(b.tmp / "state" / "journal.db") as journal:
            first = journal.get_meta("workspace_id")
        b.emu.set_workspace("wrkspc_elsewhere")
        b.write("a.txt", b"edited")
        (b.root / "b.txt").unlink()
        b.emu.reset_stats()
        with pytest.raises(WorkspaceMismatch, match=f"belongs to workspace {first}"):
            b.sync_once()
        stats = b.emu.stats()
        assert (0, 0, "wrkspc_emulator") == (stats["upload"], stats["delete"], first)


@pytest.fixture
def _restore_logging() -> Iterator[None]:
    """The CLI configures logging to the captured stream: undo it after the test."""
    saved = structlog.get_config()
    yield
    structlog.configure(**saved)


@pytest.mark.usefixtures("_restore_logging")
def test_the_cli_says_which_workspace_and_exits_2(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """`syncd sync` on a journal of another workspace: one line naming both, exit 2."""
    with bench(tmp_path) as b:
        b.write("a.txt", b"one")
        config = tmp_path / "syncd.toml"
        config.write_text(
            f'root = "{b.root}"\n[remote]\nbase_url = "{b.emu.base_url}"\n'
            f'[state]\njournal = "{tmp_path / "j.db"}"\n[sync]\nsettle_seconds = 0\n'
        )
        monkeypatch.setenv("ANTHROPIC_API_KEY", API_KEY)
        assert 0 == cli.main(["sync", "--config", str(config)])
        b.emu.set_workspace("wrkspc_other")
        capsys.readouterr()
        assert 2 == cli.main(["sync", "--config", str(config)])
        err = capsys.readouterr().err.strip().splitlines()
        assert 1 == len(err)
        assert "workspace wrkspc_emulator" in err[0] and "wrkspc_other" in err[0]
        assert API_KEY not in err[0]


def test_a_configured_workspace_that_differs_from_the_journal_is_refused(tmp_path: Path) -> None:
    """[remote] workspace_id naming another workspace than the journal's: refused at start."""
    with bench(tmp_path) as b:
        b.write("a.txt", b"one")
        assert 0 == b.sync_once()
        b.remote_options = {"workspace_id": "wrkspc_configured"}
        b.emu.reset_stats()
        with pytest.raises(WorkspaceMismatch, match="config names workspace wrkspc_configured"):
            b.sync_once()
        assert 0 == sum(b.emu.stats().values())


def test_copies_are_renewed_before_they_lapse_and_replaced_after(tmp_path: Path) -> None:
    """expires_in_days=1: at 80% of the day each copy is replaced; lapsed copies come back."""
    clock = Clock(1_800_000_000.0)
    with bench(tmp_path, clock=clock) as b:
        b.clock = clock
        b.remote_options = {"expires_in_days": 1}
        for name in ("a.txt", "b.txt", "c.txt"):
            b.write(name, name.encode())
        assert 0 == b.sync_once(settle_seconds=0)
        first = dict(journal_rows(b))
        clock.now += 0.5 * DAY
        b.emu.reset_stats()
        assert 0 == b.sync_once(settle_seconds=0)
        assert ({"list": 1}, first) == (b.counts(), dict(journal_rows(b)))
        clock.now += 0.31 * DAY
        b.emu.reset_stats()
        assert 0 == b.sync_once(settle_seconds=0)
        renewed = dict(journal_rows(b))
        assert {"list": 1, "upload": 3, "delete": 3} == b.counts()
        assert not set(first.values()) & set(renewed.values())
        clock.now += 3 * DAY  # the daemon was down: every copy lapsed
        b.emu.reset_stats()
        assert 0 == b.sync_once(settle_seconds=0)
        assert (3, 3) == (b.counts()["upload"], len(b.remote()))
        b.assert_converged()


def test_a_full_quota_pauses_uploads_then_resumes_on_a_probe(tmp_path: Path) -> None:
    """Quota full: one failed upload pauses all, status says so; 5 min later a probe resumes."""
    clock = Clock(1_800_000_000.0)
    with bench(tmp_path, clock=clock, faults=Faults(quota_bytes=10)) as b:
        b.clock = clock
        for i in range(5):
            b.write(f"f{i}.txt", b"twenty bytes of text")
        with b.daemon(settle_seconds=0, workers=1) as daemon:
            assert 1 == oneshot.sync_once(daemon)
            assert ["storage quota full"] == [p[:18] for p in daemon.problems()]
            assert (1, 0) == (b.emu.stats()["upload"], daemon.journal.counts().errors)
            assert ["storage quota full"] == [p[:18] for p in status_data(b.settings())["paused"]]
            assert "UPLOADS PAUSED: storage quota full" in status_line(daemon)
            b.emu.set_faults(Faults())
            clock.now += 301
            assert 0 == oneshot.sync_once(daemon)
            assert [] == daemon.problems()
        assert "" == _meta(b, "uploads_paused")
        b.assert_converged()


def _meta(b: Bench, key: str) -> str | None:
    with Journal.open_readonly(b.tmp / "state" / "journal.db") as journal:
        return journal.get_meta(key)


def test_a_listing_that_proves_nothing_at_start_does_not_stop_the_daemon(
    tmp_path: Path
) -> None:
    """`run` whose start-up listing is cut short becomes ready and syncs the folder anyway."""
    with bench(tmp_path) as b:
        b.write("a.txt", b"one")
        tamper = Tamper()
        tamper.edit = _no_marker
        b.client_options = {"transport": tamper}
        with b.running() as daemon:
            tamper.edit = None
            # The emulator counts an upload as it arrives: wait for the stored copy itself.
            wait_until(lambda: sorted(b.remote()) == ["a.txt"], 30, "the upload")
            assert (None, 1) == (daemon.fatal, b.emu.stats()["upload"])


def test_a_copy_marked_gone_before_a_crash_is_replaced_after_the_restart(tmp_path: Path) -> None:
    """A row marked gone whose re-upload never ran (SIGKILL) is uploaded at the next start."""
    with bench(tmp_path) as b:
        b.write("a.txt", b"one")
        assert 0 == b.sync_once()
        with b.daemon() as daemon:
            row = daemon.journal.get("a.txt")
            assert row is not None and row.synced is not None
            assert daemon.journal.mark_gone("a.txt", row.synced.file_id, "missing")
        b.emu.reset_stats()
        assert 0 == b.sync_once()
        rows = journal_rows(b)
        assert ({"list": 1, "upload": 1, "delete": 1}, 1) == (b.counts(), len(rows))
        assert rows[0][1] != row.synced.file_id
        b.assert_converged()
