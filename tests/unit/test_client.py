"""FilesClient behaviour that needs exact control of answers: a plain handler as transport."""

from __future__ import annotations

import json
import threading
import traceback
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from structlog.testing import capture_logs

from syncd import errors
from syncd.remote.client import FilesClient
from syncd.remote.pacer import Pacer
from tests.conftest import Recorder

KEY = "sk-ant-api03-SECRET-never-print-me"
FILE = {
    "id": "file_011CNha8iCJcU1wXNR6q4V8w",
    "type": "file",
    "filename": "a.txt",
    "mime_type": "text/plain",
    "size_bytes": 5,
    "created_at": "2025-04-15T18:37:24.100435Z",
    "downloadable": False,
    "scope": {"type": "workspace"},  # a newer field: must be ignored
}


def err(status: int, kind: str, headers: dict[str, str] | None = None) -> httpx.Response:
    body = {"type": "error", "error": {"type": kind, "message": kind}, "request_id": "req_1"}
    return httpx.Response(status, json=body, headers=headers or {})


def client_with(
    handler: Callable[[httpx.Request], httpx.Response],
    recorder: Recorder,
    **kwargs: object,
) -> FilesClient:
    pacer = kwargs.pop("pacer", None) or Pacer(
        6000, burst=100, clock=recorder.clock, sleep=recorder.sleep
    )
    return FilesClient(
        KEY,
        "https://files.test",
        pacer=pacer,  # type: ignore[arg-type]
        transport=httpx.MockTransport(handler),
        sleep=recorder.sleep,
        rand=lambda: 0.0,
        **kwargs,  # type: ignore[arg-type]
    )


def scripted(*responses: httpx.Response) -> tuple[Callable[[httpx.Request], httpx.Response], list]:
    """A handler answering with `responses` in turn, recording the requests it saw."""
    seen: list[httpx.Request] = []
    queue = list(responses)

    def handler(request: httpx.Request) -> httpx.Response:
        request.read()
        seen.append(request)
        return queue.pop(0)

    return handler, seen


def test_missing_key_fails_before_any_request(recorder: Recorder) -> None:
    """An empty key is a ConfigError naming ANTHROPIC_API_KEY, and nothing is sent."""
    handler, seen = scripted()
    with pytest.raises(errors.ConfigError, match="ANTHROPIC_API_KEY"):
        FilesClient("  ", transport=httpx.MockTransport(handler))
    assert seen == []


def test_unknown_fields_are_ignored(recorder: Recorder) -> None:
    """A File object with fields this client does not know still parses."""
    handler, _ = scripted(httpx.Response(200, json=FILE))
    remote = client_with(handler, recorder).get(FILE["id"])
    assert (remote.id, remote.size_bytes, remote.created_at.microsecond) == (FILE["id"], 5, 100435)


def test_cookies_the_server_sets_are_never_kept_or_sent(recorder: Recorder) -> None:
    """A Set-Cookie answer (a proxy's, the service's) leaves no state: the next request
    carries no Cookie header."""
    handler, seen = scripted(
        httpx.Response(200, json=FILE, headers={"set-cookie": "session=abc; Path=/"}),
        httpx.Response(200, json=FILE),
    )
    client = client_with(handler, recorder)
    client.get(FILE["id"])
    client.get(FILE["id"])
    assert [r.headers.get("cookie") for r in seen] == [None, None]


def test_multipart_body_of_a_small_file_is_one_chunk(recorder: Recorder, tmp_path: Path) -> None:
    """Head, content and tail of a small file go to the socket as one write; the body is the
    exact multipart form (the server parses it back to the file's bytes)."""
    path = tmp_path / "a.txt"
    path.write_bytes(b"hello")
    chunks: list[list[bytes]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        chunks.append(list(request.stream))  # type: ignore[arg-type]
        return httpx.Response(200, json=FILE)

    client_with(handler, recorder).upload(path, "a.txt", "text/plain")
    (body,) = chunks[0]
    assert (len(chunks[0]), body.count(b"\r\n\r\nhello\r\n--")) == (1, 1)


def test_retry_after_is_honoured_with_recorded_sleeps(recorder: Recorder) -> None:
    """A 429 with retry-after: 3 waits exactly 3 s (recorded, not slept) and then succeeds."""
    handler, seen = scripted(
        err(429, "rate_limit_error", {"retry-after": "3"}), httpx.Response(200, json=FILE)
    )
    client_with(handler, recorder).get(FILE["id"])
    assert (len(seen), recorder.sleeps) == (2, [3.0])


def test_retry_after_ms_and_backoff(recorder: Recorder) -> None:
    """retry-after-ms is used when present; without a hint, backoff doubles from 0.5 s."""
    handler, seen = scripted(
        err(529, "overloaded_error", {"retry-after-ms": "250"}),
        err(500, "api_error"),
        err(500, "api_error"),
        httpx.Response(200, json=FILE),
    )
    client_with(handler, recorder).get(FILE["id"])
    assert (len(seen), recorder.sleeps) == (4, [0.25, 1.0, 2.0])


def test_transient_errors_give_up_after_max_retries(recorder: Recorder) -> None:
    """After max_retries retries the transient error is raised to the caller."""
    handler, seen = scripted(*[err(500, "api_error")] * 3)
    with pytest.raises(errors.ServerError):
        client_with(handler, recorder, max_retries=2).get(FILE["id"])
    assert len(seen) == 3


@pytest.mark.parametrize("status", [400, 401, 402, 403, 404, 413])
def test_permanent_errors_are_not_retried(recorder: Recorder, status: int) -> None:
    """A permanent error is raised after exactly one request."""
    handler, seen = scripted(err(status, "some_error"))
    with pytest.raises(errors.PermanentError):
        client_with(handler, recorder).get(FILE["id"])
    assert len(seen) == 1


def test_should_retry_false_stops_a_500(recorder: Recorder) -> None:
    """x-should-retry: false on a 500 is obeyed: no second request."""
    handler, seen = scripted(err(500, "api_error", {"x-should-retry": "false"}))
    with pytest.raises(errors.ServerError):
        client_with(handler, recorder).get(FILE["id"])
    assert len(seen) == 1


def test_connection_errors_are_retried(recorder: Recorder) -> None:
    """A dropped connection is retried like any transient error."""
    calls: list[int] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(1)
        if len(calls) == 1:
            raise httpx.RemoteProtocolError("peer closed connection", request=request)
        return httpx.Response(200, json=FILE)

    client_with(handler, recorder).get(FILE["id"])
    assert (len(calls), recorder.sleeps) == (2, [0.5])


def test_a_429_pauses_another_thread_sharing_the_pacer(recorder: Recorder) -> None:
    """One client's 429 holds back a request from another thread for the retry-after."""
    pacer = Pacer(6000, burst=100, clock=recorder.clock, sleep=recorder.sleep)
    limited, _ = scripted(err(429, "rate_limit_error", {"retry-after": "7"}))
    with pytest.raises(errors.RateLimited):
        client_with(limited, recorder, pacer=pacer, max_retries=0).get(FILE["id"])
    ok, seen = scripted(httpx.Response(200, json=FILE))
    other = client_with(ok, recorder, pacer=pacer)
    worker = threading.Thread(target=other.get, args=(FILE["id"],))
    worker.start()
    worker.join(timeout=10)
    assert (len(seen), recorder.sleeps) == (1, [7.0])


def test_delete_404_means_already_gone(recorder: Recorder) -> None:
    """DELETE answering 404 returns False instead of raising."""
    handler, _ = scripted(err(404, "not_found_error"), httpx.Response(200, json={"id": "x"}))
    client = client_with(handler, recorder)
    assert [client.delete("file_a"), client.delete("file_b")] == [False, True]


def test_upload_of_a_vanished_file_is_a_local_error(recorder: Recorder, tmp_path: Path) -> None:
    """A file that is gone before upload raises LocalFileError, and nothing is sent."""
    handler, seen = scripted()
    with pytest.raises(errors.LocalFileError, match="cannot read"):
        client_with(handler, recorder).upload(tmp_path / "gone.txt", "gone.txt", "text/plain")
    assert seen == []


def test_upload_of_a_file_that_shrinks_mid_upload(recorder: Recorder, tmp_path: Path) -> None:
    """A file truncated while its body streams aborts the request with FileChangedError."""
    path = tmp_path / "big.bin"
    path.write_bytes(b"x" * (3 * 1024 * 1024))

    class TruncatingTransport(httpx.BaseTransport):
        """Reads the body as a socket would, truncating the file after the first part."""

        def handle_request(self, request: httpx.Request) -> httpx.Response:
            stream = iter(request.stream)  # type: ignore[call-overload]
            next(stream)  # the multipart head, before any file bytes
            path.write_bytes(b"short")
            for _ in stream:
                pass
            return httpx.Response(200, json=FILE)

    pacer = Pacer(6000, burst=100, clock=recorder.clock, sleep=recorder.sleep)
    client = FilesClient(KEY, pacer=pacer, transport=TruncatingTransport(), sleep=recorder.sleep)
    with pytest.raises(errors.FileChangedError, match="shrank"):
        client.upload(path, "big.bin", "application/octet-stream")
    assert recorder.sleeps == []


def test_upload_of_a_file_changed_during_upload(recorder: Recorder, tmp_path: Path) -> None:
    """A file rewritten while uploading raises FileChangedError naming the stored copy."""
    path = tmp_path / "a.txt"
    path.write_bytes(b"hello")

    def handler(request: httpx.Request) -> httpx.Response:
        request.read()
        path.write_bytes(b"HELLO, world")
        return httpx.Response(200, json=FILE)

    with pytest.raises(errors.FileChangedError) as info:
        client_with(handler, recorder).upload(path, "a.txt", "text/plain")
    assert info.value.uploaded_id == FILE["id"]


def test_upload_too_large_is_refused_locally(recorder: Recorder, tmp_path: Path) -> None:
    """A file over the size limit is TooLarge without sending it."""
    path = tmp_path / "a.bin"
    path.write_bytes(b"x" * 11)
    handler, seen = scripted()
    with pytest.raises(errors.TooLarge):
        client_with(handler, recorder, max_upload_bytes=10).upload(path, "a.bin", "text/plain")
    assert seen == []


def test_upload_body_is_multipart_with_content_length(recorder: Recorder, tmp_path: Path) -> None:
    """The upload is one `file` part with the name and type given, and an exact length."""
    path = tmp_path / "a.txt"
    path.write_bytes(b"hello")
    handler, seen = scripted(httpx.Response(200, json=FILE))
    result = client_with(handler, recorder).upload(path, "docs%2Fa.txt", "text/plain")
    body = seen[0].content
    assert int(seen[0].headers["content-length"]) == len(body)
    part = b'name="file"; filename="docs%2Fa.txt"\r\nContent-Type: text/plain\r\n\r\nhello\r\n'
    assert part in body
    assert result.sha256 == "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"


def test_the_key_never_leaks(recorder: Recorder) -> None:
    """The key is absent from logs, exception text, tracebacks and reprs, even on 401."""
    handler, _ = scripted(
        err(500, "api_error"), err(401, "authentication_error")
    )
    client = client_with(handler, recorder)
    with capture_logs() as logs, pytest.raises(errors.AuthenticationFailed) as info:
        client.get(FILE["id"])
    text = "\n".join(
        [
            json.dumps(logs, default=str),
            str(info.value),
            repr(client),
            repr(client._http.auth),
            *traceback.format_exception(info.value),
        ]
    )
    assert "authentication failed" in str(info.value)
    assert KEY not in text and "SECRET" not in text


def test_retry_log_lines_number_every_attempt(recorder: Recorder) -> None:
    """Each retry logs the attempt that failed (1, 2, ...) with its wait and error, the first
    attempt included: the bare first try hands its failure on as attempt 1."""
    handler, seen = scripted(
        err(529, "overloaded_error"), err(500, "api_error"), httpx.Response(200, json=FILE)
    )
    with capture_logs() as logs:
        client_with(handler, recorder).get(FILE["id"])
    retries = [(e["op"], e["attempt"], e["wait_s"]) for e in logs if e["event"] == "retrying"]
    expected = (3, [("get", 1, 0.5), ("get", 2, 1.0)], [0.5, 1.0])
    assert expected == (len(seen), retries, recorder.sleeps)


def test_upload_posts_under_a_base_url_with_a_path(recorder: Recorder, tmp_path: Path) -> None:
    """A base URL with a path (a proxy) keeps it for uploads, as for every other request."""
    source = tmp_path / "a.txt"
    source.write_bytes(b"hello")
    handler, seen = scripted(httpx.Response(200, json=FILE), httpx.Response(200, json=FILE))
    client = FilesClient(KEY, "https://proxy.test/anthropic/", transport=httpx.MockTransport(
        handler), pacer=Pacer(6000, burst=100, clock=recorder.clock, sleep=recorder.sleep))
    client.upload(source, "a.txt", "text/plain")
    client.get(FILE["id"])
    expected = ["https://proxy.test/anthropic/v1/files",
                f"https://proxy.test/anthropic/v1/files/{FILE['id']}"]
    assert expected == [str(r.url) for r in seen]


def test_a_success_whose_body_cannot_be_read_may_have_stored_a_copy(
    recorder: Recorder, tmp_path: Path
) -> None:
    """A 2xx upload answer with an unusable body (here an unsafe id) is refused, and flagged
    maybe stored: the worker keeps the intent, so reconcile finds the copy (it would otherwise
    count as foreign forever)."""
    (tmp_path / "a.txt").write_bytes(b"alpha")
    handler, seen = scripted(httpx.Response(200, json={**FILE, "id": "../../v1/files"}))
    client = client_with(handler, recorder)
    with pytest.raises(errors.BadAnswer) as caught:
        client.upload(tmp_path / "a.txt", "a.txt", "text/plain")
    assert (True, 1) == (caught.value.maybe_stored, len(seen))


def test_an_upload_carries_every_header_and_timeout_of_the_client(
    recorder: Recorder, tmp_path: Path
) -> None:
    """Uploads are built from headers merged once: they still carry the host, the version,
    the user agent, the key, the body's type and length, and the client's timeouts."""
    handler, seen = scripted(httpx.Response(200, json=FILE), httpx.Response(200, json=FILE))
    (tmp_path / "a.txt").write_bytes(b"hello")
    with client_with(handler, recorder, timeout=42.0) as client:
        client.upload(tmp_path / "a.txt", "a.txt", "text/plain")
        client.upload(tmp_path / "a.txt", "a.txt", "text/plain")
    first, second = seen
    headers = first.headers
    boundary = headers["content-type"].split("boundary=")[1]
    expected = (
        "files.test", "2026-10-21", True, f"Bearer {KEY}", int(headers["content-length"]),
        {"connect": 10.0, "read": 42.0, "write": 42.0, "pool": 42.0}, 1, True,
    )
    assert expected == (
        headers["host"], headers["anthropic-version"],
        headers["user-agent"].startswith("syncd/"), headers["authorization"],
        len(first.content), first.extensions["timeout"],
        len(headers.get_list("content-type")),
        boundary != second.headers["content-type"].split("boundary=")[1],
    )
