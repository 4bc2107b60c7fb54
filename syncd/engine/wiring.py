"""Wiring a mirror to the service: the client the config describes, bound to the journal's
workspace. Built here once for every driver (`syncd sync`, `run`, `rebuild`, `check`, the demo).
"""

from __future__ import annotations

from syncd.config import Settings
from syncd.credentials import resolve_api_key, resolve_shared_budget_password
from syncd.errors import WorkspaceMismatch
from syncd.journal import Journal
from syncd.metrics import Metrics
from syncd.remote.client import FilesClient, WorkspaceGuard
from syncd.remote.pacer import Pacer, Pacing


def make_client(
    settings: Settings, metrics: Metrics | None = None, pacer: Pacing | None = None
) -> FilesClient:
    """The client the config describes: key, URL, API version, pacing, retries, expiry.
    ``pacer``: the one the folders of a process share, which its maker closes (default: a new
    one, which the client closes with itself)."""
    key, _source = resolve_api_key(settings)
    remote = settings.remote
    return FilesClient(
        key, remote.base_url, api_version=remote.api_version,
        expires_in_seconds=remote.expires_in_seconds,
        pacer=pacer or make_pacer(settings, key), owns_pacer=pacer is None,
        max_retries=remote.max_retries, timeout=remote.timeout_seconds,
        observer=metrics.request if metrics else None,
        on_retry=metrics.retry_wait if metrics else None,
    )


def make_pacer(settings: Settings, key: str) -> Pacing:
    """This process's pacer, or with ``[remote] shared_budget`` one shared through Redis."""
    remote = settings.remote
    if remote.shared_budget is None:
        return Pacer(remote.requests_per_minute, remote.burst)
    from syncd.remote.sharedpacer import SharedPacer, budget_scope  # imports redis

    return SharedPacer(
        remote.shared_budget, remote.requests_per_minute, remote.burst,
        scope=budget_scope(remote.base_url, key, remote.workspace_id),
        expected_hosts=remote.expected_hosts, password=resolve_shared_budget_password(settings),
    )


def bind_workspace(client: FilesClient, journal: Journal, configured: str | None) -> None:
    """Tie the client to the journal's workspace (invariant 11).

    The journal records the workspace the service first names (or the configured one); from
    then on every request carries it, so the service itself refuses to act in another one, and
    an answer from another workspace stops syncd before it acts on anything.
    """
    known = journal.get_meta("workspace_id") or None
    if known and configured and known != configured:
        raise WorkspaceMismatch(
            f"this journal belongs to workspace {known}, the config names workspace {configured};"
            " point [state] journal elsewhere or run `syncd rebuild`"
        )
    if configured and not known:
        journal.set_meta("workspace_id", configured)
    client.workspace = WorkspaceGuard(
        known or configured, lambda ws: journal.set_meta("workspace_id", ws)
    )
