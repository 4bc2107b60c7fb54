"""What the emulator's two API versions share: the version names, the header checks of the gate
and the per-request context they record, and the service's error answers.

An error may carry an ``error_code`` (``file_expired``, ``file_not_downloadable``,
``storage_quota_exceeded``). Answers to 2026-10-21 requests show it as
``error.details.error_code``; answers to 2023-06-01 requests never had ``details`` and keep
the old body exactly.
"""

from __future__ import annotations

import hmac
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

BETA_VERSION = "2023-06-01"
GA_VERSION = "2026-10-21"
VERSIONS = (BETA_VERSION, GA_VERSION)
FILES_BETA = "files-api-2025-04-14"
WORKSPACE_HEADER = "anthropic-workspace-id"


def _state(request: Request) -> dict[str, Any]:
    state: dict[str, Any] = request.scope.setdefault("state", {})
    return state


def request_id_of(request: Request) -> str:
    """The id the middleware gave this request ("" outside /v1)."""
    return str(_state(request).get("request_id", ""))


def remember(request: Request, version: str, workspace: str) -> None:
    """Record the version and workspace the gate settled on for this request."""
    _state(request).update(api_version=version, workspace=workspace)


def version_of(request: Request) -> str | None:
    """The request's API version once the gate accepted it, else None."""
    version = _state(request).get("api_version")
    return None if version is None else str(version)


def is_ga(request: Request) -> bool:
    """Whether the request was accepted as a 2026-10-21 request."""
    return version_of(request) == GA_VERSION


def workspace_of(request: Request) -> str:
    """The workspace the gate settled on for this request."""
    return str(_state(request)["workspace"])


class ApiError(Exception):
    """An error answer in the service's shape."""

    def __init__(self, status: int, kind: str, message: str,
                 headers: dict[str, str] | None = None, code: str | None = None) -> None:
        super().__init__(message)
        self.status, self.kind, self.message, self.headers = status, kind, message, headers
        self.code = code

    def response(self, request: Request) -> Response:
        """The JSON answer; ``details.error_code`` only for 2026-10-21 requests."""
        error: dict[str, object] = {"type": self.kind, "message": self.message}
        if self.code is not None and is_ga(request):
            error["details"] = {"error_code": self.code}
        body = {"type": "error", "error": error, "request_id": request_id_of(request)}
        return JSONResponse(body, self.status, headers=self.headers)


class EdgeTooLarge(ApiError):
    """The edge's 413, whose body lacks the usual ``type`` and ``request_id``."""

    def __init__(self) -> None:
        super().__init__(413, "request_too_large", "Request exceeds the maximum size")

    def response(self, request: Request) -> Response:
        """The edge's bare body."""
        return JSONResponse({"error": {"type": self.kind, "message": self.message}}, 413)


def bad(message: str, code: str | None = None) -> ApiError:
    """A 400 invalid_request_error."""
    return ApiError(400, "invalid_request_error", message, code=code)


def unauthorized(message: str) -> ApiError:
    """A 401 authentication_error (the message must never contain a key)."""
    return ApiError(401, "authentication_error", message)


def not_found(file_id: str) -> ApiError:
    """The 404 for an id the workspace does not have (or no longer has)."""
    return ApiError(404, "not_found_error", f"File `{file_id}` not found.")


def file_expired(file_id: str) -> ApiError:
    """The 404 for a file past its ``expires_at``."""
    return ApiError(404, "not_found_error", f"File `{file_id}` has expired.", code="file_expired")


def not_downloadable() -> ApiError:
    """The 400 for downloading a file whose ``downloadable`` is false."""
    return bad("File is not downloadable", code="file_not_downloadable")


def quota_exceeded(ga: bool) -> ApiError:
    """Storage full: 400 with an error_code in 2026-10-21, 403 as the older documents say."""
    message = "Storage quota exceeded: delete files to make room for new uploads"
    if ga:
        return bad(message, code="storage_quota_exceeded")
    return ApiError(403, "permission_error", message)


def workspace_mismatch(sent: str) -> ApiError:
    """The 403 for an ``anthropic-workspace-id`` that is not the key's workspace."""
    return ApiError(403, "permission_error",
                    f"workspace `{sent}` is not accessible with this key")


def check_headers(request: Request, api_key: str, workspace: str) -> None:
    """The gate's header checks: key, version, beta (2023-06-01 only), workspace.

    On success the request's version and workspace are recorded for the handlers.
    """
    raw_version = request.headers.get("anthropic-version")
    version = None if raw_version is None else raw_version.strip()
    _check_key(request, api_key, version)
    if version is None:
        raise bad("anthropic-version: header is required")
    if version not in VERSIONS:
        raise bad(f"anthropic-version: this server speaks only {BETA_VERSION} and {GA_VERSION}")
    if version == BETA_VERSION:
        _check_beta(request)
    sent = request.headers.get(WORKSPACE_HEADER)
    if sent is not None and sent.strip() != workspace:
        raise workspace_mismatch(sent.strip())
    remember(request, version, workspace)


def _sent_key(request: Request, version: str | None) -> tuple[str, str]:
    """The key the request carries and where; 2023-06-01 knows only ``x-api-key``."""
    key = request.headers.get("x-api-key")
    if key is not None:
        return key, "x-api-key"
    authorization = request.headers.get("authorization")
    if version == BETA_VERSION or authorization is None:
        raise unauthorized("x-api-key header is required" if version == BETA_VERSION
                           else "x-api-key or Authorization: Bearer header is required")
    scheme, _, token = authorization.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise unauthorized("Authorization: expected `Bearer <API key>`")
    return token.strip(), "bearer token"


def _check_key(request: Request, api_key: str, version: str | None) -> None:
    sent, source = _sent_key(request, version)
    # Never echo the key back: error messages end up in logs. Headers arrive as latin-1 text,
    # so this compares the raw bytes sent with the key's UTF-8 bytes.
    if not hmac.compare_digest(sent.encode("latin-1"), api_key.encode("utf-8")):
        raise unauthorized(f"invalid {source}")


def _check_beta(request: Request) -> None:
    betas = request.headers.get("anthropic-beta")
    if betas is None:
        raise bad(f"anthropic-beta: header is required (the Files API needs {FILES_BETA})")
    if FILES_BETA not in {b.strip(" \t") for b in betas.split(",")}:
        raise bad(f"anthropic-beta: must include {FILES_BETA}")
