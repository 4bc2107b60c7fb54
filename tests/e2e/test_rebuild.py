"""`syncd rebuild` end to end against the emulator over loopback: list requests only, no loss."""

from __future__ import annotations

import io
import json
import math
import os
import re
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import structlog

from syncd.cli.main import main
from syncd.cli.rebuild import SHOW_IDS, Summary, print_summary
from syncd.journal import Journal
from syncd.remote.client import RemoteFile
from tests.syncenv import API_KEY, FOREIGN, Bench, bench, sha

pytestmark = pytest.mark.timeout(120)
PAGES = math.ceil((1 + len(FOREIGN)) / 1000)  # a small tree and the bench's foreign files
_COUNT = re.compile(r"^\s+(\d+) (adopted|to upload|ambiguous|unmatched|foreign)\b", re.M)


@pytest.fixture(autouse=True)
def _cli_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The bench's key for the CLI; the logging the CLI configures is undone afterwards."""
    monkeypatch.setenv("ANTHROPIC_API_KEY", API_KEY)
    saved = structlog.get_config()
    yield
    structlog.configure(**saved)


def config_file(b: Bench) -> Path:
    """A TOML config with the bench's root, emulator and journal."""
    path = b.tmp / "syncd.toml"
    path.write_text(
        f"root = {json.dumps(str(b.root))}\n"
        f"[remote]\nbase_url = {json.dumps(b.emu.base_url)}\n"
        "requests_per_minute = 60000\nburst = 100\n"
        f"[state]\njournal = {json.dumps(str(journal_path(b)))}\n"
    )
    return path


def journal_path(b: Bench) -> Path:
    return b.tmp / "state" / "journal.db"


def delete_journal(b: Bench) -> None:
    for suffix in ("", "-wal", "-shm"):
        journal_path(b).with_name("journal.db" + suffix).unlink(missing_ok=True)


def cli(b: Bench, capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    """Run `syncd <argv> --config <bench config>`; return the exit code, stdout and stderr."""
    capsys.readouterr()
    code = main([*argv, "--config", str(config_file(b))])
    out, err = capsys.readouterr()
    return code, out, err


def counts(out: str) -> dict[str, int]:
    """The summary's counts by label: adopted, to upload, ambiguous, unmatched, foreign."""
    return {label: int(n) for n, label in _COUNT.findall(out)}


def live_ids(b: Bench, filename: str) -> list[str]:
    return sorted(f.id for f in b.emu.stored() if f.filename == filename and not f.deleted)


def moved_aside(b: Bench) -> list[str]:
    return sorted(p.name for p in journal_path(b).parent.glob("journal.db.broken-*"))


def test_rebuild_of_1000_files_sends_only_list_requests(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Lost journal, 1,000 files: rebuild and the next sync only list; an edit then costs
    1 + 1 and the one-request probe (the full pass is not due yet)."""
    with bench(tmp_path) as b:
        for i in range(1000):
            b.write(f"d{i % 10}/sub{i % 7}/file-{i}.txt", b"content %d\n" % i)
        assert 0 == b.sync_once()
        delete_journal(b)
        pages = math.ceil((1000 + len(FOREIGN)) / 1000)
        b.emu.reset_stats()
        code, out, _ = cli(b, capsys, "rebuild")
        # Without a name_prefix the bench's foreign names decode like ours: reported, untouched.
        expected = (0, {"list": pages},
                    {"adopted": 1000, "to upload": 0, "ambiguous": 0, "unmatched": 2,
                     "foreign": 0})
        assert expected == (code, b.counts(), counts(out))
        b.emu.reset_stats()
        assert 0 == b.sync_once()
        expected_sync = {"list": pages}
        assert expected_sync == b.counts()
        b.write("d3/sub3/file-3.txt", b"edited, and longer than before\n")
        b.emu.reset_stats()
        assert 0 == b.sync_once()
        expected_edit = {"list": 1, "upload": 1, "delete": 1}
        assert expected_edit == b.counts()
        b.assert_converged()


def test_corrupt_journal_is_named_by_sync_and_moved_aside_by_rebuild(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A corrupt journal: sync refuses naming `syncd rebuild`; rebuild moves it aside unasked."""
    with bench(tmp_path) as b:
        b.write("a.txt", b"alpha")
        b.write("dir/b.txt", b"beta")
        assert 0 == b.sync_once()
        delete_journal(b)
        garbage = b"this is not an SQLite database\n" * 100
        journal_path(b).write_bytes(garbage)
        code, _, err = cli(b, capsys, "sync")
        expected = (2, 1, True, True)
        assert expected == (code, len(err.splitlines()), "corrupt" in err,
                            "`syncd rebuild`" in err)
        b.emu.reset_stats()
        code, out, _ = cli(b, capsys, "rebuild")
        broken = moved_aside(b)
        expected_rebuild = (0, 1, {"list": PAGES}, 2)
        assert expected_rebuild == (code, len(broken), b.counts(), counts(out)["adopted"])
        assert garbage == (journal_path(b).parent / broken[0]).read_bytes()
        assert f"moved the old journal aside to {journal_path(b).parent / broken[0]}" in out
        b.emu.reset_stats()
        assert 0 == b.sync_once()
        assert {"list": PAGES} == b.counts()


def test_healthy_journal_is_kept_unless_forced(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A journal that opens fine: rebuild refuses (exit 2, one line); --force moves it aside."""
    with bench(tmp_path) as b:
        b.write("a.txt", b"alpha")
        assert 0 == b.sync_once()
        b.emu.reset_stats()
        code, out, err = cli(b, capsys, "rebuild")
        expected: tuple[int, str, int, bool, list[str], dict[str, int]] = (2, "", 1, True, [], {})
        assert expected == (code, out, len(err.splitlines()), "--force" in err, moved_aside(b),
                            b.counts())
        code, out, _ = cli(b, capsys, "rebuild", "--force")
        expected_forced = (0, 1, 1)
        assert expected_forced == (code, len(moved_aside(b)), counts(out)["adopted"])


def test_locked_journal_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A journal held by a running syncd: rebuild refuses with exit 2 and moves nothing."""
    with bench(tmp_path) as b:
        b.write("a.txt", b"alpha")
        assert 0 == b.sync_once()
        settings = b.settings()
        with Journal.open(journal_path(b), str(b.root.absolute()), settings.remote.base_url):
            code, _, err = cli(b, capsys, "rebuild", "--force")
        expected: tuple[int, bool, list[str]] = (2, True, [])
        assert expected == (code, f"is in use by syncd pid {os.getpid()}" in err, moved_aside(b))


def test_two_same_size_copies_adopt_none_and_an_edit_deletes_neither(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Ours and a newer foreign file of the same name and size: none adopted, both kept."""
    with bench(tmp_path) as b:
        data = b"the report, same size in both copies\n"
        b.write("docs/report.txt", data)
        b.write("other.txt", b"other")
        assert 0 == b.sync_once()
        [older] = live_ids(b, "docs%2Freport.txt")
        foreign = b.emu.seed_foreign("docs%2Freport.txt", data)  # another program's, no prefix
        b.foreign_ids[foreign] = sha(data)
        delete_journal(b)
        b.emu.reset_stats()
        code, out, _ = cli(b, capsys, "rebuild")
        expected = (0, {"list": PAGES}, 1, 1, 1, True)
        assert expected == (code, b.counts(), counts(out)["adopted"], counts(out)["ambiguous"],
                            counts(out)["to upload"],
                            f"docs%2Freport.txt ({older}, {foreign})" in out
                            or f"docs%2Freport.txt ({foreign}, {older})" in out)
        with Journal.open_readonly(journal_path(b)) as journal:
            assert None is journal.get("docs/report.txt")
        b.emu.reset_stats()
        assert 0 == b.sync_once()  # uploaded fresh, touching neither copy
        b.write("docs/report.txt", b"edited: the old copy is replaced, never the foreign one\n")
        assert 0 == b.sync_once()
        live = live_ids(b, "docs%2Freport.txt")
        expected_after = (True, True, 3)
        assert expected_after == (older in live, foreign in live, len(live))
        assert b.foreign_intact()


def test_summary_lists_every_ambiguous_name(tmp_path: Path) -> None:
    """More ambiguous names than SHOW_IDS: every one is printed, none is cut off."""
    out = io.StringIO()
    created = datetime.fromtimestamp(0, UTC)
    copies = [RemoteFile(f"file_{i}{c}", f"n{i}.txt", "text/plain", 1, created)
              for i in range(SHOW_IDS + 3) for c in "ab"]
    summary = Summary(tmp_path / "j.db", ambiguous=copies)
    print_summary(summary, out)
    printed = [f"n{i}.txt (file_{i}a, file_{i}b)" in out.getvalue() for i in range(SHOW_IDS + 3)]
    assert [True] * (SHOW_IDS + 3) == printed


def test_remote_copy_of_deleted_file_is_left_alone_and_reported(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A file deleted while the journal was missing: its remote copy is reported, never deleted."""
    with bench(tmp_path) as b:
        b.write("keep.txt", b"keep")
        b.write("gone/old.txt", b"deleted while the journal was missing")
        assert 0 == b.sync_once()
        [gone] = live_ids(b, "gone%2Fold.txt")
        delete_journal(b)
        (b.root / "gone" / "old.txt").unlink()
        code, out, _ = cli(b, capsys, "rebuild")
        expected = (0, {"adopted": 1, "to upload": 0, "ambiguous": 0, "unmatched": 3,
                        "foreign": 0}, True)
        assert expected == (code, counts(out), f"{gone} (gone%2Fold.txt)" in out)
        b.emu.reset_stats()
        assert 0 == b.sync_once()
        expected_after = ({"list": PAGES}, [gone])
        assert expected_after == (b.counts(), live_ids(b, "gone%2Fold.txt"))


def test_file_resized_while_journal_missing_is_uploaded_old_copy_kept(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A size change while the journal was missing: not adopted; the next sync uploads it once."""
    with bench(tmp_path) as b:
        b.write("a.txt", b"short")
        assert 0 == b.sync_once()
        [old] = live_ids(b, "a.txt")
        delete_journal(b)
        b.write("a.txt", b"much longer than it was")
        code, out, _ = cli(b, capsys, "rebuild")
        expected = (0, {"adopted": 0, "to upload": 1, "ambiguous": 0, "unmatched": 3,
                        "foreign": 0})
        assert expected == (code, counts(out))
        b.emu.reset_stats()
        assert 0 == b.sync_once()
        copies = live_ids(b, "a.txt")
        expected_after = ({"list": PAGES, "upload": 1}, 2, True)
        assert expected_after == (b.counts(), len(copies), old in copies)
