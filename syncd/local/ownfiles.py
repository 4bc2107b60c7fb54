"""syncd's own files, never uploaded even when they live inside root; and the ignore rules.

Own files: the journal, SQLite's ``-wal``/``-shm``/``-journal`` beside it, its ``.lock``, the
copies ``syncd rebuild`` sets aside (``NAME.broken-<UTC stamp>`` and their side files), the
manifest and the temp file it is written through. Each is excluded by its exact path, so a
journal named ``data`` hides ``data-wal`` but not the user's ``data.csv``; only the set-aside
copies, named by a timestamp, take a pattern, anchored at the journal's full name.
"""

from __future__ import annotations

import os
from pathlib import Path

from syncd.config import Settings
from syncd.errors import ConfigError
from syncd.journal import LOCK_SUFFIX, SIDE_FILES
from syncd.local.ignore import IgnoreRules

ASIDE = ".broken-"  # `rebuild` moves a journal to NAME.broken-<stamp>, its side files alike


def own_files(settings: Settings) -> list[Path]:
    """The exact paths of the journal, its side files and lock, the manifest and its temp."""
    journal = settings.journal_path
    files = [journal, *(journal.with_name(journal.name + s) for s in (*SIDE_FILES, LOCK_SUFFIX))]
    if settings.state.manifest is not None:
        manifest = settings.state.manifest.expanduser()
        files += [manifest, manifest_temp(manifest)]
    return files


def own_patterns(settings: Settings, root: Path) -> list[str]:
    """Ignore patterns for the journal copies rebuild sets aside, when they fall inside root."""
    rel = _inside(root, settings.journal_path)
    return [] if rel is None else ["/" + _literal(rel + ASIDE) + "*"]


def load_rules(settings: Settings, root: Path) -> IgnoreRules:
    """The rules the daemon and rebuild use: defaults, config, .syncdignore and own files."""
    patterns = [*settings.sync.ignore, *own_patterns(settings, root)]
    try:
        return IgnoreRules.load(root, patterns, own_files(settings))
    except ValueError as exc:
        raise ConfigError(str(exc)) from None


def _inside(root: Path, path: Path) -> str | None:
    """``path`` relative to ``root`` (as written, then with links resolved), or None."""
    for base, target in ((Path(os.path.abspath(root)), Path(os.path.abspath(path))),
                         (root.resolve(), path.resolve())):
        if target.is_relative_to(base) and target != base:
            return target.relative_to(base).as_posix()
    return None


def _literal(text: str) -> str:
    """``text`` as a gitignore pattern matching itself only (wildcards and ``\\`` escaped)."""
    return "".join("\\" + c if c in "*?[\\" else c for c in text)


def manifest_temp(path: Path) -> Path:
    """The temp file the manifest is written through (a fixed name, so it can be ignored)."""
    return path.with_name(f".{path.name}.tmp")
