"""FilesClient: the Files API over one shared, thread-safe ``httpx.Client``.

Every request takes a token from the shared :class:`~syncd.remote.pacer.Pacer`, retries transient
failures with tenacity (:mod:`syncd.remote.retry`), and turns any failure into a :mod:`syncd.errors`
exception exactly once, here. Uploads stream from one open file (an opener that reads under
root's fd, see :mod:`syncd.local.fs`) with a hand-built multipart body so the file is never held
in memory, its sha256 is computed on the way out, and a file that shrinks, grows or is
rewritten in place mid-upload is caught (one replaced by rename is sent as it was opened).
"""

from __future__ import annotations

import email.utils
import hashlib
import math
import os
import random
import re
import secrets
import statistics
import threading
import time
import urllib.parse
from collections import deque
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass, replace
from datetime import datetime
from functools import partial
from pathlib import Path
from typing import Any, BinaryIO, Literal, TypeVar

import httpx
import structlog
from tenacity import RetryCallState, Retrying, retry_if_exception, stop_after_attempt

from syncd import __version__
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
    WorkspaceMismatch,
    error_from_response,
    error_from_transport,
)
from syncd.local.fs import Opener, fstat, open_path
from syncd.model import LocalStat
from syncd.remote.names import filename_problem
from syncd.remote.pacer import Pacer, Pacing, Sleep
from syncd.remote.protocol import (
    API_VERSIONS,
    BETA_VERSION,
    DEFAULT_BASE_URL,
    DEFAULT_REQUESTS_PER_MINUTE,
    FILES_BETA,
    GA_VERSION,
    LIST_LIMIT,
    MAX_UPLOAD_BYTES,
    WORKSPACE_HEADER,
    ApiVersion,
    short_repr,
    valid_id,
)
from syncd.remote.ratelimit import RateLearner
from syncd.remote.retry import RetryWait, is_retryable, retry_delay

SKEW_SAMPLES = 15  # `date` readings the clock skew is the median of
CHUNK = 1024 * 1024

log = structlog.get_logger("syncd.client")
T = TypeVar("T")
RequestObserver = Callable[[str, "int | None", float], None]
# Cursors from the server go into URLs: only these characters, never `/` or `..`.
_CURSOR = re.compile(r"[A-Za-z0-9_=.~-]{1,4096}")


def _timestamp(value: object, what: str) -> datetime:
    """An RFC 3339 timestamp from the service, always timezone-aware."""
    try:
        parsed = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError as exc:
        raise BadAnswer(f"the service sent an unparsable {what} ({short_repr(value)})") from exc
    if parsed.tzinfo is None:
        raise BadAnswer(f"the service sent {what} without a timezone ({short_repr(value)})")
    return parsed


@dataclass(frozen=True)
class RemoteFile:
    """A File object as the service describes it (unknown fields are ignored)."""

    id: str
    filename: str
    mime_type: str
    size_bytes: int
    created_at: datetime
    downloadable: bool = False
    expires_at: datetime | None = None  # GA: when the service drops the bytes (None: never)
    scoped: bool = False  # GA: a session's output (``scope`` set): never ours

    @classmethod
    def from_json(cls, data: object) -> RemoteFile:
        """Parse a File object; raise BadAnswer if a required field is missing or malformed."""
        if not isinstance(data, dict):
            raise BadAnswer(f"the service sent a File that is not an object ({short_repr(data)})")
        try:
            expires = data.get("expires_at")
            size = data["size_bytes"]
            if isinstance(size, bool) or not isinstance(size, int) or size < 0:
                raise ValueError(f"size_bytes {short_repr(size)}")
            return cls(
                id=valid_id(data["id"]),
                filename=str(data["filename"]),
                mime_type=str(data.get("mime_type") or "application/octet-stream"),
                size_bytes=size,
                created_at=_timestamp(data["created_at"], "created_at"),
                downloadable=data.get("downloadable") is True,
                expires_at=None if expires is None else _timestamp(expires, "expires_at"),
                scoped=data.get("scope") is not None,
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise BadAnswer(f"malformed File object from the service: {exc}") from exc


Cursor = tuple[Literal["page", "after_id"], str]


@dataclass(frozen=True)
class FilePage:
    """One page of the listing and where the next one starts (None: this was the last)."""

    data: tuple[RemoteFile, ...]
    next: Cursor | None


def parse_page(body: dict[str, Any], limit: int) -> FilePage:
    """Read a list answer in either version's shape; raise BadAnswer unless it says how it ends.

    GA: ``next_page`` (a cursor, or null on the last page). 2025 beta: ``has_more`` and
    ``last_id``. A page with neither marker proves nothing about the rest, so it is refused.
    """
    data = body.get("data")
    if not isinstance(data, list):
        raise BadAnswer("the listing has no `data` list")
    files = tuple(RemoteFile.from_json(item) for item in data)
    if "next_page" in body:
        after = body["next_page"]
        if after is None:
            return FilePage(files, None)
        if not isinstance(after, str) or not _CURSOR.fullmatch(after):
            raise BadAnswer(f"the listing's next_page is not a page cursor ({short_repr(after)})")
        if body.get("has_more") is False:
            raise BadAnswer("the listing says both next_page and has_more false")
        return FilePage(files, ("page", after))
    more = body.get("has_more")
    if more is False:
        return FilePage(files, None)
    if more is True:
        return FilePage(files, ("after_id", valid_id(body.get("last_id"), "last_id")))
    full = " full" if len(files) >= limit else ""
    raise IncompleteListing(
        f"a{full} page of the listing carries neither next_page nor has_more: the listing is not"
        " proven complete"
    )


class ClockSkew:
    """The service's clock minus ours, learnt from the ``date`` header of answers. Thread-safe.

    ``date`` has a one-second resolution (truncated), so a reading is taken at the middle of its
    second, against our clock when the answer arrived; the median of the last SKEW_SAMPLES
    readings shrugs off one slow answer or a proxy's stale header.
    """

    def __init__(self, clock: Callable[[], float] = time.time, samples: int = SKEW_SAMPLES) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._seen: deque[float] = deque(maxlen=samples)
        self._last: tuple[str, float | None] = ("", None)  # the last header and its time

    def observe(self, date: str | None) -> None:
        """Learn from one answer's ``date`` header (ignored if missing or unparsable)."""
        if not date:
            return
        last = self._last  # answers within one second carry the same header: parse it once
        stamp = last[1] if last[0] == date else _date_stamp(date)
        self._last = (date, stamp)
        if stamp is None:
            return
        offset = stamp + 0.5 - self._clock()
        if math.isfinite(offset):
            with self._lock:
                self._seen.append(offset)

    def seconds(self) -> float:
        """Seconds the service's clock runs ahead of ours (negative: behind); 0.0 unknown."""
        with self._lock:
            seen = list(self._seen)
        return statistics.median(seen) if seen else 0.0


def _date_stamp(date: str) -> float | None:
    """The unix time a ``date`` header names; None if unparsable or without a zone."""
    try:
        parsed = email.utils.parsedate_to_datetime(date)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    return None if parsed.tzinfo is None else parsed.timestamp()  # "-0000": no zone


class WorkspaceGuard:
    """The workspace this client must stay in, learnt from the first answer that names one.

    Once known it is sent with every request (the service refuses a request whose header does
    not match the key's workspace), and an answer from any other workspace raises
    WorkspaceMismatch before its body is used. Thread-safe.
    """

    def __init__(
        self, expected: str | None = None, on_learn: Callable[[str], None] | None = None
    ) -> None:
        self._lock = threading.Lock()
        self.expected = expected
        self.on_learn = on_learn

    def check(self, seen: str) -> None:
        """Compare an answer's workspace header with the expected one (learning it if new)."""
        valid_id(seen, "workspace id")
        with self._lock:
            if self.expected is None:
                if self.on_learn is not None:
                    self.on_learn(seen)  # recorded before anything else is sent
                self.expected = seen
                log.info("workspace", workspace_id=seen)
                return
            expected = self.expected
        if seen != expected:
            raise WorkspaceMismatch(
                f"this journal belongs to workspace {expected}, the key now reaches workspace"
                f" {seen}; point [state] journal elsewhere or run `syncd rebuild`"
            )


@dataclass(frozen=True)
class UploadResult:
    """What an upload stored, and the local state it was read from."""

    file: RemoteFile
    sha256: str
    local: LocalStat
    # An earlier attempt got no answer: the service may hold extra copies the caller must find.
    maybe_orphans: bool = False


class _ApiKeyAuth(httpx.Auth):
    """Adds the key per request, so it never sits in client-wide headers or a repr.

    GA sends ``Authorization: Bearer`` as the official SDK does; the 2025 beta ``x-api-key``.
    """

    def __init__(self, key: str, bearer: bool) -> None:
        self._key = key
        self._bearer = bearer

    def __repr__(self) -> str:
        return "_ApiKeyAuth(key=<hidden>)"

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        if self._bearer:
            request.headers["authorization"] = f"Bearer {self._key}"
        else:
            request.headers["x-api-key"] = self._key
        yield request


def version_headers(api_version: ApiVersion) -> dict[str, str]:
    """The headers every request of ``api_version`` carries (the key aside)."""
    headers = {"anthropic-version": api_version, "user-agent": f"syncd/{__version__}"}
    if api_version == BETA_VERSION:
        headers["anthropic-beta"] = FILES_BETA
    return headers


class _NoCookies(httpx.Cookies):
    """A jar that keeps nothing. The API authenticates by key; a cookie a proxy or the service
    sets is state syncd never sends back, and parsing every answer for one costs a tenth of an
    upload's CPU."""

    def extract_cookies(self, response: httpx.Response) -> None:
        return None


class _Http(httpx.Client):
    """httpx's client without a cookie jar (see :class:`_NoCookies`)."""

    _jar = _NoCookies()

    @property
    def cookies(self) -> httpx.Cookies:
        return self._jar

    @cookies.setter
    def cookies(self, cookies: object) -> None:
        raise AttributeError("syncd's client keeps no cookies")


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
        self.max_upload_bytes = max_upload_bytes
        self.max_retries = max_retries
        self._sleep = sleep
        self._rand = rand
        self._observer = observer
        self._on_retry = on_retry
        self.skew = ClockSkew(clock)
        # Learns the service's limit from every answer (syncd.remote.ratelimit).
        self.rates = RateLearner(self.pacer, wall=lambda: clock() + self.skew.seconds())
        self._http = _Http(
            base_url=self.base_url,
            auth=_ApiKeyAuth(api_key.strip(), bearer=api_version == GA_VERSION),
            headers=version_headers(api_version),
            timeout=httpx.Timeout(timeout, connect=10.0),
            transport=transport,
        )
        # Merged with the base URL once, not parsed again for each of thousands of uploads.
        self._upload_url = self._http.build_request("POST", "/v1/files").url

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
        return replace(result, maybe_orphans=bool(lost))

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
            body = _MultipartFile(
                handle, before.size, remote_name, content_type, self._upload_fields()
            )
            request = self._http.build_request(
                "POST", self._upload_url, content=body, headers=body.headers()
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
    label: str, handle: BinaryIO, before: LocalStat, uploaded: RemoteFile
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


class _MultipartFile:
    """A multipart/form-data body with one ``file`` part, streamed from an open file's fd.

    Hashes exactly ``size`` bytes as they are sent; a file that ends early aborts the request
    (the server must never store a truncated upload), one that grows is cut at ``size`` and
    caught afterwards by the stat check.
    """

    def __init__(
        self, handle: BinaryIO, size: int, name: str, content_type: str,
        fields: dict[str, str] | None = None,
    ) -> None:
        self._handle = handle
        self._size = size
        self._boundary = f"syncd-{secrets.token_hex(16)}"
        extra = "".join(
            f"--{self._boundary}\r\n"
            f'Content-Disposition: form-data; name="{key}"\r\n\r\n{value}\r\n'
            for key, value in (fields or {}).items()
        )
        self._head = (
            extra + f"--{self._boundary}\r\n"
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
        # The head goes with the first chunk and the tail with the last: a small file is one
        # write to the socket, not three.
        pending = self._head
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
            if remaining > 0:
                yield pending + chunk if pending else chunk
                pending = b""
            else:
                pending += chunk
        yield pending + self._tail
