"""A local, faithful emulator of Anthropic's Files API, for tests, demos and anyone who wants to
try syncd without a key.

It speaks both API versions, chosen per request by the ``anthropic-version`` header as the
service does:

- ``2023-06-01`` with ``anthropic-beta: files-api-2025-04-14`` (the 2025 beta): ``x-api-key``,
  ``after_id`` / ``before_id`` paging, File objects without ``expires_at`` / ``scope``, no
  ``error.details``, storage quota answered 403 permission_error.
- ``2026-10-21`` (GA, what anthropic==2.14.0 sends): ``Authorization: Bearer`` or ``x-api-key``,
  no beta header, ``page`` / ``next_page`` paging and ``ids[]`` lookups (syncd.emulator.lists),
  ``expires_at`` / ``expires_in_seconds``, ``scope`` on session files, final-path-component
  filenames (syncd.emulator.multipart), ``error.details.error_code`` (syncd.emulator.api).

The app answers ``/v1/files...`` the way the service does (headers, names, sizes, paging, error
shapes, non-downloadable uploads, lingering deletes, expiry, the storage quota, the key's
workspace) and ``/_emulator/...`` for tests: faults, the workspace, stored files with their
sha256, seeding foreign files, request counts and the OpenAPI document.

Every /v1 answer carries ``request-id`` and ``anthropic-workspace-id`` headers, and every
answer a ``date`` by the emulator's clock. With ``ratelimit_headers`` and a rate limit, /v1
answers (429s included) also announce it: ``anthropic-ratelimit-requests-limit`` (the
per-minute rate), ``-remaining`` (whole tokens in the bucket) and ``-reset`` (RFC 3339, when
the bucket is full again). Every /v1 request goes through the same gate
(syncd.emulator.routes), in this order: the edge's 413 on a too-large Content-Length, injected
latency, the key, ``anthropic-version``, ``anthropic-beta`` (2023-06-01 only),
``anthropic-workspace-id`` (if sent, it must be the key's workspace), the rate limiter, injected
server errors, and only then the operation itself.

Files belong to the workspace that was current when they were made; changing the workspace
(``RunningEmulator.set_workspace``) is "the key moved": the old workspace's files are no longer
visible to it, though they still count against the (organization-wide) storage quota.
"""

from __future__ import annotations

import email.utils
import logging
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import uvicorn
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from syncd.emulator.api import (
    BETA_VERSION,
    FILES_BETA,
    GA_VERSION,
    WORKSPACE_HEADER,
    ApiError,
)
from syncd.emulator.control import OPENAPI_PATH, control_routes
from syncd.emulator.faults import QUIET_DROPS, ConnectionDropped, Faults
from syncd.emulator.routes import file_routes
from syncd.emulator.state import EmulatorConfig, EmulatorState, workspace_problem
from syncd.emulator.store import DEFAULT_WORKSPACE, FileScope, StoredFile, new_id

API_VERSION = BETA_VERSION  # the version the first emulator spoke; kept for old imports
_log = logging.getLogger(__name__)

__all__ = [
    "API_VERSION", "DEFAULT_WORKSPACE", "FILES_BETA", "GA_VERSION", "OPENAPI_PATH",
    "EmulatorConfig", "EmulatorState", "FileScope", "RunningEmulator", "StoredFile", "build_app",
    "run_emulator", "workspace_problem",
]


# ---------------------------------------------------------------------------------------------
# Headers every /v1 answer carries


class _ApiHeadersMiddleware:
    """Gives every /v1 response ``request-id`` (also in error bodies) and
    ``anthropic-workspace-id`` headers, and every response a ``date`` by the emulator's clock
    (clients learn their clock skew from it; uvicorn's own, by the real clock, is off)."""

    def __init__(self, app: ASGIApp, state: EmulatorState) -> None:
        self.app = app
        self.state = state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        api = scope["path"].startswith("/v1")
        request_id = new_id("req")
        request_state = scope.setdefault("state", {})
        if api:
            request_state["request_id"] = request_id

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                date = email.utils.formatdate(self.state.cfg.clock(), usegmt=True)
                headers = [*message.get("headers", []), (b"date", date.encode())]
                if api:
                    workspace = request_state.get("workspace") or self.state.workspace
                    headers += [(b"request-id", request_id.encode()),
                                (WORKSPACE_HEADER.encode(), str(workspace).encode()),
                                *request_state.get("ratelimit", ())]
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_headers)


# ---------------------------------------------------------------------------------------------
# The app: the /v1/files routes, the control routes (no auth; for tests and demos), and
# errors in the service's shape


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    if not request.url.path.startswith("/v1"):
        return PlainTextResponse(exc.detail, exc.status_code, headers=exc.headers)
    kind = "not_found_error" if exc.status_code == 404 else "invalid_request_error"
    message = {404: "Not found", 405: "Method not allowed"}.get(exc.status_code, exc.detail)
    headers = dict(exc.headers) if exc.headers else None
    return ApiError(exc.status_code, kind, message, headers).response(request)


async def _server_error(request: Request, exc: Exception) -> Response:
    # Starlette calls this for planned drops too; their response has started and is not sent.
    if not isinstance(exc, ConnectionDropped):
        _log.error("emulator bug", exc_info=exc)
    return ApiError(500, "api_error", "Internal server error").response(request)


def build_app(state: EmulatorState) -> ASGIApp:
    """The ASGI app serving one emulator state."""
    app = Starlette(routes=[*file_routes(state), *control_routes(state)],
                    exception_handlers={HTTPException: _http_error, Exception: _server_error})
    return _ApiHeadersMiddleware(app, state)


# ---------------------------------------------------------------------------------------------
# Running it: in a background thread (tests, demo) or in the foreground (CLI)


class RunningEmulator:
    """Handle on a started emulator: its address plus test controls."""

    def __init__(self, state: EmulatorState, base_url: str) -> None:
        self._state = state
        self.base_url = base_url

    @property
    def api_key(self) -> str:
        """The key clients must send (``x-api-key``, or in 2026-10-21 also as a Bearer token)."""
        return self._state.cfg.api_key

    @property
    def data_dir(self) -> Path:
        """Where the files and metadata live."""
        return self._state.cfg.data_dir

    @property
    def faults(self) -> Faults:
        """The fault settings in force."""
        return self._state.dice.faults

    def set_faults(self, faults: Faults) -> None:
        """Change the faults live (the rate limiter restarts with a full bucket)."""
        self._state.dice.set(faults)

    @property
    def workspace_id(self) -> str:
        """The workspace the key belongs to now (sent back as ``anthropic-workspace-id``)."""
        return self._state.workspace

    def set_workspace(self, workspace_id: str) -> None:
        """Move the key to another workspace: its files there are what it sees from now on.

        Raises ValueError unless the id is ``wrkspc_`` and 1 to 100 of ``[A-Za-z0-9_-]``.
        """
        self._state.set_workspace(workspace_id)

    def stored(self) -> list[StoredFile]:
        """Every file of the current workspace a listing would show now (live and lingering),
        newest first."""
        return self._state.store.listed(self._state.workspace)

    def seed_foreign(self, filename: str, content: bytes, mime_type: str = "text/plain",
                     downloadable: bool = False, *, scope: FileScope | None = None,
                     expires_in_seconds: int | None = None) -> str:
        """Store a file "another program" uploaded, or with ``scope`` one an agent session
        wrote; returns its id. ``expires_in_seconds`` (any positive number) sets its expiry."""
        return self._state.seed_foreign(filename, content, mime_type, downloadable, scope,
                                        expires_in_seconds).id

    def ensure_foreign_files(self, count: int) -> list[str]:
        """Make sure ``foreign-001.txt`` .. ``foreign-<count>.txt`` exist; returns their ids.

        Fixed names make this idempotent: a restart on the same data does not add N more.
        """
        ids = []
        for i in range(1, count + 1):
            name = f"foreign-{i:03d}.txt"
            existing = self._state.store.find_live_foreign(self._state.workspace, name)
            content = f"foreign file {i}, made by another program\n".encode()
            ids.append(existing.id if existing else self.seed_foreign(name, content))
        return ids

    def stats(self) -> dict[str, int]:
        """Requests per /v1 operation and per ``status:<op>:<code>`` since the last reset."""
        return self._state.stats.snapshot()

    def reset_stats(self) -> None:
        """Zero the request counters."""
        self._state.stats.reset()


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # proto must say TCP: asyncio only sets TCP_NODELAY on such sockets, and without it every
    # response waits ~40 ms for a delayed ACK between its head and body writes.
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(128)
    except OSError:
        sock.close()
        raise
    sock.set_inheritable(True)
    return sock


def _wait_started(server: uvicorn.Server, thread: threading.Thread, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not server.started:
        if not thread.is_alive():
            raise RuntimeError("the emulator's server thread stopped during start-up")
        if time.monotonic() > deadline:
            raise TimeoutError(f"the emulator did not start within {timeout} s")
        time.sleep(0.005)


@contextmanager
def run_emulator(cfg: EmulatorConfig, host: str = "127.0.0.1", port: int = 0, *,
                 timeout: float = 10.0) -> Iterator[RunningEmulator]:
    """Serve the emulator from a daemon thread for the duration of the ``with`` block.

    ``port=0`` picks a free port. Start and stop each wait at most ``timeout`` seconds.
    Raises OSError if the address cannot be bound.
    """
    state = EmulatorState(cfg)
    try:
        sock = _bind(host, port)
    except OSError:
        state.store.close()
        raise
    logging.getLogger("uvicorn.error").addFilter(QUIET_DROPS)
    # python-multipart logs a warning for each malformed body; the client gets a 400 for it.
    logging.getLogger("python_multipart").setLevel(logging.ERROR)
    config = uvicorn.Config(build_app(state), log_level="warning", access_log=False,
                            log_config=None, http="h11", ws="none", lifespan="off",
                            date_header=False,
                            timeout_graceful_shutdown=max(1, int(timeout / 2)))
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True,
                              name="syncd-emulator")
    thread.start()
    try:
        _wait_started(server, thread, timeout)
        url_host = f"[{host}]" if ":" in host else host
        yield RunningEmulator(state, f"http://{url_host}:{sock.getsockname()[1]}")
    finally:
        server.should_exit = True
        thread.join(timeout)
        sock.close()
        state.store.close()
