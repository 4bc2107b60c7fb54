"""The local scan on real files: walk order, eligibility, symlinks, and the merge with a journal."""

from __future__ import annotations

import os
import random
from collections.abc import Iterator
from pathlib import Path

import pytest

from syncd.errors import SafetyStop
from syncd.journal import Journal
from syncd.local.ignore import IgnoreRules
from syncd.local.scan import (
    Mark,
    Run,
    ScanResult,
    Unreadable,
    check_root,
    local_stat,
    merge,
    needs_look,
    scan_tree,
    walk,
)
from syncd.model import RACY_WINDOW_NS, Failure, LocalStat, Synced, is_racy

LATIN1 = os.fsdecode(b"caf\xe9.txt")  # not UTF-8: decodes to a lone surrogate


class Skips:
    """Records what the scan skipped."""

    def __init__(self) -> None:
        self.items: list[tuple[str, str]] = []

    def __call__(self, path: str, reason: str) -> None:
        self.items.append((path, reason))


@pytest.fixture
def root(tmp_path: Path) -> Path:
    folder = tmp_path / "root"
    folder.mkdir()
    return folder


@pytest.fixture
def journal(tmp_path: Path, root: Path) -> Iterator[Journal]:
    with Journal.open(tmp_path / "j.db", root=str(root), base_url="http://x") as j:
        yield j


def write(root: Path, rel: str, content: bytes = b"x") -> Path:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)
    return path


def scan(root: Path, follow: bool = False, skip: Skips | None = None) -> list[str]:
    """The relative paths walk() yields (Unreadable entries as '!path')."""
    items = walk(root, IgnoreRules.load(root), follow, skip or Skips())
    return [f"!{i.path}" if isinstance(i, Unreadable) else i[0] for i in items]


def stat_of(path: Path) -> LocalStat:
    return LocalStat.from_stat(os.stat(path))


def mark_into(marked: list[str]) -> Mark:
    """A scan's mark callback that keeps the paths (and drops the mtime it passes)."""
    return lambda path, _mtime_ns: marked.append(path)


def synced_for(path: Path, name: str, synced_at: float | None = None) -> Synced:
    """A Synced copy recorded from the file's real stat, well after its last write by default."""
    info = stat_of(path)
    at = synced_at if synced_at is not None else info.mtime_ns / 1e9 + 60
    return Synced(f"file_{name}", name, "ab" * 32, info.size, info.mtime_ns, info.ino,
                  "text/plain", at)


def test_walk_yields_byte_order_of_full_paths(root: Path) -> None:
    """Files come out sorted by the bytes of their relative path, across directory levels."""
    rels = ["a.txt", "a/b", "a/c/d", "a-b", "a b", "A", "ab", "a0", "é.txt", "z/y/x"]
    for rel in rels:
        write(root, rel)
    (root / os.fsdecode(b"caf\xe9.txt")).write_bytes(b"latin-1 name")
    expected = sorted([*rels, LATIN1], key=os.fsencode)
    assert expected == scan(root)


def test_walk_yields_each_files_stat(root: Path) -> None:
    """Each path comes with its size, mtime_ns and inode."""
    path = write(root, "d/f.bin", b"12345")
    items = list(walk(root, IgnoreRules.load(root), False, Skips()))
    expected = [("d/f.bin", stat_of(path))]
    assert expected == items


def test_walk_skips_ignored_files_and_directories(root: Path) -> None:
    """Default, config and .syncdignore patterns leave files out, including whole directories."""
    write(root, ".syncdignore", b"*.log\nbuild/\n")
    for rel in ["keep.txt", "x.log", "build/out.txt", ".DS_Store", "notes.txt.swp", "sub/k.txt"]:
        write(root, rel)
    expected = ["keep.txt", "sub/k.txt"]
    assert expected == scan(root)


def test_walk_skips_fifos_and_reports_them(root: Path) -> None:
    """A FIFO is not a regular file: skipped, and reported through the skip callback."""
    write(root, "a.txt")
    os.mkfifo(root / "pipe")
    skips = Skips()
    files = scan(root, skip=skips)
    expected = (["a.txt"], ["pipe"])
    assert expected == (files, [path for path, _ in skips.items])


def test_walk_does_not_follow_symlinks_by_default(root: Path) -> None:
    """A symlink is not a file to sync unless follow_symlinks is on."""
    write(root, "real.txt")
    (root / "link.txt").symlink_to(root / "real.txt")
    expected = ["real.txt"]
    assert expected == scan(root)


def test_walk_follows_symlink_inside_root_when_asked(root: Path, tmp_path: Path) -> None:
    """With follow_symlinks a link to a file inside root is synced, one outside never is."""
    write(root, "real.txt", b"inside")
    write(tmp_path, "outside.txt", b"secret")
    (root / "link.txt").symlink_to(root / "real.txt")
    (root / "out.txt").symlink_to(tmp_path / "outside.txt")
    (root / "rel.txt").symlink_to("../outside.txt")
    (root / "broken.txt").symlink_to(root / "nowhere")
    expected = ["link.txt", "real.txt"]
    assert expected == scan(root, follow=True)


def test_followed_directory_link_does_not_hide_the_real_directory(root: Path) -> None:
    """A symlink to a directory inside root never replaces the real directory's paths."""
    write(root, "sub/f.txt")
    (root / "link").symlink_to(root / "sub")
    expected = ["sub/f.txt"]
    assert expected == scan(root, follow=True)


def test_walk_survives_a_symlink_loop(root: Path) -> None:
    """A link to an ancestor directory does not make the walk run forever."""
    write(root, "d/f.txt")
    (root / "d" / "up").symlink_to(root)
    expected = ["d/f.txt"]
    assert expected == scan(root, follow=True)


@pytest.mark.usefixtures("file_permissions")
def test_unreadable_directory_is_reported(root: Path) -> None:
    """A directory that cannot be listed is reported as Unreadable, not as empty."""
    write(root, "a.txt")
    write(root, "locked/f.txt")
    (root / "locked").chmod(0)
    skips = Skips()
    try:
        files = scan(root, skip=skips)
    finally:
        (root / "locked").chmod(0o755)
    expected = (["a.txt", "!locked"], ["locked"])
    assert expected == (files, [path for path, _ in skips.items])


def test_local_stat_cases(root: Path, tmp_path: Path) -> None:
    """local_stat: a file's stat; None for a directory, a missing path or a path through a file."""
    path = write(root, "d/f.txt", b"abc")
    expected = [stat_of(path), None, None, None, None]
    actual = [
        local_stat(root, "d/f.txt", False),
        local_stat(root, "d", False),
        local_stat(root, "missing.txt", False),
        local_stat(root, "nodir/f.txt", False),
        local_stat(root, "d/f.txt/x", False),
    ]
    assert expected == actual


def test_local_stat_symlinks(root: Path, tmp_path: Path) -> None:
    """Symlinks: None unless followed and inside root; then the target's stat."""
    target = write(root, "real.txt", b"abc")
    write(tmp_path, "outside.txt")
    (root / "link.txt").symlink_to(target)
    (root / "out.txt").symlink_to(tmp_path / "outside.txt")
    (root / "broken.txt").symlink_to(root / "nowhere")
    expected = [None, stat_of(target), None, None]
    actual = [
        local_stat(root, "link.txt", False),
        local_stat(root, "link.txt", True),
        local_stat(root, "out.txt", True),
        local_stat(root, "broken.txt", True),
    ]
    assert expected == actual


DEEP = 1100  # deeper than Python's default recursion limit (1,000)


def deep_tree(root: Path) -> str:
    """DEEP nested one-letter directories with a file at the bottom; its relative path.

    Built and removed level by level: os.makedirs and rmtree would recurse themselves.
    """
    rel = "/".join(["d"] * DEEP)
    path = root
    for _ in range(DEEP):
        path = path / "d"
        path.mkdir()
    (path / "f.txt").write_bytes(b"deep")
    return f"{rel}/f.txt"


def remove_deep_tree(root: Path) -> None:
    (root / "/".join(["d"] * DEEP) / "f.txt").unlink()
    for depth in range(DEEP, 0, -1):
        (root / "/".join(["d"] * depth)).rmdir()


def test_walk_and_local_stat_handle_1100_nested_directories(root: Path) -> None:
    """A tree deeper than the recursion limit is walked and stat'ed, not a RecursionError."""
    rel = deep_tree(root)
    try:
        write(root, "z.txt")
        expected = ([rel, "z.txt"], LocalStat.from_stat(os.stat(root / rel)))
        assert expected == (scan(root), local_stat(root, rel, False))
    finally:
        remove_deep_tree(root)


def test_merge_marks_only_what_may_have_changed(root: Path, journal: Journal) -> None:
    """Unchanged files are skipped; new, changed, racy and failed ones are marked."""
    same = write(root, "same.txt", b"same")
    changed = write(root, "changed.txt", b"changed")
    racy = write(root, "racy.txt", b"racy")
    failed = write(root, "failed.txt", b"failed")
    write(root, "new.txt", b"new")
    journal.commit_upload("same.txt", synced_for(same, "same"), None)
    journal.commit_upload("failed.txt", synced_for(failed, "failed"), None)
    journal.record_failure("failed.txt", Failure("transient", "boom", 1, 0.0, stat_of(failed)))
    old = synced_for(changed, "changed")
    journal.commit_upload("changed.txt", Synced(
        old.file_id, old.remote_name, old.sha256, old.size - 1, old.mtime_ns - 10**9, old.ino,
        old.mime_type, old.synced_at), None)
    racy_copy = synced_for(racy, "racy", synced_at=stat_of(racy).mtime_ns / 1e9 + 0.5)
    journal.commit_upload("racy.txt", racy_copy, None)
    marked: list[str] = []
    result = scan_tree(root, IgnoreRules.load(root), False, Skips(), journal, mark_into(marked))
    expected = (["changed.txt", "failed.txt", "new.txt", "racy.txt"],
                ScanResult(files=5, bytes=4 + 7 + 4 + 6 + 3, marked=4, marked_bytes=7 + 6 + 3 + 4))
    assert expected == (marked, result)


def test_scan_marks_pass_the_mtime_the_walk_read(root: Path, journal: Journal) -> None:
    """Each mark carries the file's mtime_ns from the walk's stat (the backlog's newest-first
    order needs no stat of its own)."""
    write(root, "a.txt")
    os.utime(root / "a.txt", ns=(1_600_000_000 * 10**9, 1_600_000_000_123_456_789))
    marked: list[tuple[str, int]] = []
    scan_tree(root, IgnoreRules.load(root), False, Skips(), journal,
              lambda path, mtime_ns: marked.append((path, mtime_ns)))
    expected = [("a.txt", 1_600_000_000_123_456_789)]
    assert expected == marked


def test_merge_reports_vanished_rows(root: Path, journal: Journal) -> None:
    """Rows whose file is gone come back as vanished, wherever they sort."""
    keep = write(root, "m.txt")
    for rel in ["a.txt", "m.txt", "sub/z.txt", "zz.txt"]:
        journal.commit_upload(rel, synced_for(keep, rel), None)
    marked: list[str] = []
    result = scan_tree(root, IgnoreRules.load(root), False, Skips(), journal, mark_into(marked))
    expected = ([], ["a.txt", "sub/z.txt", "zz.txt"])
    assert expected == (marked, result.vanished)


def test_merge_does_not_vanish_rows_under_an_unreadable_dir(root: Path, journal: Journal) -> None:
    """Rows below a directory that could not be listed are unknown, not vanished."""
    keep = write(root, "m.txt")
    for rel in ["sub/a.txt", "sub/deep/b.txt", "sub2/c.txt", "sub-d.txt"]:
        journal.commit_upload(rel, synced_for(keep, rel), None)
    local: list[Run | Unreadable] = [Unreadable("sub")]
    result = merge(iter(local), journal.scan_rows(RACY_WINDOW_NS), lambda *_: None)
    expected = (["sub-d.txt", "sub2/c.txt"], ["sub"])
    assert expected == (result.vanished, result.unreadable)


def test_merge_with_unreadable_root_vanishes_nothing(root: Path, journal: Journal) -> None:
    """An unreadable root makes every row unknown."""
    keep = write(root, "m.txt")
    journal.commit_upload("a.txt", synced_for(keep, "a"), None)
    local: list[Run | Unreadable] = [Unreadable("")]
    expected: list[str] = []
    assert expected == merge(iter(local), journal.scan_rows(RACY_WINDOW_NS),
                             lambda *_: None).vanished


def test_merge_matches_non_utf8_paths(root: Path, journal: Journal) -> None:
    """A non-UTF-8 name round-trips through the journal and merges as unchanged."""
    path = write(root, LATIN1, b"latin")
    write(root, "b.txt", b"b")
    journal.commit_upload(LATIN1, synced_for(path, "latin"), None)
    marked: list[str] = []
    result = scan_tree(root, IgnoreRules.load(root), False, Skips(), journal, mark_into(marked))
    expected = (["b.txt"], [])
    assert expected == (marked, result.vanished)


def test_check_root_accepts_a_directory(root: Path) -> None:
    """A directory root passes and its stat is returned."""
    expected = os.stat(root).st_ino
    assert expected == check_root(root).st_ino


def test_check_root_refuses_a_missing_root(tmp_path: Path) -> None:
    """A missing root is a safety stop, not an empty folder."""
    with pytest.raises(SafetyStop, match="not reachable"):
        check_root(tmp_path / "gone")


def test_check_root_refuses_a_file(tmp_path: Path) -> None:
    """A root that is a file is a safety stop."""
    with pytest.raises(SafetyStop, match="not a directory"):
        check_root(write(tmp_path, "file"))


def test_scan_marks_what_needs_look_marks(root: Path, journal: Journal) -> None:
    """The tuple merge marks exactly the files needs_look() marks on the journal's FileRows:
    new, failed (transient or permanent), never synced, changed in size, mtime or inode, racy."""
    rng = random.Random(11)
    for i in range(300):
        path = write(root, f"d{i % 7}/f{i:03d}.txt", b"x" * (i % 5))
        info = stat_of(path)
        kind = i % 9
        if kind == 0:
            continue  # new: no row
        copy = synced_for(path, f"n{i}")
        if kind == 1:
            copy = Synced(copy.file_id, copy.remote_name, copy.sha256, info.size + 1,
                          info.mtime_ns, info.ino, "text/plain", copy.synced_at)
        elif kind == 2:
            copy = Synced(copy.file_id, copy.remote_name, copy.sha256, info.size,
                          info.mtime_ns - 1, info.ino, "text/plain", copy.synced_at)
        elif kind == 3:
            copy = Synced(copy.file_id, copy.remote_name, copy.sha256, info.size,
                          info.mtime_ns, info.ino + 1, "text/plain", copy.synced_at)
        elif kind == 4:  # recorded around the racy window's edge
            edge = (info.mtime_ns + RACY_WINDOW_NS) / 1e9 + rng.choice([-1e-6, 0.0, 1e-6, 0.5])
            copy = synced_for(path, f"n{i}", synced_at=edge)
        if kind != 5:
            journal.commit_upload(f"d{i % 7}/f{i:03d}.txt", copy, None)
        if kind in (5, 6, 7):
            fail = "permanent" if kind == 7 else "transient"
            journal.record_failure(f"d{i % 7}/f{i:03d}.txt", Failure(fail, "x", 1, 0.0, info))
    rules = IgnoreRules.load(root)
    expected = [rel for rel, local in (i for i in walk(root, rules, False, Skips())
                                       if isinstance(i, tuple))
                if needs_look(local, journal.get(rel))]
    marked: list[str] = []
    scan_tree(root, rules, False, Skips(), journal, mark_into(marked))
    assert expected == marked
    assert 0 < len(marked) < 300


def test_scan_rows_trust_a_stat_as_is_racy_does(journal: Journal) -> None:
    """scan_rows() gives a size (the stat proves the content) exactly when is_racy() is false,
    at and around the window's edge and for sub-nanosecond float times."""
    rng = random.Random(5)
    cases = []
    for i in range(2000):
        synced_at = rng.uniform(1.0e9, 2.0e9) if i % 2 else round(rng.uniform(1.0e9, 2.0e9), 3)
        edge = int(synced_at * 1e9) - RACY_WINDOW_NS
        mtime_ns = edge + rng.choice([-2, -1, 0, 1, 2, -(10**9), 10**9])
        cases.append((f"f{i:05d}", mtime_ns, synced_at))
        journal.commit_upload(f"f{i:05d}", Synced(f"file_{i}", f"f{i}", "ab" * 32, 1, mtime_ns,
                                                  i, "text/plain", synced_at), None)
    expected = [not is_racy(mtime_ns, synced_at) for _, mtime_ns, synced_at in cases]
    actual = [row[1] is not None for row in journal.scan_rows(RACY_WINDOW_NS, chunk_rows=300)]
    assert expected == actual
    assert 0 < sum(expected) < len(expected)
