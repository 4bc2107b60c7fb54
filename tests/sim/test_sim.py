"""The simulation (tests/sim), bounded for CI: every profile on a few seeds, plus the harness's
own guarantees (a seed replays the same operations; the oracle sees every kind of divergence)."""

from __future__ import annotations

import hashlib
import os
import random
import stat
import threading
from datetime import UTC, datetime
from pathlib import Path

import pytest

from syncd.emulator.app import StoredFile
from tests.sim import ops, oracle
from tests.sim.ops import Names, World, initial_tree, next_op
from tests.sim.profiles import PROFILES
from tests.sim.runner import run_many

CI_SEEDS = (1,)  # the long runs (docs/RELIABILITY.md) cover many more


@pytest.mark.timeout(300)
@pytest.mark.parametrize("profile", list(PROFILES))
def test_profile_converges_on_ci_seeds(tmp_path: Path, profile: str) -> None:
    """`syncd run` ends as an exact mirror on the CI seed of this profile."""
    results = run_many([(profile, seed) for seed in CI_SEEDS], tmp_path, jobs=2)
    assert [] == [r.report() for r in results if not r.ok]


def generate(tmp: Path, seed: int) -> list[str]:
    """Build a seed's tree and 25 operations in ``tmp``; return them as text."""
    world = World(tmp / "root", tmp / "outside", 4_000_000)
    world.root.mkdir(parents=True)
    world.outside.mkdir()
    (tmp / "elsewhere.txt").write_text("outside\n")
    rng = random.Random(seed)
    names = Names(rng)
    lines = []
    for op in [*initial_tree(rng, names, world, 30)]:
        lines.append(f"{op} {world.apply(op)}")
    for _ in range(25):
        op = next_op(rng, names, world.survey(), world)
        lines.append(f"{op} {world.apply(op)}")
    return lines


def test_a_seed_replays_the_same_operations(tmp_path: Path) -> None:
    """Two runs of one seed generate and apply the same operations, with the same outcomes."""
    assert generate(tmp_path / "a", 11) == generate(tmp_path / "b", 11)


def stored(file_id: str, name: str, sha: str, foreign: bool = False,
           deleted: bool = False) -> StoredFile:
    return StoredFile(file_id, name, "text/plain", 1, sha, "2025-01-01T00:00:00Z", False,
                      foreign, deleted)


def test_oracle_names_every_kind_of_divergence() -> None:
    """Missing, stale, orphan, a touched foreign file and a wrong error are each reported."""
    want = oracle.Expected(files={"a.txt": ("aa", 1), "b.txt": ("bb", 1), "c.txt": ("cc", 1)},
                           oversize={"big.bin": ("zz", 9)})
    entries = [oracle.Entry("a.txt", "f1", "aa", 1, "a.txt"),
               oracle.Entry("b.txt", "f2", "old", 1, "b.txt")]
    errors = [oracle.Error("gone.txt", "transient", "cannot read")]
    remote = [stored("f1", "a.txt", "aa"), stored("f2", "b.txt", "old"),
              stored("f3", "a.txt", "aa"), stored("x1", "theirs.pdf", "changed", foreign=True)]
    problems = oracle.diff(want, entries, errors, remote, {"x1": "original"}, "")
    expected = [
        "missing from ls: 'c.txt'",
        "stale in ls: 'b.txt'",
        "orphan or duplicate on the remote: f3",
        "foreign file x1 touched",
        "oversize file not in errors as permanent 413: 'big.bin'",
        "errors lists a path that is no file to sync: 'gone.txt'",
    ]
    unreported = [e for e in expected if not any(p.startswith(e) for p in problems)]
    assert [] == unreported


def test_oracle_accepts_an_exact_mirror() -> None:
    """An exact mirror with its oversize file in errors yields an empty diff."""
    want = oracle.Expected(files={"a.txt": ("aa", 1)}, oversize={"big.bin": ("zz", 9)})
    entries = [oracle.Entry("a.txt", "f1", "aa", 1, "a.txt")]
    errors = [oracle.Error("big.bin", "permanent", "413 request_too_large: too big")]
    remote = [stored("f1", "a.txt", "aa"), stored("x1", "theirs.pdf", "t", foreign=True),
              stored("f0", "a.txt", "gone", deleted=True)]
    assert [] == oracle.diff(want, entries, errors, remote, {"x1": "t"}, "")


def test_oracle_finds_the_key_in_a_log(tmp_path: Path) -> None:
    """A log line holding the API key is a divergence."""
    log = tmp_path / "daemon-1.log"
    log.write_text('{"event": "request", "key": "sk-ant-secret"}\n')
    assert [f"the API key appears in {log}"] == oracle.secret_diff("sk-ant-secret", [log])


def small_world(tmp: Path) -> World:
    world = World(tmp / "root", tmp / "outside", 4_000_000, tag="t")
    world.root.mkdir(parents=True)
    world.outside.mkdir()
    return world


def tree(root: Path) -> dict[str, bytes | str]:
    """Every entry under ``root``: file contents, "dir" or "link -> target"."""
    found: dict[str, bytes | str] = {}
    for path in sorted(root.rglob("*")):
        rel = str(path.relative_to(root))
        if path.is_symlink():
            found[rel] = f"link -> {os.readlink(path)}"
        elif path.is_dir():
            found[rel] = "dir"
        else:
            found[rel] = path.read_bytes()
    return found


@pytest.mark.parametrize("where", ["beside", "outside"])
def test_dir_exchange_restores_the_folder_and_keeps_outside_content_outside(
        tmp_path: Path, where: str) -> None:
    """Files appended to, the exchange undone, the link gone; the outside files have the same
    names and sizes, marked content, and exist only outside root."""
    world = small_world(tmp_path)
    (world.root / "d" / "sub").mkdir(parents=True)
    for rel, data in [("d/a.txt", b"a" * 300), ("d/sub/b.bin", b""), ("keep.txt", b"k")]:
        (world.root / rel).write_bytes(data)
    before = tree(world.root)
    seen: dict[str, bool] = {}

    def peek() -> None:  # during the hold: d is a link to the outside directory
        seen["link"] = (world.root / "d").is_symlink()
        seen["marked"] = (world.root / "d" / "a.txt").read_bytes().startswith(ops.OUTSIDE_MARK)

    timer = threading.Timer(0.1, peek)
    timer.start()
    assert "" == world.apply(ops.Op("dir_exchange", "d", where, cseed=1, count=400))
    timer.join()
    after = tree(world.root)
    assert {"link": True, "marked": True} == seen
    assert sorted(before) == sorted(after)  # same entries; no link left behind
    assert after["keep.txt"] == before["keep.txt"]
    assert isinstance(after["d/a.txt"], bytes) and len(after["d/a.txt"]) > 300
    outside = [p for p in world.scratch.rglob("*") if p.is_file()]
    shas = {hashlib.sha256(p.read_bytes()).hexdigest() for p in outside}
    assert (2, shas) == (len(outside), world.outside_shas)
    inside = {hashlib.sha256(v).hexdigest() for v in after.values() if isinstance(v, bytes)}
    assert set() == inside & world.outside_shas
    sizes = {p.name: p.stat().st_size for p in outside}
    assert sizes["a.txt"] == len(after["d/a.txt"])


def test_fifo_swap_ends_with_a_regular_file(tmp_path: Path) -> None:
    """A FIFO stands at the path during the hold; a regular file with new content after."""
    world = small_world(tmp_path)
    (world.root / "f.txt").write_bytes(b"old")
    seen: list[bool] = []
    timer = threading.Timer(0.3, lambda: seen.append(
        stat.S_ISFIFO(os.lstat(world.root / "f.txt").st_mode)))
    timer.start()
    assert "" == world.apply(ops.Op("fifo_swap", "f.txt", size=10, cseed=2, count=500))
    timer.join()
    assert ([True], ops.content(3, 10)) == (seen, (world.root / "f.txt").read_bytes())


def test_deep_tree_is_one_chain_offered_only_at_its_top(tmp_path: Path) -> None:
    """~300 one-character directories and a file at the bottom; the survey offers the top
    directory (for rmtree, moves) and the file, not the chain."""
    world = small_world(tmp_path)
    assert "" == world.apply(ops.Op("deep_tree", "deep1", size=5, cseed=3, count=300))
    now = world.survey()
    assert (["deep1"], 1) == (now.dirs, len(now.files))
    assert (301, ops.content(3, 5)) == (now.files[0].count("/"),
                                        (world.root / now.files[0]).read_bytes())
    assert "" == world.apply(ops.Op("rmtree", "deep1"))


def test_remote_ops_without_a_remote_are_recorded_and_skipped(tmp_path: Path) -> None:
    """The replay test's World has no emulator: a remote op does nothing, and says so."""
    world = small_world(tmp_path)
    assert "no remote to apply it to" == world.apply(ops.Op("remote_delete", "a.txt"))


def row(file_id: str, sha: str = "s", created: float = 0.0, deleted: float | None = None,
        foreign: bool = False) -> oracle.StoredRow:
    return oracle.StoredRow(file_id, f"{file_id}.txt", sha, created, deleted, foreign)


def test_oracle_finds_content_read_outside_root() -> None:
    """A stored row (also a deleted one) with an outside sha256, or a live file starting with
    the mark, is invariant 10 broken; other rows are fine."""
    rows = {"f1": row("f1", "out1", deleted=5.0), "f2": row("f2", "in"), "f3": row("f3", "x")}
    heads = {"f2": b"ordinary", "f3": ops.OUTSIDE_MARK}
    problems = oracle.outside_diff(rows, heads, {"out1"})
    assert 2 == len(problems)
    assert "f1" in problems[0] and "f3" in problems[1]
    assert [] == oracle.outside_diff({"f2": row("f2", "in")}, {"f2": b"x"}, {"out1"})


def gone(file_id: str, at: float) -> dict[str, object]:
    stamp = datetime.fromtimestamp(at, UTC).isoformat().replace("+00:00", "Z")
    return {"event": "copy gone; uploading again", "reason": "missing", "file_id": file_id,
            "timestamp": stamp}


def test_oracle_finds_a_reconcile_that_acted_on_a_short_listing() -> None:
    """Eleven live copies marked missing in one pass is a short listing acted on; copies the
    simulation deleted, copies deleted before the mark, and ten or fewer are not."""
    rows = {f"f{i}": row(f"f{i}", created=10.0, deleted=200.0) for i in range(12)}
    rows["d0"] = row("d0", created=10.0, deleted=50.0)
    reconciled = {"event": "reconciled"}
    eleven = [gone(f"f{i}", 100.0) for i in range(11)]
    assert 1 == len(oracle.false_missing_diff([[*eleven, reconciled]], rows, set()))
    assert [] == oracle.false_missing_diff([[*eleven, reconciled]], rows, {"f0"})
    ten_and_a_true_one = [*eleven[:10], gone("d0", 100.0), reconciled]
    assert [] == oracle.false_missing_diff([ten_and_a_true_one], rows, set())
    split = [*eleven[:6], reconciled, *eleven[6:], reconciled]
    assert [] == oracle.false_missing_diff([split], rows, set())
