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
    │       └── WorkspaceMismatch   ...or the key now reaches another workspace
    ├── SafetyStop                  a scan would delete too much; nothing was deleted
    └── ApiError                    the Files API (or the way to it) said no
        ├── BadAnswer               a success answer syncd cannot trust (malformed, contradictory)
        │   └── IncompleteListing   a listing that did not end with an explicit end marker
        ├── TransientError
        │   ├── ConnectionFailed    no HTTP answer: connect/read/write error, timeout, drop
        │   ├── RequestTimeout      408
        │   ├── ConflictError       409
        │   ├── RateLimited         429 (carries retry_after)
        │   └── ServerError         5xx, 529 overloaded
        └── PermanentError
            ├── BadRequest          400 (bad name, bad limit, ...)
            │   └── NotDownloadable 400 file_not_downloadable
            ├── AuthenticationFailed 401
            ├── BillingError        402
            ├── PermissionDenied    403
            ├── QuotaExceeded       400 storage_quota_exceeded, 403 over quota (2025):
            │                       the organization's storage is full, not one file's fault
            ├── NotFound            404
            │   └── FileExpired     404 file_expired: the copy's lifetime ended
            └── TooLarge            413

``error.details.error_code`` (GA) picks the subclass where it names a known cause; an unknown
code is kept in ``error_code`` and the bare status decides the class.
"""

from __future__ import annotations

import email.utils
import json
import re
import time
from typing import Any

import httpx

_TOKEN = re.compile(r"[A-Za-z0-9_.:-]{1,128}")


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


class WorkspaceMismatch(JournalMismatchError):
    """The service answered from another workspace than the one this journal belongs to."""


class SafetyStop(SyncdError):
    """A scan would delete more than allowed; nothing was deleted remotely."""


class RootMoved(SafetyStop):
    """The directory at the root's path is not the one first synced (checked on the fd about to
    be read under): nothing under it is read; the worker leaves the path for later."""


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
        error_code: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.error_type = error_type
        self.error_code = error_code
        self.request_id = request_id
        self.should_retry = should_retry
        self.retry_after = retry_after

    def __str__(self) -> str:
        parts = [str(self.status) if self.status is not None else "no response"]
        if self.error_type:
            parts.append(self.error_type)
        if self.error_code:
            parts.append(f"[{self.error_code}]")
        text = f"{' '.join(parts)}: {self.message}"
        return f"{text} (request-id {self.request_id})" if self.request_id else text


class BadAnswer(ApiError):
    """A success status whose body cannot be trusted: malformed, contradictory or unsafe."""


class IncompleteListing(BadAnswer):
    """A listing that is not proven complete; nothing may be concluded from what it lacks."""


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


class NotDownloadable(BadRequest):
    """400 file_not_downloadable: uploaded files cannot be downloaded."""


class PermissionDenied(PermanentError):
    """403."""


class QuotaExceeded(PermanentError):
    """The organization's storage is full: every upload fails until files are deleted."""


class NotFound(PermanentError):
    """404: the file does not exist (on DELETE: it is already gone)."""


class FileExpired(NotFound):
    """404 file_expired: the copy reached its ``expires_at``; its bytes are gone."""


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


CODE_ERRORS: dict[str, type[ApiError]] = {
    "storage_quota_exceeded": QuotaExceeded,
    "file_expired": FileExpired,
    "file_not_downloadable": NotDownloadable,
}


def classify(status: int, error_code: str | None, message: str) -> type[ApiError]:
    """The class for an error answer: a known ``error_code`` first, then the status."""
    if error_code in CODE_ERRORS:
        return CODE_ERRORS[error_code]
    if status == 403 and "quota" in message.lower():
        return QuotaExceeded  # the 2025 beta's over-quota answer carries no code
    return error_class(status)


def error_from_response(response: httpx.Response, now: float | None = None) -> ApiError:
    """Translate an error response (any body: nested, edge 413, HTML, empty) into an ApiError."""
    error_type, message, body_request_id, code = _parse_error_body(response)
    if response.status_code == 401:
        message = f"authentication failed: {message}"
    return classify(response.status_code, code, message)(
        message,
        status=response.status_code,
        error_type=error_type,
        request_id=response.headers.get("request-id") or body_request_id,
        should_retry=_should_retry(response.headers),
        retry_after=retry_after_seconds(response.headers, now),
        error_code=code,
    )


def error_from_transport(exc: httpx.TransportError) -> ConnectionFailed:
    """Translate an httpx transport failure (no HTTP answer) into ConnectionFailed."""
    kind = type(exc).__name__
    detail = str(exc) or "connection closed"
    return ConnectionFailed(f"{kind}: {detail}", error_type=kind)


def _parse_error_body(
    response: httpx.Response,
) -> tuple[str | None, str, str | None, str | None]:
    """(type, message, request id, error code) from any body; server text is cut short."""
    try:
        body: Any = json.loads(response.content)
    except ValueError:
        text = response.content.decode("utf-8", "replace").strip()
        return None, (text[:200] or response.reason_phrase or "no message"), None, None
    error = body.get("error") if isinstance(body, dict) else None
    if not isinstance(error, dict):
        return None, str(body)[:200], None, None
    request_id = body.get("request_id")
    details = error.get("details")
    code = details.get("error_code") if isinstance(details, dict) else None
    return (
        _token(error.get("type")),
        str(error.get("message") or "no message")[:500],
        _token(request_id),
        _token(code),
    )


def _token(value: Any) -> str | None:
    """A short identifier from the server (type, code, request id), or None if it is not one."""
    if isinstance(value, str) and _TOKEN.fullmatch(value):
        return value
    return None


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
