"""FilesClient: the Files API over one shared, thread-safe ``httpx.Client``.

Every request takes a token from the shared :class:`~syncd.pacer.Pacer`, retries transient
failures with tenacity (:mod:`syncd.retry`), and turns any failure into a :mod:`syncd.errors`
exception exactly once, here. Uploads stream from disk with a hand-built multipart body so the
file is never held in memory, its sha256 is computed on the way out, and a file that shrinks,
grows or is replaced mid-upload is caught.
"""

from __future__ import annotations

import hashlib
import os
import random
import secrets
import time
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

import httpx
import structlog
from tenacity import RetryCallState, Retrying, retry_if_exception, stop_after_attempt

from syncd import __version__
from syncd.errors import (
    ApiError,
    BadRequest,
    ConfigError,
    ConnectionFailed,
    FileChangedError,
    LocalFileError,
    NotFound,
    RateLimited,
    TooLarge,
    error_from_response,
    error_from_transport,
)
from syncd.localstat import LocalStat
from syncd.names import filename_problem
from syncd.pacer import Pacer, Sleep
from syncd.retry import RetryWait, is_retryable, retry_delay

DEFAULT_BASE_URL = "https://api.anthropic.com"
API_VERSION = "2023-06-01"
FILES_BETA = "files-api-2025-04-14"
MAX_UPLOAD_BYTES = 500 * 10**6  # the contract leaves 10^6 vs 2^20 open: take the smaller
LIST_LIMIT = 1000
CHUNK = 1024 * 1024

log = structlog.get_logger("syncd.client")
T = TypeVar("T")
RequestObserver = Callable[[str, "int | None", float], None]


@dataclass(frozen=True)
class RemoteFile:
    """A File object as the service describes it (unknown fields are ignored)."""

    id: str
    filename: str
    mime_type: str
    size_bytes: int
    created_at: datetime
    downloadable: bool = False

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> RemoteFile:
        """Parse a File object; raise ApiError if a required field is missing or malformed."""
        try:
            return cls(
                id=str(data["id"]),
                filename=str(data["filename"]),
                mime_type=str(data.get("mime_type") or "application/octet-stream"),
                size_bytes=int(data["size_bytes"]),
                created_at=datetime.fromisoformat(str(data["created_at"]).replace("Z", "+00:00")),
                downloadable=bool(data.get("downloadable", False)),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ApiError(f"malformed File object from the service: {exc}") from exc


@dataclass(frozen=True)
class FilePage:
    """One page of the listing."""

    data: tuple[RemoteFile, ...]
    first_id: str | None
    last_id: str | None
    has_more: bool


@dataclass(frozen=True)
class UploadResult:
    """What an upload stored, and the local state it was read from."""

    file: RemoteFile
    sha256: str
    local: LocalStat
    # An earlier attempt got no answer: the service may hold extra copies the caller must find.
    maybe_orphans: bool = False


class _ApiKeyAuth(httpx.Auth):
    """Adds the key per request, so it never sits in client-wide headers or a repr."""

    def __init__(self, key: str) -> None:
        self._key = key

    def __repr__(self) -> str:
        return "_ApiKeyAuth(key=<hidden>)"

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers["x-api-key"] = self._key
        yield request


class FilesClient:
    """The Files API, paced, retried and with errors translated. Safe to share between threads."""

    def __init__(
        self,
        api_key: str,
        base_url: str = DEFAULT_BASE_URL,
        *,
        pacer: Pacer | None = None,
        transport: httpx.BaseTransport | None = None,
        max_retries: int = 4,
        timeout: float = 60.0,
        sleep: Sleep = time.sleep,
        rand: Callable[[], float] = random.random,
        max_upload_bytes: int = MAX_UPLOAD_BYTES,
        observer: RequestObserver | None = None,
        on_retry: Callable[[float], None] | None = None,
    ) -> None:
        if not api_key or not api_key.strip():
            raise ConfigError(
                "no API key: set ANTHROPIC_API_KEY, or [remote] api_key_file in the config, "
                "or the systemd credential anthropic_api_key"
            )
        self.base_url = base_url.rstrip("/")
        self.pacer = pacer or Pacer(requests_per_minute=90, burst=1)
        self.max_upload_bytes = max_upload_bytes
        self._max_retries = max_retries
        self._sleep = sleep
        self._rand = rand
        self._observer = observer
        self._on_retry = on_retry
        self._http = httpx.Client(
            base_url=self.base_url,
            auth=_ApiKeyAuth(api_key.strip()),
            headers={
                "anthropic-version": API_VERSION,
                "anthropic-beta": FILES_BETA,
                "user-agent": f"syncd/{__version__}",
            },
            timeout=httpx.Timeout(timeout, connect=10.0),
            transport=transport,
        )

    def __repr__(self) -> str:
        return f"FilesClient(base_url={self.base_url!r})"

    def __enter__(self) -> FilesClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the connection pool."""
        self._http.close()

    # --- operations -----------------------------------------------------------------------

    def upload(
        self, path: Path, remote_name: str, content_type: str, expected: LocalStat | None = None
    ) -> UploadResult:
        """Stream ``path`` to the service as ``remote_name``; return its File and sha256.

        Raises LocalFileError if the file cannot be read, FileChangedError if it changed while
        it was sent (``exc.uploaded`` then names the superseded copy, which the caller owns) or,
        given ``expected`` (the version an upload intent names), before an attempt sent it.
        """
        problem = filename_problem(remote_name)
        if problem:
            raise BadRequest(problem, error_type="invalid_request_error")
        lost: list[ConnectionFailed] = []

        def attempt() -> UploadResult:
            try:
                return self._upload_once(path, remote_name, content_type, expected)
            except ConnectionFailed as exc:
                lost.append(exc)
                raise

        try:
            result = self._retrying("upload", attempt)
        except (ApiError, LocalFileError) as exc:
            # A later attempt's error (a 500, the file gone) says nothing of the lost ones.
            exc.maybe_stored = bool(lost)
            raise
        return replace(result, maybe_orphans=bool(lost))

    def list_page(self, limit: int = LIST_LIMIT, after_id: str | None = None) -> FilePage:
        """One page of the listing, after ``after_id``."""
        params: dict[str, str | int] = {"limit": limit}
        if after_id:
            params["after_id"] = after_id
        body = self._retrying("list", lambda: self._json("list", "GET", "/v1/files", params))
        try:
            return FilePage(
                data=tuple(RemoteFile.from_json(item) for item in body["data"]),
                first_id=body.get("first_id"),
                last_id=body.get("last_id"),
                has_more=bool(body.get("has_more", False)),
            )
        except (KeyError, TypeError) as exc:
            raise ApiError(f"malformed file list from the service: {exc}") from exc

    def iter_files(self, limit: int = LIST_LIMIT) -> Iterator[RemoteFile]:
        """Every file in the workspace, page by page; never assumes an order."""
        after: str | None = None
        seen: set[str] = set()
        while True:
            page = self.list_page(limit, after)
            yield from page.data
            if not page.has_more or not page.data or not page.last_id:
                return
            if page.last_id in seen:
                raise ApiError(f"the listing repeated cursor {page.last_id}; stopping")
            seen.add(page.last_id)
            after = page.last_id

    def get(self, file_id: str) -> RemoteFile:
        """The metadata of one file."""
        body = self._retrying("get", lambda: self._json("get", "GET", f"/v1/files/{file_id}"))
        return RemoteFile.from_json(body)

    def delete(self, file_id: str) -> bool:
        """Delete a file; False if it was already gone (404), which is not an error."""
        try:
            self._retrying("delete", lambda: self._json("delete", "DELETE", f"/v1/files/{file_id}"))
        except NotFound:
            return False
        return True

    def download(self, file_id: str, dest: Path) -> int:
        """Stream a downloadable file's content to ``dest`` (atomically); return its size."""
        return self._retrying("download", lambda: self._download_once(file_id, dest))

    # --- one attempt each -----------------------------------------------------------------

    def _json(
        self, op: str, method: str, url: str, params: dict[str, str | int] | None = None
    ) -> dict[str, Any]:
        request = self._http.build_request(method, url, params=params)
        response = self._send(op, request)
        try:
            body = response.json()
        except ValueError as exc:
            raise ApiError(f"{op}: answer {response.status_code} is not JSON") from exc
        if not isinstance(body, dict):
            raise ApiError(f"{op}: answer is a JSON {type(body).__name__}, not an object")
        return body

    def _upload_once(
        self, path: Path, remote_name: str, content_type: str, expected: LocalStat | None
    ) -> UploadResult:
        try:
            handle = open(path, "rb")  # noqa: SIM115 - closed in the finally below
        except OSError as exc:
            raise LocalFileError(f"cannot read {path}: {exc.strerror}") from exc
        try:
            before = LocalStat.from_stat(os.fstat(handle.fileno()))
            if expected is not None and before != expected:
                # Every copy an attempt may leave must match its intent (same size), or
                # reconcile could never find it after a lost response.
                raise FileChangedError(f"{path} changed before it was sent")
            if before.size > self.max_upload_bytes:
                raise TooLarge(
                    f"{before.size} bytes is over the {self.max_upload_bytes}-byte upload limit",
                    error_type="request_too_large",
                )
            body = _MultipartFile(handle, before.size, remote_name, content_type)
            request = self._http.build_request(
                "POST", "/v1/files", content=body, headers=body.headers()
            )
            response = self._send("upload", request)
            uploaded = RemoteFile.from_json(response.json())
        finally:
            handle.close()
        _check_unchanged(path, before, uploaded)
        return UploadResult(file=uploaded, sha256=body.sha256(), local=before)

    def _download_once(self, file_id: str, dest: Path) -> int:
        request = self._http.build_request("GET", f"/v1/files/{file_id}/content")
        tmp = dest.with_name(f".{dest.name}.syncd-{secrets.token_hex(4)}")
        try:
            response = self._send("download", request, stream=True)
            try:
                with open(tmp, "wb") as out:
                    for chunk in response.iter_bytes(CHUNK):
                        out.write(chunk)
            except httpx.TransportError as exc:
                raise error_from_transport(exc) from exc
            finally:
                response.close()
            os.replace(tmp, dest)
        finally:
            tmp.unlink(missing_ok=True)
        return dest.stat().st_size

    def _send(self, op: str, request: httpx.Request, stream: bool = False) -> httpx.Response:
        """Pace, send, log and translate one request; return a successful response."""
        self.pacer.acquire()
        started = time.monotonic()
        try:
            response = self._http.send(request, stream=stream)
        except httpx.TransportError as exc:
            self._observe(op, None, started)
            raise error_from_transport(exc) from exc
        self._observe(op, response.status_code, started)
        log.debug(
            "request",
            op=op,
            status=response.status_code,
            request_id=response.headers.get("request-id"),
            duration_ms=round((time.monotonic() - started) * 1000, 1),
        )
        if response.is_success:
            return response
        if stream:
            response.read()
            response.close()
        error = error_from_response(response)
        if isinstance(error, RateLimited):
            self.pacer.pause_for(retry_delay(error, 1, self._rand))
        raise error

    def _observe(self, op: str, status: int | None, started: float) -> None:
        if self._observer is not None:
            self._observer(op, status, time.monotonic() - started)

    def _retrying(self, op: str, attempt: Callable[[], T]) -> T:
        retrying = Retrying(
            stop=stop_after_attempt(self._max_retries + 1),
            wait=RetryWait(self._rand),
            retry=retry_if_exception(is_retryable),
            sleep=self._sleep,
            reraise=True,
            before_sleep=lambda state: self._before_retry(op, state),
        )
        return retrying(attempt)

    def _before_retry(self, op: str, state: RetryCallState) -> None:
        log.info(
            "retrying",
            op=op,
            attempt=state.attempt_number,
            wait_s=round(state.upcoming_sleep, 3),
            error=str(state.outcome.exception()) if state.outcome else None,
        )
        if self._on_retry is not None:
            self._on_retry(state.upcoming_sleep)


def _check_unchanged(path: Path, before: LocalStat, uploaded: RemoteFile) -> None:
    """Raise FileChangedError if ``path`` no longer matches what was read."""
    try:
        after = LocalStat.from_stat(os.stat(path))  # as open() saw it: through a symlink
    except OSError:
        after = None
    if after != before or uploaded.size_bytes != before.size:
        raise FileChangedError(f"{path} changed while it was uploaded", uploaded_id=uploaded.id)


class _MultipartFile:
    """A multipart/form-data body with one ``file`` part, streamed from an open file.

    Hashes exactly ``size`` bytes as they are sent; a file that ends early aborts the request
    (the server must never store a truncated upload), one that grows is cut at ``size`` and
    caught afterwards by the stat check.
    """

    def __init__(self, handle: Any, size: int, name: str, content_type: str) -> None:
        self._handle = handle
        self._size = size
        self._boundary = f"syncd-{secrets.token_hex(16)}"
        self._head = (
            f"--{self._boundary}\r\n"
            f'Content-Disposition: form-data; name="file"; filename="{name}"\r\n'
            f"Content-Type: {content_type}\r\n\r\n"
        ).encode()
        self._tail = f"\r\n--{self._boundary}--\r\n".encode()
        self._hash: Any = None

    def headers(self) -> dict[str, str]:
        """Content-Type and Content-Length for the request."""
        return {
            "content-type": f"multipart/form-data; boundary={self._boundary}",
            "content-length": str(len(self._head) + self._size + len(self._tail)),
        }

    def sha256(self) -> str:
        """The hex digest of the bytes sent."""
        return str(self._hash.hexdigest())

    def __iter__(self) -> Iterator[bytes]:
        self._hash = hashlib.sha256()
        self._handle.seek(0)
        yield self._head
        remaining = self._size
        while remaining > 0:
            try:
                chunk = self._handle.read(min(CHUNK, remaining))
            except OSError as exc:
                raise LocalFileError(f"read failed mid-upload: {exc.strerror}") from exc
            if not chunk:
                raise FileChangedError("the file shrank while it was uploaded")
            self._hash.update(chunk)
            remaining -= len(chunk)
            yield chunk
        yield self._tail
