"""Which local files are never uploaded: built-in defaults, config patterns and ``.syncdignore``.

All rules use gitignore syntax and are applied in this order, the last match winning (so a
``!pattern`` in ``.syncdignore`` can re-include a default): ``DEFAULT_IGNORES``, the config's
patterns, then ``ROOT/.syncdignore``. As in git, a file below an ignored directory stays ignored.
The daemon's own files (its journal and SQLite's ``-wal``/``-shm``/``-journal`` siblings) are
excluded by path when they live inside the synced folder, whatever the patterns say.

The defaults cover temporary files that editors, office suites, browsers and rsync write next to
real files and then rename or delete within moments:

- vim: swap files (``.name.swp`` and its successors ``.swo`` ... ``.swa``, ``.swx``) and the
  probe file vim writes to test a directory: ``4913``, or while that exists ``5036``, ``5159``,
  ... (adding 123). The first ``VIM_PROBES`` names of that sequence are ignored.
- emacs backups ``name~`` and lock links ``.#name``; LibreOffice locks ``.~lock.name#``;
  MS Office owner files ``~$name``; macOS ``.DS_Store``; browser downloads ``*.part`` and
  ``*.crdownload``; GNOME's (gedit) atomic-save temporaries ``.goutputstream-XXXXXX``.
- rsync's temporaries ``.NAME.XXXXXX``: six random letters or digits. To spare real files such
  as ``.bashrc.backup`` or ``.env.staged``, only suffixes holding at least one uppercase letter
  or digit match. rsync misses this about (26/62)^6 = 0.5% of the time, with an all-lowercase
  suffix; such a file is uploaded and then deleted remotely once rsync renames it, which is
  harmless.
- emacs auto-save files ``#name#``.
- version-control metadata: ``.git/``, ``.hg/``, ``.svn/`` (a ``!.git/`` pattern brings it back).
- SQLite's side files ``NAME-wal``, ``NAME-shm`` and ``NAME-journal``, but only while ``NAME``
  itself sits beside them (a file merely named ``trip-journal`` is kept). A live database is
  therefore mirrored as of its last checkpoint. No pattern can bring these back.
- ``/.syncdignore`` itself: it configures this daemon and is not content for the workspace.

``.syncdignore`` is written by anyone who can write in the folder, so it is read defensively:
only a regular file (never through a symlink, never a FIFO), at most ``MAX_IGNORE_FILE`` bytes;
a line that is not UTF-8 or not a valid pattern is skipped with a warning (``warnings``), never
stopping the daemon. Bad patterns in the config itself are the admin's and are refused.

A scan asks about every entry of the tree, so the rules decide on the entry's NAME wherever the
patterns allow it (:meth:`IgnoreRules.ignored_in`): a pattern without a slash matches a path
exactly when it matches one of the path's components, so a name no such pattern can match, in a
directory none of whose components they match, is not ignored, unless a pattern anchored to the
root (or otherwise needing the whole path) matches. Whenever any pattern may match, pathspec
decides on the whole path, so the answers are pathspec's, negations and all
(:mod:`syncd.local.prefilter` sorts the patterns).
"""

from __future__ import annotations

import os
import re
import stat
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pathspec
import structlog

from syncd.local.prefilter import EXACT, NAME, PATH, Prefilter

log = structlog.get_logger("syncd.ignore")
IGNORE_FILE = ".syncdignore"
MAX_IGNORE_FILE = 1024 * 1024
MAX_PATTERN = 4096
VIM_PROBES = 10
_SQLITE_SIDE = re.compile(r"(?s)(.+)-(?:wal|shm|journal)")
_SIDE_SUFFIXES = ("-wal", "-shm", "-journal")

_ALNUM = "[A-Za-z0-9]"
_UPPER_OR_DIGIT = "[A-Z0-9]"


def _rsync_patterns() -> tuple[str, ...]:
    """``.NAME.XXXXXX`` with the uppercase-or-digit character at each of the six positions."""
    return tuple(
        ".?*." + "".join(_UPPER_OR_DIGIT if i == j else _ALNUM for i in range(6)) for j in range(6)
    )


DEFAULT_IGNORES: tuple[str, ...] = (
    "*.swp",
    ".*.swo",
    ".*.sw[a-n]",
    ".*.swx",
    *(str(4913 + 123 * i) for i in range(VIM_PROBES)),
    "*~",
    ".#*",
    ".~lock.*#",
    "~$*",
    ".DS_Store",
    "*.part",
    "*.crdownload",
    ".goutputstream-*",
    "\\#*#",
    ".git/",
    ".hg/",
    ".svn/",
    *_rsync_patterns(),
    "/" + IGNORE_FILE,
)


@dataclass(frozen=True)
class IgnoreRules:
    """Compiled ignore rules for one synced folder; build with ``IgnoreRules.load``."""

    spec: pathspec.GitIgnoreSpec
    excluded: frozenset[str]
    sources: tuple[str, ...]
    root: Path | None = None  # where to look for a SQLite side file's database
    warnings: tuple[str, ...] = ()  # lines of .syncdignore that were skipped, and why
    _fast: Prefilter = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        # A file's matcher also flags SQLite's side files, so one test covers a file's name.
        object.__setattr__(self, "_fast", Prefilter.of(self.spec, self.excluded, _SIDE_SUFFIXES))

    @classmethod
    def load(
        cls,
        root: Path,
        patterns: Sequence[str] = (),
        exclude_paths: Sequence[Path] = (),
    ) -> IgnoreRules:
        """Rules from defaults, config ``patterns``, ``root/.syncdignore`` and ``exclude_paths``.

        Raises ValueError naming the culprit for an unreadable ignore file or a bad pattern.
        """
        ignore_file = root / IGNORE_FILE
        from_file, warnings = _read_ignore_file(ignore_file)
        for warning in warnings:
            log.warning("ignore file line skipped", reason=warning)
        _compile([*DEFAULT_IGNORES, *patterns])  # the config's own bad patterns are refused
        lines = [*DEFAULT_IGNORES, *patterns, *from_file]
        inside = (_relative_inside(root, path) for path in exclude_paths)
        excluded = frozenset(rel for rel in inside if rel not in (None, "."))
        sources = (
            f"defaults ({len(DEFAULT_IGNORES)} patterns)",
            f"config ({len(patterns)} patterns)",
            f"{ignore_file} ({len(from_file)} patterns)"
            if from_file
            else f"{ignore_file} (absent or empty)",
            f"excluded paths ({len(excluded)})",
        )
        return cls(_compile(lines), excluded, sources, root, tuple(warnings))

    def ignored(self, rel_path: str, is_dir: bool = False) -> bool:
        """Whether the ``/``-separated ``rel_path`` (relative to the root) is left out of sync."""
        if not rel_path:
            return False
        head, slash, name = rel_path.rpartition("/")
        if not name or rel_path[0] == "/" or rel_path.startswith("./") or "//" in rel_path:
            state = EXACT  # a shape pathspec normalizes: let it decide
        elif head and any(self._fast.dirs.may_match(part) for part in head.split("/")):
            state = EXACT
        else:
            state = PATH
        return self.ignored_in(state, head + slash, name, is_dir)

    def root_state(self) -> int:
        """How entries directly under the root can be judged (see :meth:`ignored_in`)."""
        return self._fast.root_state

    def dir_state(self, parent: int, rel_dir: str, name: str) -> int:
        """How entries directly in the directory ``rel_dir`` (named ``name``, in a directory of
        state ``parent``) can be judged: EXACT, PATH or NAME (see :meth:`ignored_in`)."""
        return self._fast.dir_state(parent, rel_dir, name)

    def ignored_in(self, state: int, prefix: str, name: str, is_dir: bool) -> bool:
        """:meth:`ignored` for the path ``prefix + name`` (``prefix`` is "" or ends with "/")
        in a directory of ``state``: the same answer, found faster.

        EXACT: ask pathspec. PATH: no component of the directory matches a name pattern, so only
        the name, the excluded paths and the patterns that need the whole path can match. NAME:
        as PATH, and no excluded path or whole-path pattern can match anything in the directory.
        """
        fast = self._fast
        if state == NAME and not is_dir:  # most of a scan: may_match() inlined, in part
            files = fast.files
            if files.other is None and name[0] not in files.by_first and not name.endswith(
                files.suffixes
            ):
                return False  # a name no pattern can match, nor a side file's
        rel_path = prefix + name
        if state != NAME and self.excluded and (
            rel_path in self.excluded or rel_path.startswith(fast.excluded_dirs)
        ):
            return True
        if not is_dir and name.endswith(_SIDE_SUFFIXES) and self._sqlite_side_file(rel_path):
            return True
        # Directory-only patterns such as ``build/`` match a directory by its trailing slash.
        path = rel_path + "/" if is_dir else rel_path
        if (
            state == EXACT
            or (fast.dirs if is_dir else fast.files).may_match(name)
            or (state == PATH and fast.whole is not None and fast.whole(path) is not None)
        ):
            return self.spec.match_file(path)
        return False

    def _sqlite_side_file(self, rel_path: str) -> bool:
        """``NAME-wal``/``-shm``/``-journal`` while ``NAME`` exists beside it."""
        match = _SQLITE_SIDE.fullmatch(rel_path)
        if match is None or self.root is None:
            return False
        return os.path.lexists(self.root / match.group(1))

    def __str__(self) -> str:
        """The rule sources, for a log line."""
        return "; ".join(self.sources)


def _read_ignore_file(path: Path) -> tuple[list[str], list[str]]:
    """The usable patterns of the ignore file at ``path``, and why other lines were skipped.

    Only a regular file is read, never through a symlink and never blocking on a FIFO.
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError:
        return [], []
    except OSError as exc:
        return [], [f"{path} cannot be read ({exc.strerror}); it is not used"]
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return [], [f"{path} is not a regular file; it is not used"]
        data = _read_at_most(fd, MAX_IGNORE_FILE + 1)
    except OSError as exc:
        return [], [f"{path} cannot be read ({exc.strerror}); it is not used"]
    finally:
        os.close(fd)
    warnings = [f"{path} is over {MAX_IGNORE_FILE} bytes; the rest is not used"] if len(
        data) > MAX_IGNORE_FILE else []
    patterns: list[str] = []
    for number, raw in enumerate(data[:MAX_IGNORE_FILE].splitlines(), 1):
        problem, line = _pattern_line(raw)
        if problem:
            warnings.append(f"{path} line {number}: {problem}; line skipped")
        elif line:
            patterns.append(line)
    return patterns, warnings


def _read_at_most(fd: int, limit: int) -> bytes:
    chunks: list[bytes] = []
    size = 0
    while size < limit and (chunk := os.read(fd, limit - size)):
        chunks.append(chunk)
        size += len(chunk)
    return b"".join(chunks)


def _pattern_line(raw: bytes) -> tuple[str | None, str]:
    """(why the line is unusable, or None; the pattern, or "" for blanks and comments)."""
    try:
        line = raw.decode("utf-8")
    except UnicodeDecodeError:
        return "not UTF-8", ""
    # Blank lines and comments compile to nothing; counting only real patterns helps the log.
    if not line.strip() or line.startswith("#"):
        return None, ""
    if len(line) > MAX_PATTERN:  # no path is that long; compiling it would take seconds
        return f"a pattern of {len(line)} characters (over {MAX_PATTERN})", ""
    try:
        pathspec.GitIgnoreSpec.from_lines([line])
    except ValueError as exc:
        return f"bad pattern {line[:80]!r} ({exc})", ""
    return None, line


def _compile(lines: Iterable[str]) -> pathspec.GitIgnoreSpec:
    """One spec from ``lines``, or ValueError naming the first pattern pathspec refuses."""
    lines = list(lines)
    try:
        return pathspec.GitIgnoreSpec.from_lines(lines)
    except ValueError:
        for line in lines:
            try:
                pathspec.GitIgnoreSpec.from_lines([line])
            except ValueError as exc:
                raise ValueError(f"bad ignore pattern {line!r}: {exc}") from exc
        raise


def _relative_inside(root: Path, path: Path) -> str | None:
    """``path`` relative to ``root`` as a ``/``-separated string, or None if it lies outside."""
    for base, target in (
        (Path(os.path.abspath(root)), Path(os.path.abspath(path))),
        (root.resolve(), path.resolve()),
    ):
        try:
            return target.relative_to(base).as_posix()
        except ValueError:
            continue
    return None
