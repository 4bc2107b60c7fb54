"""FilesClient: the Files API over one shared, thread-safe ``httpx.Client``.

Every request takes a token from the shared :class:`~syncd.remote.pacer.Pacer`, retries transient
failures with tenacity (:mod:`syncd.remote.retry`), and turns any failure into a :mod:`syncd.errors`
exception exactly once, here. Uploads stream from one open file (an opener that reads under
root's fd, see :mod:`syncd.local.fs`) with a hand-built multipart body
(:mod:`syncd.remote.multipart`) so the file is never held in memory, its sha256 is computed on
the way out, and a file that shrinks, grows or is rewritten in place mid-upload is caught (one
replaced by rename is sent as it was opened). Answers become values in :mod:`syncd.remote.files`.
"""

from __future__ import annotations

import os
import random
import secrets
import time
import urllib.parse
from collections.abc import Callable, Generator, Iterator
from dataclasses import replace
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

import httpx
import structlog
from tenacity import RetryCallState, Retrying, retry_if_exception, stop_after_attempt

from syncd.errors import (
    ApiError,
    BadAnswer,
    BadRequest,
    ConfigError,
    ConnectionFailed,
    FileChangedError,
    IncompleteListing,
    LocalFileError,
    NotFound,
    RateLimited,
    TooLarge,
    error_from_response,
    error_from_transport,
)
from syncd.local.fdfile import FdFile
from syncd.local.fs import Opener, fstat, open_path
from syncd.model import LocalStat
from syncd.remote.clockskew import ClockSkew
from syncd.remote.files import Cursor, FilePage, RemoteFile, UploadResult, parse_page
from syncd.remote.http import ApiKeyAuth, HttpClient, version_headers
from syncd.remote.multipart import CHUNK, MultipartFile
from syncd.remote.names import filename_problem
from syncd.remote.pacer import Pacer, Pacing, Sleep
from syncd.remote.protocol import (
    API_VERSIONS,
    DEFAULT_BASE_URL,
    DEFAULT_REQUESTS_PER_MINUTE,
    GA_VERSION,
    LIST_LIMIT,
    MAX_UPLOAD_BYTES,
    WORKSPACE_HEADER,
    ApiVersion,
    valid_id,
)
from syncd.remote.ratelimit import RateLearner
from syncd.remote.retry import RetryWait, is_retryable, retry_delay
from syncd.remote.workspace import WorkspaceGuard

# The client's signatures name these; callers may import them from here.
__all__ = [
    "Cursor", "FilePage", "FilesClient", "RemoteFile", "RequestObserver", "UploadResult",
    "WorkspaceGuard",
]

log = structlog.get_logger("syncd.client")
T = TypeVar("T")
RequestObserver = Callable[[str, "int | None", float], None]


class FilesClient:
    """The Files API, paced, retried and with errors translated. Safe to share between threads."""

    def __init__(
        self,
        api_key: str,
        base_url: str = DEFAULT_BASE_URL,
        *,
        api_version: ApiVersion = GA_VERSION,
        workspace: WorkspaceGuard | None = None,
        expires_in_seconds: int | None = None,
        pacer: Pacing | None = None,
        owns_pacer: bool = False,
        transport: httpx.BaseTransport | None = None,
        max_retries: int = 4,
        timeout: float = 60.0,
        sleep: Sleep = time.sleep,
        rand: Callable[[], float] = random.random,
        max_upload_bytes: int = MAX_UPLOAD_BYTES,
        observer: RequestObserver | None = None,
        on_retry: Callable[[float], None] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if not api_key or not api_key.strip():
            raise ConfigError(
                "no API key: set ANTHROPIC_API_KEY, or [remote] api_key_file in the config, "
                "or the systemd credential anthropic_api_key"
            )
        if api_version not in API_VERSIONS:
            raise ConfigError(
                f"unknown api_version {api_version!r}; use one of {', '.join(API_VERSIONS)}"
            )
        self.base_url = base_url.rstrip("/")
        self.api_version = api_version
        self.workspace = workspace or WorkspaceGuard()
        self.expires_in_seconds = expires_in_seconds
        self.pacer = pacer or Pacer(requests_per_minute=DEFAULT_REQUESTS_PER_MINUTE, burst=1)
        self._owns_pacer = owns_pacer  # close() closes it (a shared pacer's Redis connections)
        self.max_upload_bytes = max_upload_bytes
        self.max_retries = max_retries
        self._sleep = sleep
        self._rand = rand
        self._observer = observer
        self._on_retry = on_retry
        self.skew = ClockSkew(clock)
        # Learns the service's limit from every answer (syncd.remote.ratelimit).
        self.rates = RateLearner(self.pacer, wall=lambda: clock() + self.skew.seconds())
        self._http = HttpClient(
            base_url=self.base_url,
            auth=ApiKeyAuth(api_key.strip(), bearer=api_version == GA_VERSION),
            headers=version_headers(api_version),
            timeout=httpx.Timeout(timeout, connect=10.0),
            transport=transport,
        )
        # The upload's URL, headers and timeouts merged once (build_request merges them again for
        # each of thousands of uploads); each upload adds only its body's two headers.
        template = self._http.build_request("POST", "/v1/files")
        self._upload_url = template.url
        self._upload_headers = [
            (k, v) for k, v in template.headers.multi_items() if k not in ("content-length",)
        ]
        self._upload_extensions = template.extensions

    def __repr__(self) -> str:
        return f"FilesClient(base_url={self.base_url!r})"

    def __enter__(self) -> FilesClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the connection pool, and the pacer when it was made for this client alone."""
        self._http.close()
        if self._owns_pacer:
            self.pacer.close()

    # --- operations -----------------------------------------------------------------------

    def upload(
        self,
        source: Path | Opener,
        remote_name: str,
        content_type: str,
        expected: LocalStat | None = None,
    ) -> UploadResult:
        """Stream a local file to the service as ``remote_name``; return its File and sha256.

        ``source`` is an opener, called once per attempt, returning the file open for reading
        (the daemon passes a :class:`syncd.local.fs.FileSource`, which never leaves root), or a
        plain path of the caller's own (opened non-blocking, regular files only). An attempt stats,
        checks, hashes and sends only the one file it opened, never the path again.

        Raises LocalFileError if the file cannot be read, FileChangedError if it changed while
        it was sent (``exc.uploaded`` then names the superseded copy, which the caller owns) or,
        given ``expected`` (the version an upload intent names), before an attempt sent it.
        """
        problem = filename_problem(remote_name)
        if problem:
            raise BadRequest(problem, error_type="invalid_request_error")
        lost: list[ConnectionFailed] = []
        open_source: Opener = partial(open_path, source) if isinstance(source, Path) else source
        label = str(source) if isinstance(source, Path) else remote_name

        def attempt() -> UploadResult:
            try:
                return self._upload_once(open_source, label, remote_name, content_type, expected)
            except ConnectionFailed as exc:
                lost.append(exc)
                raise

        try:
            result = self._retrying("upload", attempt)
        except (ApiError, LocalFileError) as exc:
            # A later attempt's error (a 500, the file gone) says nothing of the lost ones.
            exc.maybe_stored = exc.maybe_stored or bool(lost)
            raise
        return replace(result, maybe_orphans=True) if lost else result

    def clock_skew(self) -> float:
        """Seconds the service's clock runs ahead of ours (negative: behind), from ``date``."""
        return self.skew.seconds()

    def budget_per_minute(self) -> float:
        """The request budget: the limit the service announced (less the margin) or the
        configured rate, not the rate a 429 has backed off to for a while."""
        return self.rates.ceiling()

    def list_page(self, limit: int = LIST_LIMIT, cursor: Cursor | None = None) -> FilePage:
        """One page of the listing, from ``cursor`` (a previous page's ``next``)."""
        params: dict[str, str | int] = {"limit": limit}
        if cursor is not None:
            params[cursor[0]] = cursor[1]
        body = self._retrying("list", lambda: self._json("list", "GET", "/v1/files", params))
        return parse_page(body, limit)

    def iter_files(
        self, limit: int = LIST_LIMIT, max_pages: int | None = None,
        on_page: Callable[[int], None] | None = None,
    ) -> Iterator[RemoteFile]:
        """Every file in the workspace, page by page; never assumes an order.

        The iterator ends only after a page that says it is the last one: a listing consumed
        to its end is complete. Anything else (a page in neither shape, a cursor that repeats,
        more than ``max_pages`` pages) raises, so no caller can act on part of a listing.
        ``on_page`` is told the number of each page read.
        """
        for page in self.iter_pages(limit, max_pages, on_page):
            yield from page.data

    def iter_pages(
        self, limit: int = LIST_LIMIT, max_pages: int | None = None,
        on_page: Callable[[int], None] | None = None,
    ) -> Generator[FilePage, None, None]:
        """The listing's pages in the order the service sends them, on the rules of
        :meth:`iter_files` (it ends only after the last page; anything else raises). A caller
        that stops early holds part of a listing: evidence of what it shows, never of what it
        lacks."""
        cursor: Cursor | None = None
        seen: set[Cursor] = set()
        pages = 0
        while True:
            page = self.list_page(limit, cursor)
            pages += 1
            if on_page is not None:
                on_page(pages)
            yield page
            if page.next is None:
                return
            if page.next in seen:
                raise IncompleteListing(f"the listing repeated its cursor {page.next[1][:40]}")
            if max_pages is not None and pages >= max_pages:
                raise IncompleteListing(
                    f"the listing did not end within {max_pages} pages (the cap for this pass)"
                )
            seen.add(page.next)
            cursor = page.next

    def get(self, file_id: str) -> RemoteFile:
        """The metadata of one file."""
        url = _file_url(file_id)
        body = self._retrying("get", lambda: self._json("get", "GET", url))
        return RemoteFile.from_json(body)

    def delete(self, file_id: str) -> bool:
        """Delete a file; False if it was already gone (404), which is not an error."""
        url = _file_url(file_id)
        try:
            self._retrying("delete", lambda: self._json("delete", "DELETE", url))
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
        return _json_object(op, self._send(op, request))

    def _upload_fields(self) -> dict[str, str]:
        if self.expires_in_seconds is None:
            return {}
        return {"expires_in_seconds": str(self.expires_in_seconds)}

    def _upload_once(
        self,
        open_source: Opener,
        label: str,
        remote_name: str,
        content_type: str,
        expected: LocalStat | None,
    ) -> UploadResult:
        handle = open_source()
        try:
            before = fstat(handle)
            if expected is not None and before != expected:
                # Every copy an attempt may leave must match its intent (same size), or
                # reconcile could never find it after a lost response.
                raise FileChangedError(f"{label} changed before it was sent")
            if before.size > self.max_upload_bytes:
                raise TooLarge(
                    f"{before.size} bytes is over the {self.max_upload_bytes}-byte upload limit",
                    error_type="request_too_large",
                )
            body = MultipartFile(
                handle, before.size, remote_name, content_type, self._upload_fields()
            )
            request = httpx.Request(
                "POST", self._upload_url, content=body,
                headers=[*self._upload_headers, *body.headers().items()],
                extensions=dict(self._upload_extensions),
            )
            response = self._send("upload", request)
            try:
                uploaded = RemoteFile.from_json(_json_object("upload", response))
            except BadAnswer as exc:
                exc.maybe_stored = True  # a success status: the copy was likely stored
                raise
            _check_unchanged(label, handle, before, uploaded)
        finally:
            handle.close()
        return UploadResult(file=uploaded, sha256=body.sha256(), local=before)

    def _download_once(self, file_id: str, dest: Path) -> int:
        request = self._http.build_request("GET", _file_url(file_id) + "/content")
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
        if self.workspace.expected is not None:
            request.headers[WORKSPACE_HEADER] = self.workspace.expected
        self.pacer.acquire()
        started = time.monotonic()
        try:
            response = self._http.send(request, stream=stream)
        except httpx.TransportError as exc:
            self._observe(op, None, started)
            raise error_from_transport(exc) from exc
        self._observe(op, response.status_code, started)
        self.skew.observe(response.headers.get("date"))
        self.rates.observe(response.status_code, response.headers)
        log.debug(
            "request",
            op=op,
            status=response.status_code,
            request_id=response.headers.get("request-id"),
            duration_ms=round((time.monotonic() - started) * 1000, 1),
        )
        seen = response.headers.get(WORKSPACE_HEADER)
        if seen is not None:
            try:
                self.workspace.check(seen)
            except BaseException:
                response.close()
                raise
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
        """``attempt()``, retried as :mod:`syncd.remote.retry` says. The first try runs bare: most
        requests succeed at once, and tenacity's bookkeeping then costs more than the request's
        own Python work. A retryable failure hands over to tenacity, which is shown that first
        failure as its attempt 1, so waits, logs and the attempt count are what they were."""
        try:
            return attempt()
        except Exception as exc:
            if self.max_retries < 1 or not is_retryable(exc):
                raise
            first: Exception | None = exc

        def again() -> T:
            nonlocal first
            if first is not None:
                failed, first = first, None
                raise failed
            return attempt()

        return self._tenacity(op, again)

    def _tenacity(self, op: str, attempt: Callable[[], T]) -> T:
        retrying = Retrying(
            stop=stop_after_attempt(self.max_retries + 1),
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


def _json_object(op: str, response: httpx.Response) -> dict[str, Any]:
    """The answer's JSON object; BadAnswer for anything else."""
    try:
        body = response.json()
    except ValueError as exc:
        raise BadAnswer(f"{op}: answer {response.status_code} is not JSON") from exc
    if not isinstance(body, dict):
        raise BadAnswer(f"{op}: answer is a JSON {type(body).__name__}, not an object")
    return body


def _file_url(file_id: str) -> str:
    """The URL of one file; an id that is not a plain token never reaches a URL."""
    return "/v1/files/" + urllib.parse.quote(valid_id(file_id), safe="")


def _check_unchanged(
    label: str, handle: FdFile, before: LocalStat, uploaded: RemoteFile
) -> None:
    """Raise FileChangedError if the file read (its fd, not its path) no longer matches.

    A rewrite in place shows in the fd's stat. A file replaced by rename does not, and need not:
    the copy sent is the old version whole, and the new one is a change of its own.
    """
    try:
        after: LocalStat | None = fstat(handle)
    except OSError:
        after = None
    if after != before or uploaded.size_bytes != before.size:
        raise FileChangedError(f"{label} changed while it was uploaded", uploaded_id=uploaded.id)
