"""The fast ignore matcher (names first, whole paths only when needed) answers as pathspec does."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pathspec
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from syncd.local.ignore import DEFAULT_IGNORES, IgnoreRules
from syncd.local.scan import walk

_SIDE = re.compile(r"(?s)(.+)-(?:wal|shm|journal)")

# Pieces chosen to hit what the analysis must get right: globs, classes that can match "/"
# ([!a], [.-0]), escapes, "**", anchors, negation, directory-only patterns, a trailing newline
# (pathspec's "$" matches before it), non-ASCII and non-UTF-8 (surrogate) names.
PATTERN_PIECES = ["a", "b", "ab", ".", "*", "**", "?", "[ab]", "[!a]", "[.-0]", "[a-c]", "\\#",
                  "#", "~", "\\!", " ", "é", "4913", ".git", "-wal", "x", "/"]
NAME_PIECES = ["a", "b", "ab", ".", "~", "#", "\n", "é", "\udce9", "4913", ".git", " ", "!",
               "x", ".swp", "-wal", "0", "A"]

patterns = st.builds(
    lambda neg, lead, body, trail: neg + lead + body + trail,
    st.sampled_from(["", "!"]), st.sampled_from(["", "/", "**/"]),
    st.lists(st.sampled_from(PATTERN_PIECES), min_size=1, max_size=4).map("".join),
    st.sampled_from(["", "/", "/**"]),
)
# "." and ".." name no entry: no walk, watcher or marked path holds them as a component.
names = st.lists(st.sampled_from(NAME_PIECES), min_size=1, max_size=3).map("".join).filter(
    lambda name: name not in (".", ".."))
paths = st.lists(names, min_size=1, max_size=4).map("/".join)


def reference(rules: IgnoreRules, rel: str, is_dir: bool) -> bool:
    """The answer before the fast path: excluded paths, side files, then pathspec on the path."""
    if not rel:
        return False
    if any(rel == e or rel.startswith(e + "/") for e in rules.excluded):
        return True
    side = _SIDE.fullmatch(rel)
    if not is_dir and side and rules.root is not None and os.path.lexists(rules.root / side[1]):
        return True
    return rules.spec.match_file(rel + "/" if is_dir else rel)


def as_walked(rules: IgnoreRules, rel: str, is_dir: bool) -> bool:
    """The answer the walk gets: each directory's state handed down from the root."""
    parts = rel.split("/")
    state, prefix = rules.root_state(), ""
    for part in parts[:-1]:
        prefix = f"{prefix}/{part}" if prefix else part
        state = rules.dir_state(state, prefix, part)
    return rules.ignored_in(state, f"{prefix}/" if prefix else "", parts[-1], is_dir)


def rules_for(lines: list[str], excluded: frozenset[str] = frozenset()) -> IgnoreRules:
    try:
        spec = pathspec.GitIgnoreSpec.from_lines([*DEFAULT_IGNORES, *lines])
    except ValueError:
        assume(False)
        raise
    return IgnoreRules(spec, excluded, ())


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(patterns, max_size=5), st.lists(paths, min_size=1, max_size=12),
       st.lists(paths, max_size=2))
def test_fast_matcher_agrees_with_pathspec(
    lines: list[str], rels: list[str], excluded: list[str]
) -> None:
    """For generated patterns (negated, anchored, directory-only) and paths, ignored() and the
    walk's ignored_in() give pathspec's answer, for files and directories."""
    rules = rules_for(lines, frozenset(excluded))
    for rel in [*rels, *excluded]:
        for is_dir in (False, True):
            expected = reference(rules, rel, is_dir)
            assert (expected, expected) == (rules.ignored(rel, is_dir),
                                            as_walked(rules, rel, is_dir)), (rel, is_dir)


@pytest.mark.parametrize("rel", ["/a.swp", "./a.swp", "a//b.swp", "a/", "./.git/x", "/.syncdignore",
                                 "a\n/x", "x.swp\n", "4913\n", "a/.git", "a/.git/b"])
@pytest.mark.parametrize("lines", [[], ["!.git/"], ["a/"], ["!*.swp"], ["/x.swp"]])
def test_paths_pathspec_normalizes_are_answered_as_before(rel: str, lines: list[str]) -> None:
    """Leading "/" or "./", empty components, trailing slash or newline: pathspec's answer."""
    rules = rules_for(lines)
    expected = [reference(rules, rel, is_dir) for is_dir in (False, True)]
    assert expected == [rules.ignored(rel, is_dir) for is_dir in (False, True)]


CASES: list[tuple[list[str], str, bool, bool]] = [
    (["!.git/"], ".git/config", False, False),
    (["!.git/"], ".git", True, False),
    (["build/", "!build/keep.txt"], "build/keep.txt", False, False),
    (["build/", "!build/keep.txt"], "build", True, True),
    (["build/"], "src/build/deep/x.txt", False, True),
    (["build/"], "build", False, False),
    (["/top.txt"], "top.txt", False, True),
    (["/top.txt"], "sub/top.txt", False, False),
    (["docs/*.md"], "docs/a.md", False, True),
    (["docs/*.md"], "x/docs/a.md", False, False),
    (["**/cache"], "a/b/cache/x", False, True),
    (["a[!x]b"], "a/b", False, True),  # a negated class matches "/"
    (["*.log", "!keep.log"], "d/keep.log", False, False),
    ([], "d/.syncdignore", False, False),
    ([], ".syncdignore", False, True),
]


@pytest.mark.parametrize(("lines", "rel", "is_dir", "expected"), CASES)
def test_known_cases(lines: list[str], rel: str, is_dir: bool, expected: bool) -> None:
    """Negations, anchors, directory-only and slash-matching patterns, as git(pathspec) says."""
    rules = rules_for(lines)
    assert (expected, expected, expected) == (
        reference(rules, rel, is_dir), rules.ignored(rel, is_dir), as_walked(rules, rel, is_dir))


def reference_walk(root: Path, rules: IgnoreRules) -> list[str]:
    """Eligible regular files, ignoring as before: a pruned recursive listing, byte-sorted."""
    found: list[str] = []

    def visit(rel: str) -> None:
        for entry in os.scandir(root / rel if rel else root):
            path = f"{rel}/{entry.name}" if rel else entry.name
            if entry.is_dir(follow_symlinks=False):
                if not reference(rules, path, True):
                    visit(path)
            elif entry.is_file(follow_symlinks=False) and not reference(rules, path, False):
                found.append(path)

    visit("")
    return sorted(found, key=os.fsencode)


def test_walk_agrees_with_the_reference_on_a_real_tree(tmp_path: Path) -> None:
    """A tree of look-alike names under .syncdignore patterns walks as pathspec would have it."""
    root = tmp_path / "root"
    names = ["a.swp", "keep.swp", "x.log", "keep.log", "4913", "4914", ".gitx", "b", "café",
             os.fsdecode(b"caf\xe9"), "db", "db-wal", "trip-journal", ".~lock.x#", "t-shm"]
    for top in ["", "build", "sub", ".git", "sub/build", "sub/deep/build", "docs", "old.log"]:
        (root / top).mkdir(parents=True, exist_ok=True)
        for name in names:
            (root / top / name).write_bytes(b"x")
    (root / "sub" / "deep" / "build.d").write_bytes(b"a file, not a directory")
    (root / ".syncdignore").write_text(
        "*.log\n!keep.log\n!keep.swp\nbuild/\n!sub/build/\n/docs/b\nsub/**/4914\n!.git/\n",
        encoding="utf-8")
    rules = IgnoreRules.load(root, exclude_paths=[root / "sub" / "db"])
    walked = [i[0] for i in walk(root, rules, False, lambda *_: None) if isinstance(i, tuple)]
    assert reference_walk(root, rules) == walked
