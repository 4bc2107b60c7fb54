"""The /v1/files routes: the gate every request passes (the edge's size limit, latency, the
headers, the rate limit, injected server errors, in that order), then the five operations:
upload (streamed into the store), list, get, download and delete.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Awaitable, Callable, Iterator
from datetime import UTC, datetime
from typing import BinaryIO

from python_multipart.multipart import parse_options_header
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from syncd.emulator.api import (
    ApiError,
    EdgeTooLarge,
    bad,
    check_headers,
    file_expired,
    is_ga,
    not_downloadable,
    not_found,
    quota_exceeded,
    workspace_of,
)
from syncd.emulator.faults import DroppedConnection
from syncd.emulator.lists import list_beta, list_ga
from syncd.emulator.multipart import BadUpload, MultipartIngest, UploadRules, UploadTooLarge
from syncd.emulator.state import EmulatorState
from syncd.emulator.store import QuotaExceeded, StoredFile

_EDGE_SLACK = 1024 * 1024  # multipart framing on top of the file itself
_CHUNK = 64 * 1024


def file_routes(state: EmulatorState) -> list[Route]:
    """The /v1/files routes of one emulator state (``control_routes`` has the others)."""
    return [
        Route("/v1/files", _operations(state, {"GET": ("list", _list),
                                               "POST": ("upload", _upload)}),
              methods=["GET", "POST"]),
        Route("/v1/files/{file_id}", _operations(state, {"GET": ("get", _get),
                                                         "DELETE": ("delete", _delete)}),
              methods=["GET", "DELETE"]),
        Route("/v1/files/{file_id}/content",
              _operations(state, {"GET": ("download", _download)}), methods=["GET"]),
    ]


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
        except ApiError as exc:
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
    check_headers(request, state.cfg.api_key, state.workspace)
    retry_after = state.dice.rate_limited()
    if state.cfg.ratelimit_headers:
        _announce_budget(request, state)
    if retry_after is not None:
        raise ApiError(429, "rate_limit_error", "Rate limited", {"retry-after": str(retry_after)})
    status = state.dice.server_error()
    if status == 500:
        raise ApiError(500, "api_error", "Internal server error")
    if status == 529:
        raise ApiError(529, "overloaded_error", "Overloaded")
    return await handler(request, state)


def _announce_budget(request: Request, state: EmulatorState) -> None:
    """The service's ``anthropic-ratelimit-requests-*`` headers, for the middleware to send."""
    budget = state.dice.budget()
    if budget is None:
        return
    limit, remaining, full_at = budget
    reset = datetime.fromtimestamp(math.ceil(full_at), UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    request.scope.setdefault("state", {})["ratelimit"] = [
        (b"anthropic-ratelimit-requests-limit", str(limit).encode()),
        (b"anthropic-ratelimit-requests-remaining", str(remaining).encode()),
        (b"anthropic-ratelimit-requests-reset", reset.encode())]


def _check_content_length(request: Request, max_file_bytes: int) -> None:
    # The edge refuses an obviously too large body before reading it, as the service's does.
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > max_file_bytes + _EDGE_SLACK:
        raise EdgeTooLarge()


def _file_object(request: Request, stored: StoredFile) -> dict[str, object]:
    return stored.ga_object() if is_ga(request) else stored.api_object()


# ---------------------------------------------------------------------------------------------
# Upload: stream the one `file` part into the store

def _boundary(request: Request) -> bytes:
    content_type, params = parse_options_header(request.headers.get("content-type", ""))
    if content_type != b"multipart/form-data":
        raise bad("file: Field required")
    if not params.get(b"boundary"):
        raise bad("Invalid multipart/form-data body: the Content-Type has no boundary")
    return params[b"boundary"]


async def _upload(request: Request, state: EmulatorState) -> Response:
    boundary = _boundary(request)
    if state.dice.drop_upload():
        state.stats.count("fault:drop_upload")
        return await _drop_mid_upload(request)
    rules = UploadRules(ga=is_ga(request), workspace=workspace_of(request),
                        max_bytes=state.cfg.max_file_bytes,
                        quota_bytes=state.dice.faults.quota_bytes)
    ingest = MultipartIngest(state.store, boundary, rules)
    try:
        async for chunk in request.stream():
            ingest.feed(chunk)
        stored = ingest.commit()
    except BadUpload as exc:
        raise bad(str(exc)) from exc
    except UploadTooLarge as exc:
        raise EdgeTooLarge() from exc
    except QuotaExceeded as exc:
        raise quota_exceeded(rules.ga) from exc
    except ClientDisconnect:
        return DroppedConnection()
    finally:
        ingest.abort()
    if state.dice.lose_response():
        state.stats.count("fault:lose_response")
        return DroppedConnection()
    return JSONResponse(_file_object(request, stored))


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


async def _list(request: Request, state: EmulatorState) -> Response:
    lister = list_ga if is_ga(request) else list_beta
    return lister(request.query_params, state.store, workspace_of(request), state.cfg.page_max,
                  state.dice, state.stats.count)


def _missing(state: EmulatorState, request: Request, file_id: str) -> ApiError:
    """The 404 for a file that is not live: with file_expired for an expired one (GA only)."""
    if is_ga(request) and state.store.expired(workspace_of(request), file_id):
        return file_expired(file_id)
    return not_found(file_id)


def _live(state: EmulatorState, request: Request) -> StoredFile:
    file_id = request.path_params["file_id"]
    stored = state.store.get(workspace_of(request), file_id)
    if stored is None:
        raise _missing(state, request, file_id)
    return stored


async def _get(request: Request, state: EmulatorState) -> Response:
    return JSONResponse(_file_object(request, _live(state, request)))


async def _download(request: Request, state: EmulatorState) -> Response:
    stored = _live(state, request)
    if not stored.downloadable:
        raise not_downloadable()
    try:
        handle = state.store.open_content(stored.id)
    except OSError as exc:  # deleted between the lookup and the open
        raise not_found(stored.id) from exc
    return StreamingResponse(_chunks(handle), media_type=stored.mime_type,
                             headers={"content-length": str(stored.size)})


def _chunks(handle: BinaryIO) -> Iterator[bytes]:
    with handle:
        while chunk := handle.read(_CHUNK):
            yield chunk


async def _delete(request: Request, state: EmulatorState) -> Response:
    file_id = request.path_params["file_id"]
    if not state.store.delete(workspace_of(request), file_id):
        raise _missing(state, request, file_id)
    return JSONResponse({"id": file_id, "type": "file_deleted"})
