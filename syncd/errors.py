"""Every exception syncd raises, in one tree.

Callers catch by category. ``TransientError`` means "try again later, nothing is wrong with the
request"; ``PermanentError`` means "this will fail the same way until something changes".
Foreign exceptions (httpx, sqlite3, OSError) are translated once, at the boundary that meets
them, with ``raise ... from exc``.

    SyncdError
    ├── ConfigError                 bad configuration or a missing API key (exit 2)
    ├── LocalFileError              a local file vanished, is unreadable, or changed mid-upload
    │   └── FileChangedError        its size or mtime moved while it was being uploaded
    ├── JournalError                the SQLite journal cannot be used
    │   ├── JournalLockedError      another daemon holds this journal
    │   └── JournalMismatchError    the journal belongs to another root or remote
    ├── SafetyStop                  a scan would delete too much; nothing was deleted
    └── ApiError                    the Files API (or the way to it) said no
        ├── TransientError
        │   ├── ConnectionFailed    no HTTP answer: connect/read/write error, timeout, drop
        │   ├── RequestTimeout      408
        │   ├── ConflictError       409
        │   ├── RateLimited         429 (carries retry_after)
        │   └── ServerError         5xx, 529 overloaded
        └── PermanentError
            ├── BadRequest          400 (bad name, bad limit, not downloadable, ...)
            ├── AuthenticationFailed 401
            ├── BillingError        402
            ├── PermissionDenied    403 (also storage quota on older deployments)
            ├── NotFound            404
            └── TooLarge            413
"""

from __future__ import annotations

import email.utils
import json
import time
from typing import Any

import httpx


class SyncdError(Exception):
    """Base of every error syncd raises on purpose."""

    #: Set on an upload's final error when an earlier attempt got no answer: the service may
    #: hold a copy nobody has an id for, so the upload's intent must stay for reconcile.
    maybe_stored: bool = False


class ConfigError(SyncdError):
    """The configuration is invalid or incomplete; the message names the key and the fix."""


class LocalFileError(SyncdError):
    """A local file could not be read for upload."""


class FileChangedError(LocalFileError):
    """A file changed while it was being uploaded; the upload is superseded.

    ``uploaded_id`` names the copy the service stored anyway (None if the request was aborted
    before it completed): the caller owns it and must delete it.
    """

    def __init__(self, message: str, uploaded_id: str | None = None) -> None:
        super().__init__(message)
        self.uploaded_id = uploaded_id


class JournalError(SyncdError):
    """The journal cannot be opened or written."""


class JournalLockedError(JournalError):
    """Another process holds the journal's lock."""


class JournalMismatchError(JournalError):
    """The journal was made for another root or remote and must not be reused."""


class SafetyStop(SyncdError):
    """A scan would delete more than allowed; nothing was deleted remotely."""


class ApiError(SyncdError):
    """An answer (or the lack of one) from the Files API.

    ``should_retry`` is the server's ``x-should-retry`` header when it sent one: it overrides the
    class's category, as the official SDK does.
    """

    retryable = False

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        error_type: str | None = None,
        request_id: str | None = None,
        should_retry: bool | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.error_type = error_type
        self.request_id = request_id
        self.should_retry = should_retry
        self.retry_after = retry_after

    def __str__(self) -> str:
        parts = [str(self.status) if self.status is not None else "no response"]
        if self.error_type:
            parts.append(self.error_type)
        text = f"{' '.join(parts)}: {self.message}"
        return f"{text} (request-id {self.request_id})" if self.request_id else text


class TransientError(ApiError):
    """Worth retrying later: nothing is wrong with the request itself."""

    retryable = True


class ConnectionFailed(TransientError):
    """No HTTP answer at all: the connection failed, timed out or was dropped."""


class RequestTimeout(TransientError):
    """408 from the service."""


class ConflictError(TransientError):
    """409 from the service."""


class RateLimited(TransientError):
    """429: every caller pauses until ``retry_after``."""


class ServerError(TransientError):
    """5xx or 529 overloaded."""


class PermanentError(ApiError):
    """Fails the same way until the request (or the account) changes."""


class BadRequest(PermanentError):
    """400 invalid_request_error."""


class AuthenticationFailed(PermanentError):
    """401: the API key was rejected."""


class BillingError(PermanentError):
    """402."""


class PermissionDenied(PermanentError):
    """403, also the storage quota on older deployments."""


class NotFound(PermanentError):
    """404: the file does not exist (on DELETE: it is already gone)."""


class TooLarge(PermanentError):
    """413: over the service's size limit."""


STATUS_ERRORS: dict[int, type[ApiError]] = {
    400: BadRequest,
    401: AuthenticationFailed,
    402: BillingError,
    403: PermissionDenied,
    404: NotFound,
    408: RequestTimeout,
    409: ConflictError,
    413: TooLarge,
    429: RateLimited,
}


def error_class(status: int) -> type[ApiError]:
    """The exception class for an HTTP error status."""
    if status in STATUS_ERRORS:
        return STATUS_ERRORS[status]
    if status >= 500:
        return ServerError
    return PermanentError if 400 <= status < 500 else ServerError


def error_from_response(response: httpx.Response, now: float | None = None) -> ApiError:
    """Translate an error response (any body: nested, edge 413, HTML, empty) into an ApiError."""
    error_type, message, body_request_id = _parse_error_body(response)
    if response.status_code == 401:
        message = f"authentication failed: {message}"
    return error_class(response.status_code)(
        message,
        status=response.status_code,
        error_type=error_type,
        request_id=response.headers.get("request-id") or body_request_id,
        should_retry=_should_retry(response.headers),
        retry_after=retry_after_seconds(response.headers, now),
    )


def error_from_transport(exc: httpx.TransportError) -> ConnectionFailed:
    """Translate an httpx transport failure (no HTTP answer) into ConnectionFailed."""
    kind = type(exc).__name__
    detail = str(exc) or "connection closed"
    return ConnectionFailed(f"{kind}: {detail}", error_type=kind)


def _parse_error_body(response: httpx.Response) -> tuple[str | None, str, str | None]:
    try:
        body: Any = json.loads(response.content)
    except ValueError:
        text = response.content.decode("utf-8", "replace").strip()
        return None, (text[:200] or response.reason_phrase or "no message"), None
    error = body.get("error") if isinstance(body, dict) else None
    if not isinstance(error, dict):
        return None, str(body)[:200], None
    request_id = body.get("request_id")
    return (
        str(error.get("type")) if error.get("type") else None,
        str(error.get("message") or "no message"),
        str(request_id) if request_id else None,
    )


def _should_retry(headers: httpx.Headers) -> bool | None:
    value = headers.get("x-should-retry", "").strip().lower()
    return {"true": True, "false": False}.get(value)


def retry_after_seconds(headers: httpx.Headers, now: float | None = None) -> float | None:
    """The server's requested wait: ``retry-after-ms``, else ``retry-after`` (seconds or date)."""
    millis = headers.get("retry-after-ms")
    if millis is not None:
        try:
            return float(millis) / 1000.0
        except ValueError:
            pass
    value = headers.get("retry-after")
    if value is None:
        return None
    try:
        return float(value)
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return when.timestamp() - (time.time() if now is None else now)
