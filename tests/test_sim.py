"""The simulation (tests/sim), bounded for CI: every profile on a few seeds, plus the harness's
own guarantees (a seed replays the same operations; the oracle sees every kind of divergence)."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from syncd.emulator import StoredFile
from tests.sim import oracle
from tests.sim.ops import Names, World, initial_tree, next_op
from tests.sim.profiles import PROFILES
from tests.sim.runner import run_many

CI_SEEDS = (1, 2)


@pytest.mark.timeout(300)
@pytest.mark.parametrize("profile", list(PROFILES))
def test_profile_converges_on_ci_seeds(tmp_path: Path, profile: str) -> None:
    """`syncd run` ends as an exact mirror on every CI seed of this profile (2 at a time)."""
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
