"""The emulator's control endpoints, for tests and demos. They need the emulator's key (as
``x-api-key`` or ``Authorization: Bearer``), like the API itself: anyone who can reach the port
must not be able to read stored files, seed or change faults.

- ``GET``/``PUT /_emulator/faults``: the ``Faults`` in force (PUT replaces them all), the
  storage quota ``quota_bytes`` included.
- ``GET``/``PUT /_emulator/workspace``: ``{"workspace_id": "wrkspc_..."}``, the key's workspace.
- ``GET /_emulator/files``: the current workspace's listed files, with sha256, foreign, scope.
- ``POST /_emulator/seed``: ``{"filename", "content_base64", "mime_type"?, "downloadable"?,
  "scope"?: {"type": "session", "id": "sesn_..."}, "expires_in_seconds"?}`` -> ``{"id"}``.
- ``GET /_emulator/stats``, ``POST /_emulator/stats/reset``: request counts.
- ``GET /_emulator/openapi.yaml``: the OpenAPI document the emulator is tested against.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import json
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import asdict
from pathlib import Path

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from syncd.emulator.faults import Faults
from syncd.emulator.state import EmulatorState
from syncd.emulator.store import FileScope, StoredFile

OPENAPI_PATH = Path(__file__).with_name("openapi.yaml")
Endpoint = Callable[[Request], Awaitable[Response]]


async def _json_object(request: Request) -> dict[str, object]:
    data = json.loads(await request.body())
    if not isinstance(data, dict):
        raise ValueError("expected a JSON object")
    return data


def _seed_scope(value: object) -> FileScope | None:
    if value is None:
        return None
    if (not isinstance(value, Mapping) or value.get("type") != "session"
            or not isinstance(value.get("id"), str) or not value["id"]):
        raise ValueError('scope must be {"type": "session", "id": "sesn_..."} or null')
    return FileScope("session", str(value["id"]))


def _seed_expiry(value: object) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError("expires_in_seconds must be an integer or null")
    return value


def _seed_from(state: EmulatorState, data: dict[str, object]) -> StoredFile:
    content = base64.b64decode(str(data.get("content_base64", "")), validate=True)
    return state.seed_foreign(str(data["filename"]), content,
                              str(data.get("mime_type", "text/plain")),
                              bool(data.get("downloadable", False)),
                              scope=_seed_scope(data.get("scope")),
                              expires_in_seconds=_seed_expiry(data.get("expires_in_seconds")))


def _keyed(state: EmulatorState, endpoint: Endpoint) -> Endpoint:
    """``endpoint``, answering 401 unless the request carries the emulator's key."""
    async def guarded(request: Request) -> Response:
        bearer = request.headers.get("authorization", "")
        sent = request.headers.get("x-api-key") or bearer.removeprefix("Bearer ")
        if not hmac.compare_digest(sent.encode(), state.cfg.api_key.encode()):
            return JSONResponse({"error": "control endpoints need the emulator's key"}, 401)
        return await endpoint(request)
    return guarded


def control_routes(state: EmulatorState) -> list[Route]:
    """The /_emulator routes of one emulator state, each behind the key."""
    routes = _control_routes(state)
    return [Route(r.path, _keyed(state, r.endpoint), methods=list(r.methods or ()))
            for r in routes]


def _control_routes(state: EmulatorState) -> list[Route]:
    async def get_faults(request: Request) -> Response:
        return JSONResponse(state.dice.faults.to_dict())

    async def put_faults(request: Request) -> Response:
        try:
            state.dice.set(Faults.from_dict(await _json_object(request)))
        except ValueError as exc:
            return JSONResponse({"error": str(exc)}, 400)
        return JSONResponse(state.dice.faults.to_dict())

    async def get_workspace(request: Request) -> Response:
        return JSONResponse({"workspace_id": state.workspace})

    async def put_workspace(request: Request) -> Response:
        try:
            state.set_workspace(str((await _json_object(request))["workspace_id"]))
        except (ValueError, KeyError) as exc:
            return JSONResponse({"error": f"bad workspace request: {exc}"}, 400)
        return JSONResponse({"workspace_id": state.workspace})

    async def files(request: Request) -> Response:
        return JSONResponse([asdict(f) for f in state.store.listed(state.workspace)])

    async def seed(request: Request) -> Response:
        try:
            stored = _seed_from(state, await _json_object(request))
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
        Route("/_emulator/workspace", get_workspace, methods=["GET"]),
        Route("/_emulator/workspace", put_workspace, methods=["PUT"]),
        Route("/_emulator/files", files, methods=["GET"]),
        Route("/_emulator/seed", seed, methods=["POST"]),
        Route("/_emulator/stats", stats, methods=["GET"]),
        Route("/_emulator/stats/reset", reset_stats, methods=["POST"]),
        Route("/_emulator/openapi.yaml", openapi, methods=["GET"]),
    ]
