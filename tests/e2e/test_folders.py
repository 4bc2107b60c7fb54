"""Several folders in one daemon ([[folder]] tables): one request budget, a journal, prefix,
manifest and status per folder, and every invariant per folder."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from syncd.cli.main import main
from syncd.config import load_settings
from syncd.engine.folders import open_mirrors
from syncd.engine.mirror import Mirror
from syncd.remote.names import encode_name
from syncd.service.loop import run_daemon
from tests.syncenv import API_KEY, Bench, bench, sha, wait_until

FOLDERS = {"docs": "docs/", "photos": "photos/"}


def write_folders_config(b: Bench, extra: str = "") -> Path:
    """A config of two folders under b.tmp, each with its own prefix, journal and manifest."""
    text = (f'[remote]\nbase_url = "{b.emu.base_url}"\nrequests_per_minute = 60000\n'
            "burst = 100\n[sync]\nsettle_seconds = 0.3\nsettle_max_seconds = 5.0\n"
            f"max_delete_fraction = 1.0\n{extra}")
    for name, prefix in FOLDERS.items():
        (b.tmp / name).mkdir(exist_ok=True)
        text += (f'\n[[folder]]\nname = "{name}"\nroot = "{b.tmp / name}"\n'
                 f'name_prefix = "{prefix}"\njournal = "{b.tmp / "state" / (name + ".db")}"\n'
                 f'manifest = "{b.tmp / "out" / (name + ".json")}"\n')
    path = b.tmp / "syncd.toml"
    path.write_text(text)
    return path


def remote_of(b: Bench) -> dict[str, str]:
    """Our live copies in the emulator: remote name -> sha256 (each name once, or it fails)."""
    seen: dict[str, str] = {}
    for f in b.emu.stored():
        if not f.foreign and not f.deleted:
            assert f.filename not in seen, f"two copies of {f.filename}"
            seen[f.filename] = f.sha256
    return seen


def expected(b: Bench) -> dict[str, str]:
    """What the two folders should hold remotely: every local file under its folder's prefix."""
    want = {}
    for name, prefix in FOLDERS.items():
        root = b.tmp / name
        for path in root.rglob("*"):
            if path.is_file():
                want[encode_name(path.relative_to(root).as_posix(), prefix)] = sha(
                    path.read_bytes())
    return want


@pytest.fixture
def two(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Bench, Path]]:
    monkeypatch.setenv("ANTHROPIC_API_KEY", API_KEY)
    with bench(tmp_path) as b:
        yield b, write_folders_config(b)


@contextmanager
def running(config: Path) -> Iterator[list[Mirror]]:
    """`syncd run` on every folder of ``config``, in a thread, until READY; stopped on exit."""
    stop, ready = threading.Event(), threading.Event()
    codes: list[int] = []
    with open_mirrors(load_settings(config)) as mirrors:
        thread = threading.Thread(
            target=lambda: codes.append(run_daemon(mirrors, stop, on_ready=ready.set)),
            daemon=True,
        )
        thread.start()
        try:
            assert ready.wait(30), "daemon did not become ready"
            yield mirrors
        finally:
            stop.set()
            thread.join(30)
    assert codes == [0]


def test_sync_mirrors_each_folder_under_its_prefix(two: tuple[Bench, Path]) -> None:
    """`syncd sync` on two folders: each file once, under its folder's prefix, with the same
    relative path in both folders kept apart; each folder has its own manifest."""
    b, config = two
    for name in FOLDERS:
        (b.tmp / name / "same.txt").write_text(f"in {name}")
        (b.tmp / name / "sub").mkdir()
        (b.tmp / name / "sub" / f"{name}.txt").write_text(name)
    assert 0 == main(["sync", "--config", str(config)])
    manifests = {n: json.loads((b.tmp / "out" / f"{n}.json").read_text()) for n in FOLDERS}
    in_manifests = {n: sorted(m["files"]) for n, m in manifests.items()}
    assert expected(b) == remote_of(b)
    assert in_manifests == {n: ["same.txt", f"sub/{n}.txt"] for n in FOLDERS}


def test_run_keeps_folders_apart_and_deletes_only_its_own(two: tuple[Bench, Path]) -> None:
    """One daemon, two folders: an edit in one is uploaded, a deletion in the other deletes
    that folder's copy only; the other folder's copy of the same path and foreign files stay."""
    b, config = two
    for name in FOLDERS:
        (b.tmp / name / "a.txt").write_text(f"{name} a")
    with running(config) as mirrors:
        wait_until(lambda: remote_of(b) == expected(b), what="first pass")
        (b.tmp / "photos" / "new.txt").write_text("live edit")
        (b.tmp / "docs" / "a.txt").unlink()
        wait_until(lambda: remote_of(b) == expected(b), what="edit and deletion")
        names = [m.name for m in mirrors]
    assert (names, b.foreign_intact()) == (list(FOLDERS), True)
    assert encode_name("a.txt", "photos/") in remote_of(b)


def test_status_ls_errors_show_every_folder_or_the_one_named(
    two: tuple[Bench, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    """status, ls and errors show all folders by default, one with --folder; an unknown name
    is one line, exit 2."""
    b, config = two
    (b.tmp / "docs" / "d.txt").write_text("d")
    (b.tmp / "photos" / "p.txt").write_text("p")
    assert 0 == main(["sync", "--config", str(config)])
    capsys.readouterr()
    assert 0 == main(["status", "--config", str(config), "--json"])
    folders = json.loads(capsys.readouterr().out)["folders"]
    assert 0 == main(["ls", "--config", str(config), "--folder", "photos"])
    only = capsys.readouterr().out
    assert 0 == main(["ls", "--config", str(config), "--json"])
    listed = {(i["folder"], i["path"]) for i in json.loads(capsys.readouterr().out)}
    assert 2 == main(["errors", "--config", str(config), "--folder", "music"])
    err = capsys.readouterr().err
    assert ([f["folder"] for f in folders], [f["synced"] for f in folders]) == (
        ["docs", "photos"], [1, 1])
    assert ("p.txt" in only and "d.txt" not in only, listed) == (
        True, {("docs", "d.txt"), ("photos", "p.txt")})
    assert (len(err.splitlines()), "no folder named 'music'" in err) == (1, True)


def test_overlapping_prefixes_are_one_line_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Two folders whose prefixes start one another: refused before anything runs."""
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
    config = tmp_path / "c.toml"
    config.write_text(
        f'[[folder]]\nname = "a"\nroot = "{tmp_path / "a"}"\nname_prefix = "team/"\n'
        f'[[folder]]\nname = "b"\nroot = "{tmp_path / "b"}"\nname_prefix = "team/b/"\n')
    assert 2 == main(["sync", "--config", str(config)])
    err = capsys.readouterr().err
    assert (len(err.splitlines()), "overlap in name_prefix" in err) == (1, True)


def test_the_multi_folder_example_in_deploy_readme_loads(tmp_path: Path) -> None:
    """The [[folder]] config deploy/README.md shows is valid as written: two folders."""
    text = (Path(__file__).parents[2] / "deploy" / "README.md").read_text()
    blocks = [b.split("```", 1)[0] for b in text.split("```toml\n")[1:]]
    blocks = [b for b in blocks if "[[folder]]" in b]
    config = tmp_path / "c.toml"
    config.write_text(blocks[0])
    assert ["docs", "reports"] == [name for name, _ in load_settings(config).folders()]
