"""A local, faithful emulator of Anthropic's Files API (anthropic-version 2023-06-01, beta
files-api-2025-04-14), for tests, demos and anyone who wants to try syncd without a key.

The app answers ``/v1/files...`` the way the service does (headers, names, sizes, paging, error
shapes, non-downloadable uploads, lingering deletes) and ``/_emulator/...`` for tests: faults,
stored files with their sha256, seeding foreign files, request counts and the OpenAPI document.

Every /v1 request goes through the same gate, in this order: the edge's 413 on a too-large
Content-Length, injected latency, ``x-api-key``, ``anthropic-version``, ``anthropic-beta``, the
rate limiter, injected server errors, and only then the operation itself.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hmac
import json
import logging
import re
import socket
import threading
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

import uvicorn
from python_multipart.multipart import parse_options_header
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, PlainTextResponse, Response, StreamingResponse
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from syncd.emulator_faults import (
    QUIET_DROPS,
    ConnectionDropped,
    DroppedConnection,
    FaultDice,
    Faults,
)
from syncd.emulator_store import (
    BadUpload,
    FileStore,
    MultipartIngest,
    StoredFile,
    UnknownCursor,
    UploadTooLarge,
    new_id,
)
from syncd.names import filename_problem

API_VERSION = "2023-06-01"
FILES_BETA = "files-api-2025-04-14"
OPERATIONS = ("upload", "list", "get", "download", "delete")
OPENAPI_PATH = Path(__file__).with_name("openapi.yaml")
_EDGE_SLACK = 1024 * 1024  # multipart framing on top of the file itself
_CHUNK = 64 * 1024
_log = logging.getLogger(__name__)


@dataclass(frozen=True)
class EmulatorConfig:
    """Everything an emulator instance needs; ``clock`` drives created_at, lingering and 429s."""

    data_dir: Path
    api_key: str = "sk-ant-emulator"
    max_file_bytes: int = 500_000_000
    linger_seconds: float = 2.0
    faults: Faults = field(default_factory=Faults)
    seed: int = 0
    clock: Callable[[], float] = time.time


class _Stats:
    """Thread-safe request counters."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: Counter[str] = Counter()

    def count(self, key: str) -> None:
        with self._lock:
            self._counts[key] += 1

    def snapshot(self) -> dict[str, int]:
        with self._lock:
            return {**dict.fromkeys(OPERATIONS, 0), **self._counts}

    def reset(self) -> None:
        with self._lock:
            self._counts.clear()


class EmulatorState:
    """The store, the fault dice and the counters one emulator instance shares across threads."""

    def __init__(self, cfg: EmulatorConfig) -> None:
        self.cfg = cfg
        self.store = FileStore(cfg.data_dir, cfg.clock, cfg.linger_seconds)
        self.dice = FaultDice(cfg.faults, cfg.seed, cfg.clock)
        self.stats = _Stats()

    def seed_foreign(self, filename: str, content: bytes, mime_type: str,
                     downloadable: bool) -> StoredFile:
        """Store a file as if another program had uploaded it."""
        problem = filename_problem(filename)
        if problem is not None:
            raise ValueError(problem)
        return self.store.add_bytes(filename, content, mime_type, downloadable=downloadable,
                                    foreign=True)


# ---------------------------------------------------------------------------------------------
# Errors and the connection-dropping "response"


class _ApiError(Exception):
    """An error answer in the service's shape."""

    def __init__(self, status: int, kind: str, message: str,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.kind, self.message, self.headers = status, kind, message, headers

    def response(self, request: Request) -> Response:
        body = {"type": "error", "error": {"type": self.kind, "message": self.message},
                "request_id": _request_id(request)}
        return JSONResponse(body, self.status, headers=self.headers)


class _TooLarge(_ApiError):
    """The edge's 413, whose body lacks the usual ``type`` and ``request_id``."""

    def __init__(self) -> None:
        super().__init__(413, "request_too_large", "Request exceeds the maximum size")

    def response(self, request: Request) -> Response:
        return JSONResponse({"error": {"type": self.kind, "message": self.message}}, 413)


def _bad(message: str) -> _ApiError:
    return _ApiError(400, "invalid_request_error", message)


def _not_found(file_id: str) -> _ApiError:
    return _ApiError(404, "not_found_error", f"File `{file_id}` not found.")


def _request_id(request: Request) -> str:
    state: dict[str, Any] = request.scope.get("state") or {}
    return str(state.get("request_id", ""))


class _RequestIdMiddleware:
    """Gives every /v1 response a ``request-id`` header (and the id to error bodies)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith("/v1"):
            await self.app(scope, receive, send)
            return
        request_id = new_id("req")
        scope.setdefault("state", {})["request_id"] = request_id

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [*message.get("headers", []), (b"request-id", request_id.encode())]
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_id)


# ---------------------------------------------------------------------------------------------
# The gate in front of every /v1 operation

_Handler = Callable[[Request, EmulatorState], Awaitable[Response]]


def _operations(state: EmulatorState, by_method: dict[str, tuple[str, _Handler]]) -> Callable[
        [Request], Awaitable[Response]]:
    """One endpoint per path (so a 405's Allow header lists every method the path has)."""
    async def endpoint(request: Request) -> Response:
        op, handler = by_method["GET" if request.method == "HEAD" else request.method]
        state.stats.count(op)
        try:
            response = await _gate_then(state, op, handler, request)
        except _ApiError as exc:
            response = exc.response(request)
        if not isinstance(response, DroppedConnection):
            state.stats.count(f"status:{op}:{response.status_code}")
        return response

    return endpoint


async def _gate_then(state: EmulatorState, op: str, handler: _Handler,
                     request: Request) -> Response:
    if op == "upload":
        _check_content_length(request, state.cfg.max_file_bytes)
    faults = state.dice.faults
    if faults.latency_seconds > 0:
        await asyncio.sleep(faults.latency_seconds)
    _check_headers(request, state.cfg.api_key)
    retry_after = state.dice.rate_limited()
    if retry_after is not None:
        raise _ApiError(429, "rate_limit_error", "Rate limited", {"retry-after": str(retry_after)})
    status = state.dice.server_error()
    if status == 500:
        raise _ApiError(500, "api_error", "Internal server error")
    if status == 529:
        raise _ApiError(529, "overloaded_error", "Overloaded")
    return await handler(request, state)


def _check_content_length(request: Request, max_file_bytes: int) -> None:
    # The edge refuses an obviously too large body before reading it, as the service's does.
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > max_file_bytes + _EDGE_SLACK:
        raise _TooLarge()


def _check_headers(request: Request, api_key: str) -> None:
    sent_key = request.headers.get("x-api-key")
    if sent_key is None:
        raise _ApiError(401, "authentication_error", "x-api-key header is required")
    # Never echo the key back: error messages end up in logs. Headers arrive as latin-1 text,
    # so this compares the raw bytes sent with the key's UTF-8 bytes.
    if not hmac.compare_digest(sent_key.encode("latin-1"), api_key.encode("utf-8")):
        raise _ApiError(401, "authentication_error", "invalid x-api-key")
    version = request.headers.get("anthropic-version")
    if version is None:
        raise _bad("anthropic-version: header is required")
    if version.strip() != API_VERSION:
        raise _bad(f"anthropic-version: this server speaks only {API_VERSION}")
    betas = request.headers.get("anthropic-beta")
    if betas is None:
        raise _bad(f"anthropic-beta: header is required (the Files API needs {FILES_BETA})")
    if FILES_BETA not in {b.strip(" \t") for b in betas.split(",")}:
        raise _bad(f"anthropic-beta: must include {FILES_BETA}")


# ---------------------------------------------------------------------------------------------
# Upload: stream the one `file` part into the store

def _boundary(request: Request) -> bytes:
    content_type, params = parse_options_header(request.headers.get("content-type", ""))
    if content_type != b"multipart/form-data":
        raise _bad("file: Field required")
    if not params.get(b"boundary"):
        raise _bad("Invalid multipart/form-data body: the Content-Type has no boundary")
    return params[b"boundary"]


async def _upload(request: Request, state: EmulatorState) -> Response:
    boundary = _boundary(request)
    if state.dice.drop_upload():
        state.stats.count("fault:drop_upload")
        return await _drop_mid_upload(request)
    ingest = MultipartIngest(state.store, boundary, state.cfg.max_file_bytes)
    try:
        async for chunk in request.stream():
            ingest.feed(chunk)
        stored = ingest.commit()
    except BadUpload as exc:
        raise _bad(str(exc)) from exc
    except UploadTooLarge as exc:
        raise _TooLarge() from exc
    except ClientDisconnect:
        return DroppedConnection()
    finally:
        ingest.abort()
    if state.dice.lose_response():
        state.stats.count("fault:lose_response")
        return DroppedConnection()
    return JSONResponse(stored.api_object())


async def _drop_mid_upload(request: Request) -> Response:
    # Read a little so the client is mid-body when the connection goes; store nothing.
    try:
        async for _chunk in request.stream():
            break
    except ClientDisconnect:
        pass
    return DroppedConnection()


# ---------------------------------------------------------------------------------------------
# List, get, download, delete


def _limit(raw: str | None) -> int:
    if raw is None:
        return 20
    if not re.fullmatch(r"-?[0-9]{1,9}", raw):
        raise _bad("limit: Input should be a valid integer")
    limit = int(raw)
    if limit < 1:
        raise _bad("limit: Input should be greater than or equal to 1")
    if limit > 1000:
        raise _bad("limit: Input should be less than or equal to 1000")
    return limit


async def _list(request: Request, state: EmulatorState) -> Response:
    query = request.query_params
    limit = _limit(query.get("limit"))
    # An empty cursor is taken as no cursor.
    after_id, before_id = query.get("after_id") or None, query.get("before_id") or None
    if after_id is not None and before_id is not None:
        raise _bad("after_id and before_id cannot be given together")
    try:
        page = state.store.page(limit, after_id, before_id)
    except UnknownCursor as exc:
        name = "after_id" if after_id is not None else "before_id"
        raise _bad(f"{name}: no file with id `{exc.args[0]}`") from exc
    data = [f.api_object() for f in page.files]
    return JSONResponse({
        "data": data,
        "first_id": data[0]["id"] if data else None,
        "last_id": data[-1]["id"] if data else None,
        "has_more": page.has_more,
    })


def _live(state: EmulatorState, request: Request) -> StoredFile:
    file_id = request.path_params["file_id"]
    stored = state.store.get(file_id)
    if stored is None:
        raise _not_found(file_id)
    return stored


async def _get(request: Request, state: EmulatorState) -> Response:
    return JSONResponse(_live(state, request).api_object())


async def _download(request: Request, state: EmulatorState) -> Response:
    stored = _live(state, request)
    if not stored.downloadable:
        raise _bad("File is not downloadable")
    try:
        handle = state.store.open_content(stored.id)
    except OSError as exc:  # deleted between the lookup and the open
        raise _not_found(stored.id) from exc
    return StreamingResponse(_chunks(handle), media_type=stored.mime_type,
                             headers={"content-length": str(stored.size)})


def _chunks(handle: BinaryIO) -> Iterator[bytes]:
    with handle:
        while chunk := handle.read(_CHUNK):
            yield chunk


async def _delete(request: Request, state: EmulatorState) -> Response:
    file_id = request.path_params["file_id"]
    if not state.store.delete(file_id):
        raise _not_found(file_id)
    return JSONResponse({"id": file_id, "type": "file_deleted"})


# ---------------------------------------------------------------------------------------------
# Control endpoints (no auth; for tests and demos) and the app


def _control_routes(state: EmulatorState) -> list[Route]:
    async def get_faults(request: Request) -> Response:
        return JSONResponse(state.dice.faults.to_dict())

    async def put_faults(request: Request) -> Response:
        try:
            data = json.loads(await request.body())
            if not isinstance(data, dict):
                raise ValueError("expected a JSON object of fault settings")
            state.dice.set(Faults.from_dict(data))
        except ValueError as exc:
            return JSONResponse({"error": str(exc)}, 400)
        return JSONResponse(state.dice.faults.to_dict())

    async def files(request: Request) -> Response:
        return JSONResponse([asdict(f) for f in state.store.listed()])

    async def seed(request: Request) -> Response:
        try:
            data = json.loads(await request.body())
            content = base64.b64decode(str(data.get("content_base64", "")), validate=True)
            stored = state.seed_foreign(str(data["filename"]), content,
                                        str(data.get("mime_type", "text/plain")),
                                        bool(data.get("downloadable", False)))
        except (ValueError, KeyError, TypeError, AttributeError, binascii.Error) as exc:
            return JSONResponse({"error": f"bad seed request: {exc}"}, 400)
        return JSONResponse({"id": stored.id})

    async def stats(request: Request) -> Response:
        return JSONResponse(state.stats.snapshot())

    async def reset_stats(request: Request) -> Response:
        state.stats.reset()
        return JSONResponse(state.stats.snapshot())

    async def openapi(request: Request) -> Response:
        return Response(OPENAPI_PATH.read_bytes(), media_type="application/yaml")

    return [
        Route("/_emulator/faults", get_faults, methods=["GET"]),
        Route("/_emulator/faults", put_faults, methods=["PUT"]),
        Route("/_emulator/files", files, methods=["GET"]),
        Route("/_emulator/seed", seed, methods=["POST"]),
        Route("/_emulator/stats", stats, methods=["GET"]),
        Route("/_emulator/stats/reset", reset_stats, methods=["POST"]),
        Route("/_emulator/openapi.yaml", openapi, methods=["GET"]),
    ]


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    if not request.url.path.startswith("/v1"):
        return PlainTextResponse(exc.detail, exc.status_code, headers=exc.headers)
    kind = "not_found_error" if exc.status_code == 404 else "invalid_request_error"
    message = {404: "Not found", 405: "Method not allowed"}.get(exc.status_code, exc.detail)
    headers = dict(exc.headers) if exc.headers else None
    return _ApiError(exc.status_code, kind, message, headers).response(request)


async def _server_error(request: Request, exc: Exception) -> Response:
    # Starlette calls this for planned drops too; their response has started and is not sent.
    if not isinstance(exc, ConnectionDropped):
        _log.error("emulator bug", exc_info=exc)
    return _ApiError(500, "api_error", "Internal server error").response(request)


def build_app(state: EmulatorState) -> ASGIApp:
    """The ASGI app serving one emulator state."""
    routes = [
        Route("/v1/files", _operations(state, {"GET": ("list", _list),
                                               "POST": ("upload", _upload)}),
              methods=["GET", "POST"]),
        Route("/v1/files/{file_id}", _operations(state, {"GET": ("get", _get),
                                                         "DELETE": ("delete", _delete)}),
              methods=["GET", "DELETE"]),
        Route("/v1/files/{file_id}/content",
              _operations(state, {"GET": ("download", _download)}), methods=["GET"]),
        *_control_routes(state),
    ]
    app = Starlette(routes=routes,
                    exception_handlers={HTTPException: _http_error, Exception: _server_error})
    return _RequestIdMiddleware(app)


# ---------------------------------------------------------------------------------------------
# Running it: in a background thread (tests, demo) or in the foreground (CLI)


class RunningEmulator:
    """Handle on a started emulator: its address plus test controls."""

    def __init__(self, state: EmulatorState, base_url: str) -> None:
        self._state = state
        self.base_url = base_url

    @property
    def api_key(self) -> str:
        """The key clients must send as ``x-api-key``."""
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

    def stored(self) -> list[StoredFile]:
        """Every file a listing would show now (live and lingering), newest first."""
        return self._state.store.listed()

    def seed_foreign(self, filename: str, content: bytes, mime_type: str = "text/plain",
                     downloadable: bool = False) -> str:
        """Store a file "another program" uploaded; returns its id."""
        return self._state.seed_foreign(filename, content, mime_type, downloadable).id

    def ensure_foreign_files(self, count: int) -> list[str]:
        """Make sure ``foreign-001.txt`` .. ``foreign-<count>.txt`` exist; returns their ids.

        Fixed names make this idempotent: a restart on the same data does not add N more.
        """
        ids = []
        for i in range(1, count + 1):
            name = f"foreign-{i:03d}.txt"
            existing = self._state.store.find_live_foreign(name)
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
