"""Ignore rules: defaults, config patterns, .syncdignore, excluded paths and errors."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from syncd.local.ignore import DEFAULT_IGNORES, MAX_IGNORE_FILE, MAX_PATTERN, IgnoreRules


@pytest.fixture
def rules(tmp_path: Path) -> IgnoreRules:
    """Rules for an empty folder: the defaults alone."""
    return IgnoreRules.load(tmp_path)


@pytest.mark.parametrize(
    "path",
    [
        "notes.txt.swp",
        ".notes.txt.swp",
        "sub/.notes.txt.swo",
        ".notes.txt.swn",
        ".notes.txt.swx",
        "4913",
        "sub/5036",
        "5159",
        "notes.txt~",
        ".#notes.txt",
        "docs/.~lock.budget.xlsx#",
        "~$budget.docx",
        ".DS_Store",
        "sub/.DS_Store",
        "movie.mp4.part",
        "setup.exe.crdownload",
        ".report.pdf.Ab3xYz",
        "sub/.notes.txt.123456",
        ".bashrc.abcdE1",
        ".syncdignore",
    ],
)
def test_defaults_ignore_temporaries(rules: IgnoreRules, path: str) -> None:
    """Editor, office, browser, OS and rsync temporaries are ignored by default."""
    assert True is rules.ignored(path)


@pytest.mark.parametrize(
    "path",
    [
        ".bashrc.backup",
        ".bashrc",
        ".env.staged",
        "notes.txt",
        "swp.txt",
        "4914",
        "49130",
        "report.pdf",
        "~budget.docx",
        "lock.budget.xlsx#",
        "partial.txt",
        ".report.pdf.Ab3x",
        "sub/.syncdignore",
    ],
)
def test_defaults_keep_real_files(rules: IgnoreRules, path: str) -> None:
    """Real files that merely resemble temporaries are kept."""
    assert False is rules.ignored(path)


def test_ignore_file_at_root_is_read(tmp_path: Path) -> None:
    """Patterns in ROOT/.syncdignore apply; comments and blank lines are skipped."""
    (tmp_path / ".syncdignore").write_text("# secrets\n\n*.key\nprivate/\n", encoding="utf-8")
    rules = IgnoreRules.load(tmp_path)
    actual = [rules.ignored(p) for p in ("a.key", "sub/b.key", "private/x.txt", "a.txt")]
    expected = [True, True, True, False]
    assert expected == actual
    assert "(2 patterns)" in str(rules)


def test_directory_pattern_ignores_files_below(tmp_path: Path) -> None:
    """A ``build/`` pattern ignores the directory itself and every file under it."""
    rules = IgnoreRules.load(tmp_path, patterns=["build/"])
    actual = [
        rules.ignored("build", is_dir=True),
        rules.ignored("build/out.o"),
        rules.ignored("src/build/deep/x.txt"),
        rules.ignored("build"),
    ]
    expected = [True, True, True, False]
    assert expected == actual


def test_negation_reincludes(tmp_path: Path) -> None:
    """A later ``!pattern`` re-includes a file an earlier pattern ignored."""
    (tmp_path / ".syncdignore").write_text("!keep.log\n!important.swp\n", encoding="utf-8")
    rules = IgnoreRules.load(tmp_path, patterns=["*.log"])
    actual = [rules.ignored(p) for p in ("keep.log", "other.log", "important.swp", "x.swp")]
    expected = [False, True, False, True]
    assert expected == actual


def test_exclude_paths_under_root(tmp_path: Path) -> None:
    """The journal and its SQLite siblings are ignored when they live under the root."""
    state = tmp_path / ".syncd" / "state.db"
    excluded = [state, *(Path(f"{state}{s}") for s in ("-wal", "-shm", "-journal"))]
    rules = IgnoreRules.load(tmp_path, exclude_paths=[*excluded, Path("/elsewhere/state.db")])
    names = ("state.db", "state.db-wal", "state.db-shm", "state.db-journal", "state.db.bak")
    actual = [rules.ignored(f".syncd/{n}") for n in names]
    expected = [True, True, True, True, False]
    assert expected == actual
    assert False is rules.ignored("state.db")


def test_excluded_directory_covers_its_files(tmp_path: Path) -> None:
    """An excluded directory excludes everything below it."""
    rules = IgnoreRules.load(tmp_path, exclude_paths=[tmp_path / "cache"])
    actual = [
        rules.ignored("cache", is_dir=True),
        rules.ignored("cache/a/b.txt"),
        rules.ignored("cached.txt"),
    ]
    expected = [True, True, False]
    assert expected == actual


def test_bad_pattern_is_named(tmp_path: Path) -> None:
    """A pattern pathspec refuses gives a ValueError that names it."""
    with pytest.raises(ValueError, match=r"bad ignore pattern '!'"):
        IgnoreRules.load(tmp_path, patterns=["*.tmp", "!"])


@pytest.mark.parametrize("kind", ["directory", "fifo", "symlink-out-of-root"])
def test_an_ignore_file_that_is_not_a_regular_file_is_not_read(
    tmp_path: Path, kind: str
) -> None:
    """A directory, a FIFO (which would block) or a link out of root: skipped with a warning."""
    root, outside = tmp_path / "root", tmp_path / "outside"
    root.mkdir()
    outside.write_text("*.txt\n")
    target = root / ".syncdignore"
    {"directory": lambda: target.mkdir(), "fifo": lambda: os.mkfifo(target),
     "symlink-out-of-root": lambda: target.symlink_to(outside)}[kind]()
    rules = IgnoreRules.load(root)
    assert (False, 1) == (rules.ignored("a.txt"), len(rules.warnings))


def test_bad_lines_in_the_ignore_file_are_skipped_not_fatal(tmp_path: Path) -> None:
    """A line that is not UTF-8 or not a pattern is skipped with a warning; the rest apply."""
    (tmp_path / ".syncdignore").write_bytes(b"caf\xe9\n*.log\n!\n*.tmp\n")
    rules = IgnoreRules.load(tmp_path)
    assert ([True, True, False], 2) == (
        [rules.ignored("a.log"), rules.ignored("b.tmp"), rules.ignored("c.txt")],
        len(rules.warnings))
    assert [True, True] == ["line 1: not UTF-8" in rules.warnings[0],
                            "line 3: bad pattern" in rules.warnings[1]]


def test_an_oversized_ignore_file_is_read_up_to_the_cap(tmp_path: Path) -> None:
    """A huge ignore file is read up to MAX_IGNORE_FILE bytes and the rest reported."""
    (tmp_path / ".syncdignore").write_bytes(b"*.log\n" + b"# comment\n" * MAX_IGNORE_FILE)
    rules = IgnoreRules.load(tmp_path)
    assert (True, 1) == (rules.ignored("a.log"), len(rules.warnings))


def test_a_huge_pattern_line_is_skipped(tmp_path: Path) -> None:
    """A line longer than MAX_PATTERN is skipped with a warning instead of compiled."""
    (tmp_path / ".syncdignore").write_bytes(b"*.log\n" + b"y" * (MAX_PATTERN + 1) + b"\n")
    rules = IgnoreRules.load(tmp_path)
    assert (True, 1, True) == (rules.ignored("a.log"), len(rules.warnings),
                               "characters (over" in rules.warnings[0])


@pytest.mark.parametrize(
    ("path", "expected"),
    [("#notes.txt#", True), ("sub/#draft#", True), ("notes#", False),
     (".git/config", True), ("sub/.git/objects/ab/cd", True), (".hg/store", True),
     (".svn/entries", True), (".gitignore", False), ("git/config", False)],
)
def test_emacs_autosaves_and_vcs_metadata_are_ignored(
    rules: IgnoreRules, path: str, expected: bool
) -> None:
    """`#name#`, `.git/`, `.hg/`, `.svn/` are ignored; look-alikes are kept."""
    assert expected == rules.ignored(path)


def test_vcs_metadata_can_be_brought_back(tmp_path: Path) -> None:
    """`!.git/` in the config re-includes git's directory."""
    rules = IgnoreRules.load(tmp_path, patterns=["!.git/"])
    assert False is rules.ignored(".git/config")


def test_sqlite_side_files_are_ignored_only_beside_their_database(tmp_path: Path) -> None:
    """`db-wal`/`-shm`/`-journal` beside `db` are ignored; `trip-journal` alone is kept."""
    for name in ("app.db", "app.db-wal", "app.db-shm", "app.db-journal", "trip-journal"):
        (tmp_path / name).write_bytes(b"x")
    rules = IgnoreRules.load(tmp_path)
    found = {n: rules.ignored(n) for n in
             ("app.db", "app.db-wal", "app.db-shm", "app.db-journal", "trip-journal")}
    assert {"app.db": False, "app.db-wal": True, "app.db-shm": True, "app.db-journal": True,
            "trip-journal": False} == found


def test_sources_listed_for_logging(tmp_path: Path) -> None:
    """str() lists every source of rules with its size."""
    rules = IgnoreRules.load(tmp_path, patterns=["*.tmp"])
    expected = (
        f"defaults ({len(DEFAULT_IGNORES)} patterns); config (1 patterns); "
        f"{tmp_path / '.syncdignore'} (absent or empty); excluded paths (0)"
    )
    assert expected == str(rules)


def test_skipped_ignore_lines_are_shown_by_status(tmp_path: Path) -> None:
    """A bad .syncdignore line does not stop a sync, and `syncd status` names it."""
    from syncd.cli.report import status_data
    from tests.syncenv import bench

    with bench(tmp_path) as b:
        b.write(".syncdignore", b"*.log\n!\n")
        b.write("a.log", b"ignored")
        b.write("b.txt", b"kept")
        assert 0 == b.sync_once()
        warnings = status_data(b.settings())["ignore_warnings"]
        assert (["b.txt"], 1, True) == (sorted(b.remote()), len(warnings),
                                         "line 2: bad pattern" in warnings[0])
