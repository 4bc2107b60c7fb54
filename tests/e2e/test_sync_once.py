"""`syncd sync` end to end against the emulator over loopback: results and request counts."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from syncd.engine.mirror import Options
from syncd.errors import SafetyStop
from tests.syncenv import bench

pytestmark = pytest.mark.timeout(120)


def test_initial_sync_of_200_files_costs_200_uploads_and_one_list(tmp_path: Path) -> None:
    """200 new files: exactly 200 uploads and ceil(200/1000) = 1 list page."""
    with bench(tmp_path) as b:
        for i in range(200):
            b.write(f"d{i % 7}/file-{i}.txt", b"content %d\n" % i)
        b.emu.reset_stats()
        assert b.sync_once() == 0
        assert {"upload": 200, "list": 1} == b.counts()
        b.assert_converged()


def test_restart_with_nothing_changed_costs_only_the_list(tmp_path: Path) -> None:
    """A second pass over an unchanged tree sends the list request and nothing else."""
    with bench(tmp_path) as b:
        for i in range(30):
            b.write(f"f{i}.md", b"# %d" % i)
        b.sync_once()
        b.emu.reset_stats()
        assert b.sync_once() == 0
        assert {"list": 1} == b.counts()


def test_changes_made_while_stopped_are_synced_at_restart(tmp_path: Path) -> None:
    """Modify, touch, delete and create while syncd is down: 2 + 0 + 1 + 1 requests."""
    with bench(tmp_path) as b:
        for name in ("keep", "edit", "touch", "gone"):
            b.write(f"{name}.txt", name.encode())
        b.sync_once()
        b.write("edit.txt", b"edited and longer")
        os.utime(b.root / "touch.txt", ns=(10**18, 10**18))
        (b.root / "gone.txt").unlink()
        b.write("new.txt", b"new")
        b.emu.reset_stats()
        assert b.sync_once() == 0
        assert {"list": 1, "upload": 2, "delete": 2} == b.counts()
        b.assert_converged()


def test_same_size_edit_is_found_by_hash(tmp_path: Path) -> None:
    """An edit that keeps the size but moves mtime is uploaded (1 upload, 1 delete)."""
    with bench(tmp_path) as b:
        path = b.write("a.txt", b"aaaa")
        b.sync_once()
        path.write_bytes(b"bbbb")
        os.utime(path, ns=(10**18, 10**18))
        b.emu.reset_stats()
        b.sync_once()
        assert {"list": 1, "upload": 1, "delete": 1} == b.counts()
        b.assert_converged()


def test_emptied_root_deletes_nothing(tmp_path: Path) -> None:
    """Deleting every file under root is refused by the mass-delete guard: zero deletions."""
    with bench(tmp_path) as b:
        for i in range(40):
            b.write(f"f{i}.txt", b"x%d" % i)
        b.sync_once()
        for path in b.root.iterdir():
            path.unlink()
        b.emu.reset_stats()
        assert b.sync_once() == 1
        assert {"list": 1} == b.counts()
        assert 40 == len(b.remote())


def test_mass_delete_goes_through_when_allowed(tmp_path: Path) -> None:
    """--allow-mass-delete deletes what was removed, and only that."""
    with bench(tmp_path) as b:
        for i in range(40):
            b.write(f"f{i}.txt", b"x%d" % i)
        b.sync_once()
        for path in b.root.iterdir():
            path.unlink()
        assert b.sync_once(Options(allow_mass_delete=True)) == 0
        b.assert_converged()


def test_root_renamed_away_deletes_nothing(tmp_path: Path) -> None:
    """A missing root stops the pass with SafetyStop and no remote deletion."""
    with bench(tmp_path) as b:
        for i in range(20):
            b.write(f"f{i}.txt", b"x%d" % i)
        b.sync_once()
        b.root.rename(tmp_path / "elsewhere")
        b.emu.reset_stats()
        with pytest.raises(SafetyStop, match="not reachable"):
            b.sync_once()
        assert 0 == b.emu.stats()["delete"]
        assert 20 == len(b.remote())


def test_root_replaced_by_another_directory_deletes_nothing(tmp_path: Path) -> None:
    """A root that is a different directory than the one first synced (unmounted) is refused."""
    with bench(tmp_path) as b:
        for i in range(20):
            b.write(f"f{i}.txt", b"x%d" % i)
        b.sync_once()
        b.root.rename(tmp_path / "old")
        b.root.mkdir()
        b.write("f0.txt", b"x0")
        b.emu.reset_stats()
        assert b.sync_once(Options(allow_mass_delete=True)) == 1
        assert 0 == b.emu.stats()["delete"]


def test_foreign_file_with_our_name_is_not_touched(tmp_path: Path) -> None:
    """A foreign file named like one of ours (docs%2Fa.txt) survives our upload and delete."""
    with bench(tmp_path) as b:
        b.write("docs/a.txt", b"ours")
        b.sync_once()
        (b.root / "docs" / "a.txt").unlink()
        assert b.sync_once() == 0
        b.assert_converged()
