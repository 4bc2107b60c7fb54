"""`syncd run` with a real inotify watch: edits, renames, editor saves; requests counted."""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import pytest

from syncd.engine import oneshot
from syncd.engine.mirror import Mirror
from syncd.local.scan import ScanResult
from tests.syncenv import Bench, bench, wait_until

pytestmark = pytest.mark.timeout(120)


def settle(b: Bench, counts: dict[str, int] | None = None) -> None:
    """Wait until the remote mirrors the folder (and, if given, the request counts are met)."""
    wait_until(b.converged, what="remote == local")
    if counts is not None:
        try:
            wait_until(lambda: b.counts() == counts, timeout=10, what=f"counts {counts}")
        except AssertionError:
            assert counts == b.counts()


def started(b: Bench, files: dict[str, bytes]) -> None:
    for rel, data in files.items():
        b.write(rel, data)
    b.sync_once()


def test_modify_touch_delete_cost_two_zero_one(tmp_path: Path) -> None:
    """Modify = 1 upload + 1 delete; touch = nothing; delete = 1 delete."""
    with bench(tmp_path) as b:
        started(b, {"a.txt": b"a", "b.txt": b"b", "c.txt": b"c"})
        with b.running():
            b.emu.reset_stats()  # the start-up list page is not part of the scenario
            b.write("a.txt", b"a, edited")
            settle(b, {"upload": 1, "delete": 1})
            os.utime(b.root / "b.txt", ns=(10**18, 10**18))
            time.sleep(1.0)  # give a wrongly uploaded touch time to show up in the counts
            assert {"upload": 1, "delete": 1} == b.counts()
            (b.root / "c.txt").unlink()
            settle(b, {"upload": 1, "delete": 2})


def test_rename_file_and_directory(tmp_path: Path) -> None:
    """A renamed file and a renamed directory of 3 files: new names up, old names gone."""
    files = {"x.txt": b"x", **{f"dir/f{i}.txt": b"%d" % i for i in range(3)}}
    with bench(tmp_path) as b:
        started(b, files)
        with b.running():
            b.emu.reset_stats()  # the start-up list page is not part of the scenario
            (b.root / "x.txt").rename(b.root / "y.txt")
            (b.root / "dir").rename(b.root / "moved")
            settle(b, {"upload": 4, "delete": 4})


def vim_save(root: Path, name: str, data: bytes) -> None:
    """vim's default save: probe file 4913, swap file, backup by rename, write, clean up."""
    (root / "4913").write_bytes(b"")
    (root / "4913").unlink()
    swap = root / f".{name}.swp"
    swap.write_bytes(b"swap" * 100)
    (root / name).rename(root / f"{name}~")
    (root / name).write_bytes(data)
    (root / f"{name}~").unlink()
    swap.unlink()


def emacs_save(root: Path, name: str, data: bytes) -> None:
    """emacs: lock symlink .#name, backup name~, write in place, drop the lock."""
    lock = root / f".#{name}"
    os.symlink("user@host.1234:1", lock)
    shutil.copy2(root / name, root / f"{name}~")
    (root / name).write_bytes(data)
    lock.unlink()


def gedit_save(root: Path, name: str, data: bytes) -> None:
    """gedit/GIO: write .goutputstream-XXXXXX, then rename it over the file."""
    tmp = root / ".goutputstream-AB12CD"
    tmp.write_bytes(data)
    tmp.rename(root / name)


def sed_inplace(root: Path, name: str, data: bytes) -> None:
    """sed -i: write a sedXXXXXX temporary in the same directory, rename it over the file."""
    tmp = root / "sedAb3xYz"
    tmp.write_bytes(data)
    tmp.rename(root / name)


@pytest.mark.parametrize("save", [vim_save, emacs_save, gedit_save, sed_inplace])
def test_editor_saves_cost_one_upload_and_one_delete(tmp_path: Path, save: object) -> None:
    """Each editor's save pattern is 1 upload + 1 delete, and no temporary file is uploaded."""
    with bench(tmp_path) as b:
        started(b, {"notes.txt": b"first version"})
        with b.running():
            b.emu.reset_stats()  # the start-up list page is not part of the scenario
            save(b.root, "notes.txt", b"second version, longer")  # type: ignore[operator]
            settle(b, {"upload": 1, "delete": 1})
        names = {f.filename for f in b.emu.stored() if not f.foreign}
        assert {"notes.txt"} == names


def test_growing_file_is_uploaded_once_when_it_stops(tmp_path: Path) -> None:
    """A file appended to for 3 s (every 0.1 s) is uploaded once, with its final content."""
    with bench(tmp_path, settle_seconds=0.5) as b:
        started(b, {})
        with b.running():
            b.emu.reset_stats()  # the start-up list page is not part of the scenario
            deadline = time.monotonic() + 3.0
            with open(b.root / "log.txt", "ab") as out:
                while time.monotonic() < deadline:
                    out.write(b"line\n" * 100)
                    out.flush()
                    time.sleep(0.1)
            settle(b, {"upload": 1})


def test_thousand_files_dropped_at_once(tmp_path: Path) -> None:
    """1,000 files copied in at once: 1,000 uploads, no more."""
    with bench(tmp_path) as b:
        started(b, {})
        staging = tmp_path / "staging"
        for i in range(1000):
            (staging / f"s{i % 10}").mkdir(parents=True, exist_ok=True)
            (staging / f"s{i % 10}" / f"{i}.txt").write_bytes(b"%d" % i)
        with b.running():
            b.emu.reset_stats()  # the start-up list page is not part of the scenario
            (staging).rename(b.root / "drop")
            wait_until(b.converged, timeout=60, what="1,000 files mirrored")
            wait_until(lambda: b.counts() == {"upload": 1000}, timeout=10, what="counts")


def test_file_of_150_mb(tmp_path: Path) -> None:
    """A 150 MB file is mirrored intact."""
    with bench(tmp_path) as b:
        started(b, {})
        block = os.urandom(1024 * 1024)
        with b.running():
            b.emu.reset_stats()  # the start-up list page is not part of the scenario
            with open(b.root / "big.bin", "wb") as out:
                for i in range(150):
                    out.write(block[i:] + block[:i])
            wait_until(b.converged, timeout=90, what="150 MB file mirrored")
            assert {"upload": 1} == b.counts()


def test_sync_then_run_on_one_daemon(tmp_path: Path) -> None:
    """A daemon that ran `sync_once` (as `syncd demo` does) keeps working when it then runs."""
    import threading

    from syncd.service.loop import run_daemon

    with bench(tmp_path) as b, b.daemon() as daemon:
        b.write("first.txt", b"1")
        oneshot.sync_once(daemon)
        stop = threading.Event()
        runner = threading.Thread(target=run_daemon, args=(daemon, stop), daemon=True)
        runner.start()
        try:
            b.write("second.txt", b"2")
            wait_until(b.converged, what="second file mirrored by the same daemon")
        finally:
            stop.set()
            runner.join(timeout=30)
        assert ["first.txt", "second.txt"] == sorted(b.remote())


def test_a_file_written_just_after_the_start_up_scan_is_not_missed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The start-up scan walks, then a file appears before the workers run: the watcher, started
    before the scan, reports it (it used to start after, and the file waited for the hourly
    rescan)."""
    from syncd.service import loop

    scan = loop._first_scan

    def scan_then_write(daemon: Mirror) -> ScanResult:
        result = scan(daemon)
        (daemon.root / "late.txt").write_bytes(b"written between the scan and the workers")
        return result

    monkeypatch.setattr(loop, "_first_scan", scan_then_write)
    with bench(tmp_path) as b, b.running():
        wait_until(lambda: "late.txt" in b.remote(), what="late.txt uploaded")
        assert ["late.txt"] == sorted(b.remote())
