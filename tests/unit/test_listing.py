"""Listings in both API versions' shapes, and what makes one evidence: only a proven end."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest

from syncd import errors
from syncd.remote.client import FilesClient, WorkspaceGuard
from syncd.remote.files import parse_page
from syncd.remote.protocol import BETA_VERSION, GA_VERSION
from tests.conftest import Recorder
from tests.unit.test_client import FILE, KEY, client_with, scripted


def ga(ids: list[str], next_page: Any) -> httpx.Response:
    return httpx.Response(200, json={"data": [dict(FILE, id=i) for i in ids],
                                     "next_page": next_page})


def beta(ids: list[str], has_more: bool, last: Any = "auto") -> httpx.Response:
    last_id = (ids[-1] if ids else None) if last == "auto" else last
    return httpx.Response(200, json={"data": [dict(FILE, id=i) for i in ids],
                                     "first_id": ids[0] if ids else None,
                                     "last_id": last_id, "has_more": has_more})


def listed(handler: Callable[[httpx.Request], httpx.Response], recorder: Recorder,
           **kwargs: Any) -> list[str]:
    return [f.id for f in client_with(handler, recorder, **kwargs).iter_files(limit=2)]


def test_ga_pages_follow_next_page_until_null(recorder: Recorder) -> None:
    """GA answers chain by the opaque `page` cursor and end at next_page null."""
    handler, seen = scripted(ga(["a", "b"], "page_2"), ga(["c"], None))
    assert ["a", "b", "c"] == listed(handler, recorder)
    assert [None, "page_2"] == [r.url.params.get("page") for r in seen]
    assert [None, None] == [r.url.params.get("after_id") for r in seen]


def test_beta_pages_follow_last_id_until_has_more_false(recorder: Recorder) -> None:
    """2025-beta answers chain by after_id=last_id and end at has_more false."""
    handler, seen = scripted(beta(["a", "b"], True), beta(["c"], False))
    assert ["a", "b", "c"] == listed(handler, recorder, api_version=BETA_VERSION)
    assert [None, "b"] == [r.url.params.get("after_id") for r in seen]


@pytest.mark.parametrize("version", [GA_VERSION, BETA_VERSION])
def test_either_shape_is_read_whatever_version_was_sent(recorder: Recorder, version: str) -> None:
    """A GA-shaped answer to a beta request (and the reverse) is still paged to its end."""
    handler, _ = scripted(ga(["a", "b"], "page_2"), beta(["c", "d"], True), ga(["e"], None))
    assert ["a", "b", "c", "d", "e"] == listed(handler, recorder, api_version=version)


def test_an_empty_page_that_says_more_is_followed(recorder: Recorder) -> None:
    """`data: []` with a next cursor is not the end: the next page is read."""
    handler, _ = scripted(ga([], "page_2"), ga(["a"], None))
    assert ["a"] == listed(handler, recorder)


@pytest.mark.parametrize(
    "answer",
    [
        httpx.Response(200, json={"data": [dict(FILE, id="a"), dict(FILE, id="b")]}),
        httpx.Response(200, json={"data": [dict(FILE, id="a")]}),
        httpx.Response(200, json={"data": []}),
    ],
    ids=["full-page-no-marker", "short-page-no-marker", "empty-no-marker"],
)
def test_a_page_without_an_end_marker_is_not_a_complete_listing(
    recorder: Recorder, answer: httpx.Response
) -> None:
    """Neither next_page nor has_more: the listing raises instead of ending."""
    handler, _ = scripted(answer)
    with pytest.raises(errors.IncompleteListing, match="not proven complete"):
        listed(handler, recorder)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"data": [], "next_page": 7}, "not a page cursor"),
        ({"data": [], "next_page": ""}, "not a page cursor"),
        ({"data": [], "next_page": "page_/../x"}, "not a page cursor"),
        ({"data": [], "has_more": True, "last_id": None}, "invalid last_id"),
        ({"data": [], "has_more": "yes"}, "not proven complete"),
        ({"data": {}, "next_page": None}, "no `data` list"),
        ({"data": [], "next_page": "page_2", "has_more": False}, "both"),
        ({"data": [dict(FILE, id="../admin")], "next_page": None}, "invalid file id"),
        ({"data": [dict(FILE, expires_at="tomorrow")], "next_page": None}, "expires_at"),
        ({"data": [dict(FILE, size_bytes=-1)], "next_page": None}, "size_bytes"),
    ],
)
def test_hostile_or_broken_answers_fail_the_listing(body: dict[str, Any], message: str) -> None:
    """Each malformed answer is one BadAnswer naming the problem; nothing is returned."""
    with pytest.raises(errors.BadAnswer, match=message):
        parse_page(body, limit=2)


def test_a_repeated_cursor_fails_the_listing(recorder: Recorder) -> None:
    """A server that hands back a cursor already followed does not page forever."""
    handler, seen = scripted(ga(["a"], "page_x"), ga(["b"], "page_x"), ga(["c"], None))
    with pytest.raises(errors.IncompleteListing, match="repeated"):
        listed(handler, recorder)
    assert 2 == len(seen)


def test_expiry_and_scope_are_read_from_file_objects() -> None:
    """expires_at is parsed (null means never) and a session scope marks a file foreign."""
    page = parse_page({"data": [
        dict(FILE, id="a", expires_at="2026-12-01T00:00:00.000000Z", scope=None),
        dict(FILE, id="b", expires_at=None, scope={"type": "session", "id": "sesn_1"}),
    ], "next_page": None}, limit=10)
    a, b = page.data
    assert (1796083200.0, False) == (a.expires_at.timestamp() if a.expires_at else 0, a.scoped)
    assert (None, True) == (b.expires_at, b.scoped)


@pytest.mark.parametrize(
    ("version", "expected"),
    [
        (GA_VERSION, {"authorization": f"Bearer {KEY}", "x-api-key": None,
                      "anthropic-beta": None, "anthropic-version": GA_VERSION}),
        (BETA_VERSION, {"authorization": None, "x-api-key": KEY,
                        "anthropic-beta": "files-api-2025-04-14",
                        "anthropic-version": BETA_VERSION}),
    ],
)
def test_headers_and_auth_per_version(
    recorder: Recorder, version: str, expected: dict[str, str | None]
) -> None:
    """GA sends Bearer auth and no beta header; the 2025 beta sends x-api-key and the beta."""
    handler, seen = scripted(ga([], None))
    listed(handler, recorder, api_version=version)
    assert expected == {name: seen[0].headers.get(name) for name in expected}


def test_an_unknown_api_version_is_a_config_error() -> None:
    """A version syncd does not speak is refused when the client is built."""
    with pytest.raises(errors.ConfigError, match="unknown api_version"):
        FilesClient(KEY, "https://files.test", api_version="2024-01-01")  # type: ignore[arg-type]


def test_ids_never_reach_a_url_unvalidated(recorder: Recorder) -> None:
    """An id holding `/../` is refused before any request is sent."""
    handler, seen = scripted()
    client = client_with(handler, recorder)
    for call in (client.delete, client.get):
        with pytest.raises(errors.BadAnswer, match="invalid file id"):
            call("file_1/../../v1/admin")
    assert [] == seen


def test_workspace_is_learnt_then_sent_and_held(recorder: Recorder) -> None:
    """The first answer's workspace is recorded and sent; an answer from another one stops."""
    learnt: list[str] = []
    handler, seen = scripted(
        httpx.Response(200, json={"data": [], "next_page": None},
                       headers={"anthropic-workspace-id": "wrkspc_A"}),
        httpx.Response(200, json={"data": [], "next_page": None},
                       headers={"anthropic-workspace-id": "wrkspc_B"}),
    )
    client = client_with(handler, recorder, workspace=WorkspaceGuard(None, learnt.append))
    client.list_page()
    with pytest.raises(errors.WorkspaceMismatch, match="belongs to workspace wrkspc_A"):
        client.list_page()
    assert ["wrkspc_A"] == learnt
    assert [None, "wrkspc_A"] == [r.headers.get("anthropic-workspace-id") for r in seen]


def test_error_codes_pick_the_error_class(recorder: Recorder) -> None:
    """GA error_code names the cause; the 2025 403 over quota is recognised by its text."""
    def coded(status: int, kind: str, code: str | None, message: str = "x") -> httpx.Response:
        error: dict[str, Any] = {"type": kind, "message": message}
        if code:
            error["details"] = {"error_code": code}
        return httpx.Response(status, json={"type": "error", "error": error})

    cases = [
        (coded(400, "invalid_request_error", "storage_quota_exceeded"), errors.QuotaExceeded),
        (coded(403, "permission_error", None, "Storage quota exceeded"), errors.QuotaExceeded),
        (coded(404, "not_found_error", "file_expired"), errors.FileExpired),
        (coded(400, "invalid_request_error", "file_not_downloadable"), errors.NotDownloadable),
        (coded(400, "invalid_request_error", "brand_new_code"), errors.BadRequest),
        (coded(403, "permission_error", None), errors.PermissionDenied),
    ]
    found = [type(errors.error_from_response(response)) for response, _ in cases]
    assert [cls for _, cls in cases] == found
    unknown = errors.error_from_response(cases[4][0])
    assert ("brand_new_code", "400 invalid_request_error [brand_new_code]: x") == (
        unknown.error_code, str(unknown))
