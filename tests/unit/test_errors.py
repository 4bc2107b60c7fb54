"""Every status code and every foreign transport error maps to the right syncd error."""

from __future__ import annotations

import email.utils

import httpx
import pytest

from syncd import errors
from syncd.remote.retry import is_retryable, retry_delay

NESTED = {
    "type": "error",
    "error": {"type": "not_found_error", "message": "File `file_x` not found."},
    "request_id": "req_body",
}

STATUS_TABLE = [
    (400, errors.BadRequest, False),
    (401, errors.AuthenticationFailed, False),
    (402, errors.BillingError, False),
    (403, errors.PermissionDenied, False),
    (404, errors.NotFound, False),
    (408, errors.RequestTimeout, True),
    (409, errors.ConflictError, True),
    (413, errors.TooLarge, False),
    (429, errors.RateLimited, True),
    (500, errors.ServerError, True),
    (502, errors.ServerError, True),
    (503, errors.ServerError, True),
    (504, errors.ServerError, True),
    (529, errors.ServerError, True),
    (418, errors.PermanentError, False),
]


@pytest.mark.parametrize(("status", "cls", "retry"), STATUS_TABLE)
def test_status_maps_to_class_and_category(status: int, cls: type, retry: bool) -> None:
    """Each status becomes its documented class, transient or permanent as CONTRACT.md says."""
    response = httpx.Response(status, json=NESTED, headers={"request-id": "req_header"})
    error = errors.error_from_response(response)
    assert (type(error), is_retryable(error)) == (cls, retry)
    assert (error.status, error.error_type, error.request_id) == (
        status,
        "not_found_error",
        "req_header",
    )


TRANSPORT_TABLE = [
    httpx.ConnectError("refused"),
    httpx.ConnectTimeout("connect timeout"),
    httpx.ReadTimeout("read timeout"),
    httpx.WriteTimeout("write timeout"),
    httpx.PoolTimeout("pool timeout"),
    httpx.ReadError("reset"),
    httpx.CloseError("close"),
    httpx.WriteError("broken pipe"),
    httpx.RemoteProtocolError("peer closed connection"),
    httpx.LocalProtocolError("bad"),
    httpx.ProxyError("proxy"),
    httpx.UnsupportedProtocol("ftp"),
]


@pytest.mark.parametrize("exc", TRANSPORT_TABLE, ids=lambda e: type(e).__name__)
def test_transport_errors_are_transient(exc: httpx.TransportError) -> None:
    """Every httpx transport failure becomes a retryable ConnectionFailed naming its kind."""
    error = errors.error_from_transport(exc)
    assert (type(error), is_retryable(error), error.status) == (
        errors.ConnectionFailed,
        True,
        None,
    )
    assert type(exc).__name__ in str(error)


def test_every_transport_error_subclass_is_in_the_table() -> None:
    """The table above covers every concrete httpx.TransportError subclass httpx defines."""

    def leaves(cls: type) -> set[type]:
        subs = cls.__subclasses__()
        return {cls} if not subs else set().union(*(leaves(s) for s in subs))

    httpx_leaves = {c for c in leaves(httpx.TransportError) if c.__module__.startswith("httpx")}
    assert httpx_leaves <= {type(e) for e in TRANSPORT_TABLE}


def test_edge_413_body_without_top_level_type() -> None:
    """The edge's 413 body (no top-level type, no request_id) is parsed, not crashed on."""
    body = {"error": {"type": "request_too_large", "message": "Request exceeds the maximum size"}}
    error = errors.error_from_response(httpx.Response(413, json=body))
    assert (type(error), error.error_type, error.message, error.request_id) == (
        errors.TooLarge,
        "request_too_large",
        "Request exceeds the maximum size",
        None,
    )


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b"<html><body>502 Bad Gateway</body></html>", "<html><body>502 Bad Gateway</body></html>"),
        (b"", "Bad Gateway"),
        (b"[1, 2]", "[1, 2]"),
        (b'{"error": "flat string"}', "{'error': 'flat string'}"),
    ],
)
def test_non_json_or_odd_bodies_do_not_crash(content: bytes, expected: str) -> None:
    """HTML, empty and oddly shaped bodies still give an error with a readable message."""
    error = errors.error_from_response(httpx.Response(502, content=content))
    assert (type(error), error.message) == (errors.ServerError, expected)


def test_request_id_falls_back_to_body() -> None:
    """Without a request-id header, the body's request_id is kept."""
    error = errors.error_from_response(httpx.Response(404, json=NESTED))
    assert error.request_id == "req_body"


def test_authentication_failure_says_so() -> None:
    """A 401 reads 'authentication failed' so users know what to fix."""
    error_body = {"type": "authentication_error", "message": "invalid x-api-key"}
    body = {"type": "error", "error": error_body}
    error = errors.error_from_response(httpx.Response(401, json=body))
    assert str(error) == "401 authentication_error: authentication failed: invalid x-api-key"


@pytest.mark.parametrize(
    ("header", "status", "expected"),
    [("true", 400, True), ("false", 500, False), ("TRUE", 404, True), ("maybe", 500, True)],
)
def test_x_should_retry_overrides_the_status(header: str, status: int, expected: bool) -> None:
    """The server's x-should-retry header decides, as in the official SDK."""
    response = httpx.Response(status, json=NESTED, headers={"x-should-retry": header})
    assert is_retryable(errors.error_from_response(response)) is expected


def test_retry_after_forms() -> None:
    """retry-after-ms wins, then retry-after in seconds, then as an HTTP date."""
    now = 1_700_000_000.0
    date = email.utils.formatdate(now + 7, usegmt=True)
    cases = [
        ({"retry-after-ms": "1500", "retry-after": "9"}, 1.5),
        ({"retry-after": "4"}, 4.0),
        ({"retry-after": date}, 7.0),
        ({"retry-after": "soon"}, None),
        ({}, None),
    ]
    actual = [errors.retry_after_seconds(httpx.Headers(h), now=now) for h, _ in cases]
    assert actual == [want for _, want in cases]


def test_retry_delay_uses_server_wait_only_within_sixty_seconds() -> None:
    """A server wait in [0, 60] s is obeyed; otherwise exponential backoff with jitter applies."""
    within = errors.RateLimited("x", status=429, retry_after=12.0)
    beyond = errors.RateLimited("x", status=429, retry_after=600.0)
    plain = errors.ServerError("x", status=500)
    assert [
        retry_delay(within, 1, lambda: 0.0),
        retry_delay(beyond, 1, lambda: 0.0),
        retry_delay(plain, 1, lambda: 0.0),
        retry_delay(plain, 3, lambda: 1.0),
        retry_delay(plain, 10, lambda: 0.0),
    ] == [12.0, 0.5, 0.5, 1.5, 8.0]
