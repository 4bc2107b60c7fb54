"""``syncd config check``: validate a config the way the daemon would, and say what was found."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from syncd.config import Settings
from syncd.credentials import resolve_api_key
from syncd.errors import ApiError, ConfigError, JournalError, SafetyStop, WorkspaceMismatch
from syncd.journal import Journal, lock_holder
from syncd.local.scan import check_root
from syncd.remote.client import WorkspaceGuard

Check = tuple[bool, str]


def check_key(settings: Settings) -> Check:
    """Where the key comes from (never the key itself)."""
    try:
        _key, source = resolve_api_key(settings)
    except ConfigError as exc:
        return False, str(exc)
    return True, f"API key from {source}"


def check_root_dir(settings: Settings) -> Check:
    """The root exists, is a directory and can be listed."""
    root = settings.root_dir.expanduser()
    try:
        check_root(root)
        os.listdir(root)
    except SafetyStop as exc:
        return False, str(exc).replace("; nothing deleted", "")
    except OSError as exc:
        return False, f"root {root} cannot be listed ({exc.strerror})"
    return True, f"root {root} is a readable directory"


def check_journal(settings: Settings) -> Check:
    """The journal's directory is writable (or can be made), and who holds the journal."""
    path = settings.journal_path
    parent = _existing_parent(path.parent)
    if not os.access(parent, os.W_OK | os.X_OK, effective_ids=True):
        return False, f"journal directory {path.parent} is not writable; fix [state] journal"
    holder = lock_holder(path) if path.exists() else None
    state = "exists" if path.exists() else "will be created"
    held = f", held by syncd pid {holder}" if holder else ""
    return True, f"journal {path} {state}{held}"


def _existing_parent(path: Path) -> Path:
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def check_online(settings: Settings) -> Check:
    """One list call: the key works, the service answers, and which workspace it is."""
    from syncd.engine.wiring import make_client

    known = _journal_workspace(settings)
    try:
        with make_client(settings) as client:
            client.max_retries = 1
            client.workspace = WorkspaceGuard(settings.remote.workspace_id or known)
            page = client.list_page(limit=1)
    except (ConfigError, ApiError, WorkspaceMismatch) as exc:
        return False, f"{settings.remote.base_url}: {exc}"
    more = "+" if page.next is not None else ""
    workspace = client.workspace.expected or "not named by the service"
    return True, (
        f"{settings.remote.base_url} answered (api_version {settings.remote.api_version});"
        f" workspace {workspace} has {len(page.data)}{more} files"
    )


def _journal_workspace(settings: Settings) -> str | None:
    """The workspace an existing journal is bound to, if it can be read."""
    try:
        with Journal.open_readonly(settings.journal_path) as journal:
            return journal.get_meta("workspace_id") or None
    except JournalError:
        return None


def run_checks(settings: Settings, online: bool, emit: Callable[[str], None]) -> int:
    """Run every check, print one line each; 0 when all pass, 2 otherwise."""
    checks = [check_key, check_root_dir, check_journal]
    if online:
        checks.append(check_online)
    emit(f"ok    config: {len(settings.sync.ignore)} ignore patterns, "
         f"{settings.sync.workers} workers, {settings.remote.requests_per_minute:g} requests/min")
    failed = 0
    for check in checks:
        ok, text = check(settings)
        failed += not ok
        emit(f"{'ok' if ok else 'FAIL':<5} {text}")
    return 0 if failed == 0 else 2
