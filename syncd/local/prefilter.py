"""The ignore rules' fast path: which names no pattern can match, decided without pathspec.

pathspec answers one path at a time by running every pattern's regex over it; a scan asks about
every entry of the tree. :class:`Prefilter` sorts the compiled patterns into name patterns
(checked against one name, by suffix or by first character) and whole-path ones, so that
:meth:`syncd.local.ignore.IgnoreRules.ignored_in` can say "not ignored" for most names without
asking. Only its "cannot match" is final; "may match" defers to pathspec.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import pathspec

# How the entries directly in a directory can be judged (see ``IgnoreRules.ignored_in``).
EXACT, PATH, NAME = 0, 1, 2

# How the patterns are analysed for the fast path. pathspec compiles a pattern without a slash
# (``*.swp``, ``build/``) to ``^(?:.+/)?G`` + a tail: ``(?:(?P<ps_d>/)|$)`` (it also matches a
# file) or ``(?P<ps_d>/)`` (directories only), searched over the whole path. When G cannot match
# a ``/``, it can only match a whole component, so such a pattern matches a path exactly when G
# matches one of its components: a directory's in any case, the last one per the tail. Every
# other pattern (anchored, holding a slash, or a G we cannot vouch for) is searched over the
# whole path. A prefilter that says "may match" defers to pathspec; only "cannot" is final.
_NAME_HEAD = "^(?:.+/)?"
_FILE_TAIL = "(?:(?P<ps_d>/)|$)"
_DIR_TAIL = "(?P<ps_d>/)"
_META = frozenset(".^$*+?{}[]|()\\/")
_QUANTIFIERS = ("*", "?", "{", "+")
_ANY = "[^/]*"


@dataclass(frozen=True)
class NameMatcher:
    """Whether a name may fullmatch one of the G's: a suffix test, then small regexes chosen
    by the name's first character."""

    suffixes: tuple[str, ...] = ()
    by_first: dict[str, re.Pattern[str]] = field(default_factory=dict)
    other: re.Pattern[str] | None = None

    @classmethod
    def of(cls, bodies: Iterable[str], suffixes: Iterable[str] = ()) -> NameMatcher:
        """The matcher for the G's in ``bodies`` (each free of ``/`` and groups), also saying
        "may match" for names with one of ``suffixes``."""
        ends = set(suffixes)
        by_first: dict[str, list[str]] = {}
        other: list[str] = []
        for body in bodies:
            tokens = _tokens(body)
            assert tokens is not None  # only analysable bodies get here
            if body.startswith(_ANY) and all(kind == "lit" for kind, _ in tokens[2:]):
                end = "".join(text for _, text in tokens[2:])
                ends |= {end, end + "\n"}  # pathspec's ``$`` also matches before a final newline
            elif tokens[0][0] == "lit" and (len(tokens) == 1 or tokens[1][0] != "op"):
                by_first.setdefault(tokens[0][1], []).append(body)
            else:
                other.append(body)
        return cls(
            tuple(sorted(ends)),
            {first: _alternation(group) for first, group in by_first.items()},
            _alternation(other) if other else None,
        )

    def may_match(self, name: str) -> bool:
        """False only if no G matches the (non-empty) ``name``."""
        if name.endswith(self.suffixes):
            return True
        regex = self.by_first.get(name[0])
        if regex is not None and regex.match(name) is not None:
            return True
        return self.other is not None and self.other.match(name) is not None


@dataclass(frozen=True)
class Prefilter:
    """What lets :meth:`IgnoreRules.ignored_in` say "not ignored" without asking pathspec."""

    files: NameMatcher  # name patterns that match a file's own name
    dirs: NameMatcher  # every name pattern: they all match a directory's name
    whole: Callable[[str], re.Match[str] | None] | None  # the other patterns, on the whole path
    whole_first: frozenset[str] | None  # what a path they match starts with (None: anything)
    excluded: frozenset[str]
    excluded_dirs: tuple[str, ...]  # each excluded path + "/"
    root_state: int

    @classmethod
    def of(cls, spec: pathspec.GitIgnoreSpec, excluded: frozenset[str],
           file_suffixes: Iterable[str] = ()) -> Prefilter:
        """Sort ``spec``'s patterns into name patterns and whole-path ones; a file's matcher
        also says "may match" for names ending in one of ``file_suffixes``."""
        files: list[str] = []
        dirs: list[str] = []
        whole: list[str] = []
        exact = False
        for pattern in spec.patterns:
            regex = getattr(pattern, "regex", None)
            if getattr(pattern, "include", None) is None or regex is None:
                continue  # a comment or blank line: matches nothing
            text = regex.pattern
            if not isinstance(text, str) or regex.flags & ~re.UNICODE or "(?P=" in text:
                exact = True  # nothing we can combine: pathspec decides every path
                continue
            body = _name_body(text)
            if body is None:
                whole.append(text)
            else:
                dirs.append(body[0])
                if not body[1]:
                    files.append(body[0])
        excluded_dirs = tuple(e + "/" for e in sorted(excluded))
        first = [_anchored_first(text) for text in whole]
        whole_first = None if None in first else frozenset(c for c in first if c is not None)
        root = EXACT if exact else PATH if whole or excluded else NAME
        return cls(NameMatcher.of(files, file_suffixes), NameMatcher.of(dirs), _whole(whole),
                   whole_first,
                   excluded, excluded_dirs, root)

    def dir_state(self, parent: int, rel_dir: str, name: str) -> int:
        """The state of directory ``rel_dir`` (see :meth:`IgnoreRules.ignored_in`)."""
        if parent == EXACT or self.dirs.may_match(name):
            return EXACT
        if self.whole is not None and (self.whole_first is None or rel_dir[0] in self.whole_first):
            return PATH
        below = rel_dir + "/"
        if any(e == rel_dir or e.startswith(below) or below.startswith(e + "/")
               for e in self.excluded):
            return PATH
        return NAME


def _name_body(text: str) -> tuple[str, bool] | None:
    """(G, directories only) for a name pattern's regex, or None: it needs the whole path."""
    if not text.startswith(_NAME_HEAD):
        return None
    for tail, dir_only in ((_FILE_TAIL, False), (_DIR_TAIL, True)):
        body = text[len(_NAME_HEAD):-len(tail)]
        if text.endswith(tail) and body and _tokens(body) is not None:
            return body, dir_only
    return None


def _tokens(body: str) -> list[tuple[str, str]] | None:
    """``body`` as ("lit", char), ("class", text) and ("op", char) tokens; None if it might
    match a ``/`` or holds anything else (groups, alternatives, ``.``, escapes like ``\\W``)."""
    tokens: list[tuple[str, str]] = []
    i = 0
    while i < len(body):
        char = body[i]
        if char == "\\":
            escaped = body[i + 1:i + 2]
            if not escaped or escaped.isalnum() or escaped == "/":
                return None
            tokens.append(("lit", escaped))
            i += 2
        elif char == "[":
            end = _class_end(body, i)
            if end is None or _matches_slash(body[i:end]):
                return None
            tokens.append(("class", body[i:end]))
            i = end
        elif char in ("*", "?", "+"):
            tokens.append(("op", char))
            i += 1
        elif char in _META:
            return None
        else:
            tokens.append(("lit", char))
            i += 1
    return tokens


def _class_end(body: str, start: int) -> int | None:
    """The index just past the character class opening at ``start``, or None."""
    i = start + 1
    if body[i:i + 1] == "^":
        i += 1
    if body[i:i + 1] == "]":
        i += 1
    while i < len(body):
        if body[i] == "\\":
            i += 2
        elif body[i] == "]":
            return i + 1
        elif body[i] == "[":
            return None  # a nested set: not what pathspec writes
        else:
            i += 1
    return None


def _matches_slash(char_class: str) -> bool:
    """Whether a character class matches ``/`` (True if it does not compile)."""
    try:
        return re.fullmatch(char_class, "/") is not None
    except re.error:
        return True


def _anchored_first(text: str) -> str | None:
    """The character that starts every path a whole-path regex matches, or None if any may."""
    for tail in (_FILE_TAIL, _DIR_TAIL):
        if text.endswith(tail):
            text = text[:-len(tail)]
            break
    if not text.startswith("^") or "|" in text or "(" in text:
        return None
    body = text[1:]
    if body[:1] == "\\" and body[1:2] and not body[1].isalnum():
        first, rest = body[1], body[2:]
    elif body[:1] and body[0] not in _META:
        first, rest = body[0], body[1:]
    else:
        return None
    return None if rest[:1] in _QUANTIFIERS else first


def _alternation(bodies: list[str]) -> re.Pattern[str]:
    """One regex matching a name that one of ``bodies`` matches (with pathspec's ``$``)."""
    return re.compile("(?:" + "|".join(f"(?:{body})" for body in bodies) + ")$")


def _whole(texts: list[str]) -> Callable[[str], re.Match[str] | None] | None:
    """One search over the whole path for the regexes in ``texts`` (None: there are none)."""
    if not texts:
        return None
    # Group names repeat across patterns; the union only needs to know "some match".
    regex = re.compile("|".join(f"(?:{re.sub(r'[(][?]P<[^>]+>', '(?:', t)})" for t in texts))
    # Anchored at the start (as pathspec's anchored patterns are), a match is a search.
    return regex.match if all(t.startswith("^") for t in texts) else regex.search
