"""The emulator's 2026-10-21 (GA) surface over a real loopback socket, and what both versions
share: workspaces, the storage quota, expiry, the page cap."""

from __future__ import annotations

import argparse
import base64
import re
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from syncd.emulator.app import EmulatorConfig, FileScope, RunningEmulator, run_emulator
from syncd.emulator.cli import add_emulator_arguments, run_emulator_cli
from syncd.emulator.faults import Faults
from syncd.emulator.store import FileStore
from syncd.remote.names import filename_problem
from tests.conftest import control
from tests.emulator.test_emulator import BOUNDARY, FakeClock, api_headers, closing, raw_part

pytestmark = pytest.mark.timeout(60)

GA = "2026-10-21"
REQUEST_ID = re.compile(r"req_011C[0-9A-Za-z]{20}")
CURSOR = re.compile(r"page_[A-Za-z0-9_-]+")
NOW = "2025-06-15T15:06:40.000000Z"  # FakeClock's start


def ga_headers(key: str) -> dict[str, str]:
    return {"authorization": f"Bearer {key}", "anthropic-version": GA}


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def emu(tmp_path: Path, clock: FakeClock) -> Iterator[RunningEmulator]:
    with run_emulator(EmulatorConfig(data_dir=tmp_path / "data", clock=clock)) as running:
        yield running


@pytest.fixture
def ga(emu: RunningEmulator) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=emu.base_url, headers=ga_headers(emu.api_key), timeout=10) as c:
        yield c


@pytest.fixture
def beta(emu: RunningEmulator) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=emu.base_url, headers=api_headers(emu.api_key), timeout=10) as c:
        yield c


def upload(client: httpx.Client, name: str, content: bytes = b"hello",
           mime: str = "text/plain", **fields: str) -> dict[str, object]:
    response = client.post("/v1/files", files={"file": (name, content, mime)}, data=fields)
    expected = 200
    assert expected == response.status_code, response.text
    body: dict[str, object] = response.json()
    return body


def raw_upload(client: httpx.Client, body: bytes) -> httpx.Response:
    return client.post("/v1/files", content=body,
                       headers={"content-type": f"multipart/form-data; boundary={BOUNDARY}"})


def field(name: str, value: str) -> bytes:
    return raw_part(None, value.encode(), None, name)


def page(client: httpx.Client, **params: object) -> tuple[list[str], str | None]:
    response = client.get("/v1/files", params=params)
    expected = 200
    assert expected == response.status_code, response.text
    body = response.json()
    expected_keys = {"data", "next_page"}
    assert expected_keys == set(body)
    return [f["id"] for f in body["data"]], body["next_page"]


def walk(client: httpx.Client, limit: int) -> list[list[str]]:
    """Every page of the listing, following next_page (bounded)."""
    pages, cursor = [], None
    for _ in range(50):
        ids, cursor = page(client, limit=limit, **({"page": cursor} if cursor else {}))
        pages.append(ids)
        if cursor is None:
            return pages
        assert CURSOR.fullmatch(cursor)
    raise AssertionError("the listing never ended")


def assert_error(response: httpx.Response, status: int, kind: str, message: str | None = None,
                 code: str | None = None) -> None:
    """The nested error body; ``details.error_code`` exactly when ``code`` is given."""
    body = response.json()
    error: dict[str, object] = {
        "type": kind, "message": body["error"]["message"] if message is None else message}
    if code is not None:
        error["details"] = {"error_code": code}
    expected = {"type": "error", "error": error, "request_id": response.headers.get("request-id")}
    assert (status, expected) == (response.status_code, body)
    assert REQUEST_ID.fullmatch(body["request_id"])


# --------------------------------------------------------------------------------------------
# Versions and auth


def test_ga_file_object_adds_expires_at_and_scope(ga: httpx.Client) -> None:
    """A GA upload, GET and list show the File object with expires_at and scope (null)."""
    created = upload(ga, "notes.txt", b"hello world")
    expected = {"id": created["id"], "type": "file", "filename": "notes.txt",
                "mime_type": "text/plain", "size_bytes": 11, "created_at": NOW,
                "downloadable": False, "expires_at": None, "scope": None}
    assert expected == created
    assert expected == ga.get(f"/v1/files/{created['id']}").json()
    assert {"data": [expected], "next_page": None} == ga.get("/v1/files").json()


def test_both_versions_see_the_same_files(ga: httpx.Client, beta: httpx.Client) -> None:
    """A file uploaded in one version is listed in the other, in that version's shape."""
    file_id = upload(ga, "a.txt")["id"]
    body = beta.get("/v1/files").json()
    expected = ({"data", "first_id", "last_id", "has_more"}, [file_id], False)
    assert expected == (set(body), [f["id"] for f in body["data"]], "expires_at" in body["data"][0])


@pytest.mark.parametrize("auth", ["bearer", "x-api-key"])
def test_ga_takes_the_key_as_bearer_or_x_api_key(emu: RunningEmulator, auth: str) -> None:
    """GA accepts the key as a Bearer token or as x-api-key, with no beta header."""
    headers = {"anthropic-version": GA}
    headers |= ({"authorization": f"Bearer {emu.api_key}"} if auth == "bearer"
                else {"x-api-key": emu.api_key})
    expected = 200
    assert expected == httpx.get(f"{emu.base_url}/v1/files", headers=headers).status_code


@pytest.mark.parametrize(
    ("authorization", "message"),
    [(None, "x-api-key or Authorization: Bearer header is required"),
     ("Bearer sk-ant-wrong-key-123", "invalid bearer token"),
     ("Basic c2stYW50LXdyb25n", "Authorization: expected `Bearer <API key>`"),
     ("Bearer", "Authorization: expected `Bearer <API key>`")],
)
def test_ga_bad_or_missing_bearer_is_401_without_echo(emu: RunningEmulator,
                                                      authorization: str | None,
                                                      message: str) -> None:
    """A missing, malformed or wrong GA credential is a 401 that never echoes what was sent."""
    headers = {"anthropic-version": GA}
    if authorization is not None:
        headers["authorization"] = authorization
    response = httpx.get(f"{emu.base_url}/v1/files", headers=headers)
    assert_error(response, 401, "authentication_error", message)
    assert "sk-ant-wrong-key-123" not in response.text and emu.api_key not in response.text


def test_bearer_is_not_a_2023_credential(emu: RunningEmulator) -> None:
    """2023-06-01 still knows only x-api-key: a Bearer token alone is a 401."""
    headers = api_headers(emu.api_key)
    del headers["x-api-key"]
    headers["authorization"] = f"Bearer {emu.api_key}"
    response = httpx.get(f"{emu.base_url}/v1/files", headers=headers)
    assert_error(response, 401, "authentication_error", "x-api-key header is required")


def test_ga_ignores_beta_headers(ga: httpx.Client) -> None:
    """A GA request may carry any anthropic-beta header (the SDK's beta namespace does)."""
    response = ga.get("/v1/files", headers={"anthropic-beta": "some-other-beta-2026-01-01"})
    expected = 200
    assert expected == response.status_code


# --------------------------------------------------------------------------------------------
# Paging with page / next_page


def test_ga_pages_newest_first_with_next_page(ga: httpx.Client) -> None:
    """limit=2 walks 5 files newest first in 3 pages; the last page's next_page is null."""
    ids = [str(upload(ga, f"f{i}.txt")["id"]) for i in range(5)]
    newest_first = ids[::-1]
    expected = [newest_first[0:2], newest_first[2:4], newest_first[4:]]
    assert expected == walk(ga, 2)


def test_cursor_stays_valid_across_deletes_while_paging(ga: httpx.Client,
                                                        clock: FakeClock) -> None:
    """Deleting the cursor's own file and the next one between pages skips and repeats nothing."""
    ids = [str(upload(ga, f"f{i}.txt")["id"]) for i in range(6)]
    first, cursor = page(ga, limit=2)
    assert ids[5:3:-1] == first
    for gone in (ids[4], ids[3]):  # the cursor's file, and the next page's first
        expected = 200
        assert expected == ga.delete(f"/v1/files/{gone}").status_code
    clock.advance(3600)  # long past the linger: the deleted files are no longer listed
    second, cursor = page(ga, limit=2, page=cursor)
    third, last = page(ga, limit=2, page=cursor)
    expected_pages = ([ids[2], ids[1]], [ids[0]], None)
    assert expected_pages == (second, third, last)


def test_cursor_of_a_page_whose_files_are_all_gone_still_works(ga: httpx.Client,
                                                               clock: FakeClock) -> None:
    """A cursor keeps its place after every file before and at it was deleted."""
    ids = [str(upload(ga, f"f{i}.txt")["id"]) for i in range(4)]
    _, cursor = page(ga, limit=2)
    for gone in ids:
        ga.delete(f"/v1/files/{gone}")
    newer = str(upload(ga, "new.txt")["id"])
    clock.advance(3600)
    expected = (([], None), [newer])
    assert expected == (page(ga, limit=2, page=cursor), page(ga)[0])


def test_cursor_survives_a_restart(tmp_path: Path, clock: FakeClock) -> None:
    """The cursor secret lives in the data dir: a cursor from before a restart still pages."""
    cfg = EmulatorConfig(data_dir=tmp_path / "data", clock=clock)
    with run_emulator(cfg) as emu, httpx.Client(base_url=emu.base_url,
                                                 headers=ga_headers(emu.api_key)) as c:
        ids = [str(upload(c, f"f{i}.txt")["id"]) for i in range(3)]
        _, cursor = page(c, limit=1)
    with run_emulator(cfg) as emu, httpx.Client(base_url=emu.base_url,
                                                 headers=ga_headers(emu.api_key)) as c:
        expected = ([ids[1], ids[0]], None)
        assert expected == page(c, limit=5, page=cursor)


def test_bad_page_cursors_are_400(ga: httpx.Client, emu: RunningEmulator) -> None:
    """Garbled, forged, truncated and other-workspace cursors are each a 400."""
    for i in range(3):
        upload(ga, f"f{i}.txt")
    _, cursor = page(ga, limit=1)
    assert cursor is not None
    flipped = cursor[:-1] + ("A" if cursor[-1] != "A" else "B")
    emu.set_workspace("wrkspc_other")
    _, foreign_cursor = page(ga, limit=1)  # empty workspace: no cursor at all
    emu.set_workspace("wrkspc_emulator")
    bad = ["garbage", "page_", "page_AAAA", flipped, cursor + "A", cursor[5:], "page_" + "A" * 24]
    message = ("page: not a page cursor this server issued (use the `next_page` of a previous "
               "answer)")
    for value in bad:
        assert_error(ga.get("/v1/files", params={"page": value}), 400, "invalid_request_error",
                     message)
    assert foreign_cursor is None


def test_cursor_from_another_workspace_is_400(ga: httpx.Client, emu: RunningEmulator) -> None:
    """A cursor is bound to the workspace it was issued in."""
    for i in range(2):
        upload(ga, f"f{i}.txt")
    _, cursor = page(ga, limit=1)
    emu.set_workspace("wrkspc_other")
    assert_error(ga.get("/v1/files", params={"page": cursor}), 400, "invalid_request_error")


@pytest.mark.parametrize("name", ["after_id", "before_id"])
def test_2023_cursors_are_refused_in_ga(ga: httpx.Client, name: str) -> None:
    """after_id / before_id in a GA list are a 400 naming the parameter, not silently ignored."""
    file_id = upload(ga, "a.txt")["id"]
    assert_error(ga.get("/v1/files", params={name: file_id}), 400, "invalid_request_error",
                 f"{name}: not supported by anthropic-version 2026-10-21; page with `page` "
                 "and the previous answer's `next_page`")


@pytest.mark.parametrize(("limit", "message"),
                         [("0", "limit: Input should be greater than or equal to 1"),
                          ("1001", "limit: Input should be less than or equal to 1000"),
                          ("x", "limit: Input should be a valid integer")])
def test_ga_bad_limit_is_400(ga: httpx.Client, limit: str, message: str) -> None:
    """GA limit has the same 1..1000 rule and messages as 2023-06-01."""
    assert_error(ga.get("/v1/files", params={"limit": limit}), 400, "invalid_request_error",
                 message)


def test_default_ga_page_is_20(ga: httpx.Client, emu: RunningEmulator) -> None:
    """Without limit a GA page holds 20 files and names a next page."""
    for i in range(21):
        emu.seed_foreign(f"f{i}.txt", b"x")
    ids, cursor = page(ga)
    expected = (20, True)
    assert expected == (len(ids), cursor is not None)


# --------------------------------------------------------------------------------------------
# ids lookups


def test_ids_lookup_leaves_out_deleted_and_unknown(ga: httpx.Client) -> None:
    """ids[] answers the live files among them, newest first, in one page; the rest vanish."""
    a, b, c = (str(upload(ga, f"{n}.txt")["id"]) for n in "abc")
    ga.delete(f"/v1/files/{b}")  # still lingering in the listing, but not resolvable
    params = [("ids[]", a), ("ids[]", b), ("ids[]", "file_011Cunknown"), ("ids[]", c),
              ("ids[]", a)]
    expected = ([c, a], None)
    assert expected == _ids_page(ga, params)


def _ids_page(client: httpx.Client, params: list[tuple[str, str]]) -> tuple[list[str], None]:
    response = client.get("/v1/files", params=params)
    expected = 200
    assert expected == response.status_code, response.text
    body = response.json()
    return [f["id"] for f in body["data"]], body["next_page"]


def test_plain_repeated_ids_work_too(ga: httpx.Client) -> None:
    """Repeated ids= (without brackets) is the same lookup as ids[]=."""
    a, b = (str(upload(ga, f"{n}.txt")["id"]) for n in "ab")
    expected = ([b, a], None)
    assert expected == _ids_page(ga, [("ids", a), ("ids", b)])


def test_more_than_100_distinct_ids_is_400(ga: httpx.Client) -> None:
    """101 distinct ids are a 400; 150 copies of one id are one id and fine."""
    a = str(upload(ga, "a.txt")["id"])
    many = [("ids[]", f"file_{i}") for i in range(101)]
    assert_error(ga.get("/v1/files", params=many), 400, "invalid_request_error",
                 "ids: at most 100 distinct ids are allowed (got 101)")
    expected = ([a], None)
    assert expected == _ids_page(ga, [("ids[]", a)] * 150)
    hundred = [("ids[]", a)] + [("ids[]", f"file_{i}") for i in range(99)]
    assert expected == _ids_page(ga, hundred)


@pytest.mark.parametrize("extra", [("page", "page_x"), ("limit", "5")])
def test_ids_with_page_or_limit_is_400(ga: httpx.Client, extra: tuple[str, str]) -> None:
    """ids cannot be combined with page or limit."""
    a = str(upload(ga, "a.txt")["id"])
    assert_error(ga.get("/v1/files", params=[("ids[]", a), extra]), 400,
                 "invalid_request_error", "ids: cannot be combined with page or limit")


def test_expired_ids_are_left_out(ga: httpx.Client, clock: FakeClock) -> None:
    """An expired file does not resolve in an ids lookup."""
    short = str(upload(ga, "short.txt", expires_in_seconds="3600")["id"])
    keep = str(upload(ga, "keep.txt")["id"])
    clock.advance(3600)
    expected = ([keep], None)
    assert expected == _ids_page(ga, [("ids[]", short), ("ids[]", keep)])


# --------------------------------------------------------------------------------------------
# The page cap


def test_page_max_caps_both_versions(tmp_path: Path, clock: FakeClock) -> None:
    """With page_max=2, limit=1000 gets 2 files per page and correct next_page / has_more."""
    cfg = EmulatorConfig(data_dir=tmp_path / "data", clock=clock, page_max=2)
    with run_emulator(cfg) as emu, \
            httpx.Client(base_url=emu.base_url, headers=ga_headers(emu.api_key)) as g, \
            httpx.Client(base_url=emu.base_url, headers=api_headers(emu.api_key)) as b:
        ids = [str(upload(g, f"f{i}.txt")["id"]) for i in range(5)][::-1]
        expected_ga = [ids[0:2], ids[2:4], ids[4:]]
        assert expected_ga == walk(g, 1000)
        body = b.get("/v1/files", params={"limit": 1000}).json()
        last = b.get("/v1/files", params={"limit": 1000, "after_id": ids[3]}).json()
    expected = (ids[0:2], True, [ids[4]], False)
    assert expected == ([f["id"] for f in body["data"]], body["has_more"],
                        [f["id"] for f in last["data"]], last["has_more"])


def test_page_max_must_be_at_least_one(tmp_path: Path) -> None:
    """page_max below 1 is refused when the config is made."""
    with pytest.raises(ValueError, match="page_max"):
        EmulatorConfig(data_dir=tmp_path, page_max=0)


# --------------------------------------------------------------------------------------------
# Workspaces


def test_every_answer_names_the_workspace(ga: httpx.Client, beta: httpx.Client,
                                          emu: RunningEmulator) -> None:
    """Successes, errors and unknown paths in both versions carry anthropic-workspace-id."""
    file_id = upload(ga, "a.txt")["id"]
    responses = [ga.get("/v1/files"), beta.get("/v1/files"), ga.get(f"/v1/files/{file_id}"),
                 ga.get("/v1/files/nope"), beta.get("/v1/nothing"),
                 ga.get("/v1/files", headers={"authorization": "Bearer wrong"}),
                 ga.get(f"/v1/files/{file_id}/content")]
    expected = ["wrkspc_emulator"] * len(responses)
    assert expected == [r.headers.get("anthropic-workspace-id") for r in responses]


def test_matching_workspace_header_is_accepted(ga: httpx.Client, beta: httpx.Client) -> None:
    """Sending the key's own workspace id is fine in both versions."""
    headers = {"anthropic-workspace-id": "wrkspc_emulator"}
    expected = [200, 200]
    assert expected == [ga.get("/v1/files", headers=headers).status_code,
                        beta.get("/v1/files", headers=headers).status_code]


@pytest.mark.parametrize("version", ["ga", "beta"])
def test_other_workspace_header_is_403(ga: httpx.Client, beta: httpx.Client,
                                       version: str) -> None:
    """A workspace id that is not the key's is a 403 permission_error in both versions."""
    client = ga if version == "ga" else beta
    response = client.get("/v1/files", headers={"anthropic-workspace-id": "wrkspc_other"})
    assert_error(response, 403, "permission_error",
                 "workspace `wrkspc_other` is not accessible with this key")


def test_moving_the_key_to_another_workspace(ga: httpx.Client, emu: RunningEmulator) -> None:
    """After set_workspace the answers name the new workspace and the old files are not seen."""
    file_id = str(upload(ga, "a.txt")["id"])
    emu.set_workspace("wrkspc_moved")
    moved = ga.get("/v1/files")
    old_header = ga.get("/v1/files", headers={"anthropic-workspace-id": "wrkspc_emulator"})
    expected = ("wrkspc_moved", [], 404, 403, [])
    assert expected == (moved.headers["anthropic-workspace-id"], moved.json()["data"],
                        ga.get(f"/v1/files/{file_id}").status_code, old_header.status_code,
                        emu.stored())
    emu.set_workspace("wrkspc_emulator")
    assert [file_id] == page(ga)[0]


def test_workspace_control_endpoint(emu: RunningEmulator, ga: httpx.Client) -> None:
    """GET/PUT /_emulator/workspace read and move the key's workspace; bad ids are 400."""
    url = f"{emu.base_url}/_emulator/workspace"
    expected = {"workspace_id": "wrkspc_emulator"}
    assert expected == control(emu).get(url).json()
    put = control(emu).put(url, json={"workspace_id": "wrkspc_011CZkZaBF1tNoB5wlCeusgy"})
    expected_put = (200, {"workspace_id": "wrkspc_011CZkZaBF1tNoB5wlCeusgy"},
                    "wrkspc_011CZkZaBF1tNoB5wlCeusgy")
    assert expected_put == (put.status_code, put.json(),
                            ga.get("/v1/files").headers["anthropic-workspace-id"])
    bad = [control(emu).put(url, json=body).status_code
           for body in ({"workspace_id": "nope"}, {"workspace_id": "wrkspc_"}, {}, [1])]
    assert [400, 400, 400, 400] == bad
    with pytest.raises(ValueError, match="wrkspc_"):
        emu.set_workspace("org_123")


def test_configured_workspace_id(tmp_path: Path) -> None:
    """EmulatorConfig.workspace_id is the one answers name; a malformed one is refused."""
    with run_emulator(EmulatorConfig(data_dir=tmp_path / "d", workspace_id="wrkspc_abc")) as emu:
        response = httpx.get(f"{emu.base_url}/v1/files", headers=ga_headers(emu.api_key))
    expected = ("wrkspc_abc", "wrkspc_abc")
    assert expected == (emu.workspace_id, response.headers["anthropic-workspace-id"])
    with pytest.raises(ValueError, match="workspace"):
        EmulatorConfig(data_dir=tmp_path, workspace_id="workspace-1")


# --------------------------------------------------------------------------------------------
# Expiry


def test_expiry_with_injected_clock(ga: httpx.Client, beta: httpx.Client,
                                    clock: FakeClock) -> None:
    """expires_in_seconds sets expires_at; from then on the file is a 404 file_expired."""
    created = upload(ga, "temp.txt", expires_in_seconds="3600")
    file_id = str(created["id"])
    expected_expiry = "2025-06-15T16:06:40.000000Z"
    assert expected_expiry == created["expires_at"]
    clock.advance(3599)
    assert [file_id] == page(ga)[0]
    clock.advance(1)
    message = f"File `{file_id}` has expired."
    for response in (ga.get(f"/v1/files/{file_id}"), ga.delete(f"/v1/files/{file_id}"),
                     ga.get(f"/v1/files/{file_id}/content")):
        assert_error(response, 404, "not_found_error", message, code="file_expired")
    assert_error(beta.get(f"/v1/files/{file_id}"), 404, "not_found_error",
                 f"File `{file_id}` not found.")
    expected = ([], [])
    assert expected == (page(ga)[0], beta.get("/v1/files").json()["data"])


def test_expiry_of_a_downloadable_seeded_file(ga: httpx.Client, emu: RunningEmulator,
                                              clock: FakeClock) -> None:
    """A downloadable file's content is served until it expires, then it is file_expired."""
    file_id = emu.seed_foreign("out.csv", b"a,b\n", "text/csv", downloadable=True,
                               expires_in_seconds=60)
    first = ga.get(f"/v1/files/{file_id}/content")
    clock.advance(60)
    expected = (200, b"a,b\n")
    assert expected == (first.status_code, first.content)
    assert_error(ga.get(f"/v1/files/{file_id}/content"), 404, "not_found_error",
                 code="file_expired")


@pytest.mark.parametrize(
    ("value", "message"),
    [("3599", "expires_in_seconds: Input should be greater than or equal to 3600"),
     ("7776001", "expires_in_seconds: Input should be less than or equal to 7776000"),
     ("soon", "expires_in_seconds: Input should be a valid integer"),
     ("", "expires_in_seconds: Input should be a valid integer"),
     ("1" * 70, "expires_in_seconds: Input should be a valid integer")],
)
def test_bad_expires_in_seconds_is_400(ga: httpx.Client, emu: RunningEmulator, value: str,
                                       message: str) -> None:
    """expires_in_seconds outside 3600..7776000, or not an integer, is a 400; nothing stored."""
    response = raw_upload(ga, field("expires_in_seconds", value) + raw_part("a.txt") + closing())
    assert_error(response, 400, "invalid_request_error", message)
    expected = ([], [])
    assert expected == (emu.stored(), list((emu.data_dir / "tmp").iterdir()))


def test_expires_field_may_come_after_the_file(ga: httpx.Client) -> None:
    """The expires_in_seconds part is read wherever it stands; 7776000 is the longest."""
    response = raw_upload(ga, raw_part("a.txt") + field("expires_in_seconds", "7776000")
                          + closing())
    expected = (200, "2025-09-13T15:06:40.000000Z")
    assert expected == (response.status_code, response.json()["expires_at"])


def test_expires_field_twice_or_alone_is_400(ga: httpx.Client) -> None:
    """Two expires_in_seconds parts are a 400, and the field alone still lacks the file."""
    twice = raw_upload(ga, field("expires_in_seconds", "3600") + raw_part("a.txt")
                       + field("expires_in_seconds", "3600") + closing())
    assert_error(twice, 400, "invalid_request_error",
                 "expires_in_seconds: exactly one value is allowed")
    alone = raw_upload(ga, field("expires_in_seconds", "3600") + closing())
    assert_error(alone, 400, "invalid_request_error", "file: Field required")


def test_2023_ignores_expires_in_seconds(beta: httpx.Client, emu: RunningEmulator) -> None:
    """2023-06-01 ignores the field, as it ignores every other form field: no expiry."""
    created = upload(beta, "a.txt", expires_in_seconds="5")
    expected = (False, None)
    assert expected == ("expires_at" in created, emu.stored()[0].expires_at)


# --------------------------------------------------------------------------------------------
# Error codes, quota


def test_ga_download_of_upload_has_file_not_downloadable(ga: httpx.Client) -> None:
    """In GA the 400 for downloading an upload carries error_code file_not_downloadable."""
    file_id = upload(ga, "a.txt")["id"]
    assert_error(ga.get(f"/v1/files/{file_id}/content"), 400, "invalid_request_error",
                 "File is not downloadable", code="file_not_downloadable")


def test_quota_is_400_in_ga_and_403_in_2023(ga: httpx.Client, beta: httpx.Client,
                                            emu: RunningEmulator) -> None:
    """Past quota_bytes, GA answers 400 storage_quota_exceeded and 2023-06-01 403; no file."""
    emu.set_faults(Faults(quota_bytes=10))
    kept = str(upload(ga, "six.txt", b"123456")["id"])
    message = "Storage quota exceeded: delete files to make room for new uploads"
    assert_error(ga.post("/v1/files", files={"file": ("five.txt", b"12345")}), 400,
                 "invalid_request_error", message, code="storage_quota_exceeded")
    assert_error(beta.post("/v1/files", files={"file": ("five.txt", b"12345")}), 403,
                 "permission_error", message)
    expected = ([kept], [])
    assert expected == ([f.id for f in emu.stored()], list((emu.data_dir / "tmp").iterdir()))
    expected_status = 200  # exactly at the quota is fine
    assert expected_status == upload_status(ga, b"1234")


def upload_status(client: httpx.Client, content: bytes) -> int:
    return client.post("/v1/files", files={"file": ("x.txt", content)}).status_code


def test_quota_frees_up_on_delete_and_expiry(ga: httpx.Client, emu: RunningEmulator,
                                             clock: FakeClock) -> None:
    """Deleted and expired files stop counting against the quota at once."""
    emu.set_faults(Faults(quota_bytes=10))
    deleted = str(upload(ga, "a.txt", b"12345")["id"])
    upload(ga, "b.txt", b"12345", expires_in_seconds="3600")
    full = upload_status(ga, b"1")
    ga.delete(f"/v1/files/{deleted}")
    after_delete = upload_status(ga, b"12345")
    clock.advance(3600)
    after_expiry = upload_status(ga, b"12345")
    expected = (400, 200, 200)
    assert expected == (full, after_delete, after_expiry)


def test_quota_counts_every_workspace(ga: httpx.Client, emu: RunningEmulator) -> None:
    """The quota is the organization's: files in another workspace count too."""
    emu.set_faults(Faults(quota_bytes=10))
    upload(ga, "a.txt", b"12345678")
    emu.set_workspace("wrkspc_other")
    expected = 400
    assert expected == upload_status(ga, b"123")


def test_quota_through_the_faults_endpoint(emu: RunningEmulator, ga: httpx.Client) -> None:
    """PUT /_emulator/faults sets quota_bytes; bad values are refused."""
    url = f"{emu.base_url}/_emulator/faults"
    put = control(emu).put(url, json={"quota_bytes": 0})
    expected = (200, 0, 400, 200)
    assert expected == (put.status_code, emu.faults.quota_bytes, upload_status(ga, b"x"),
                        upload_status(ga, b""))
    bad = [control(emu).put(url, json={"quota_bytes": v}).status_code for v in (-1, 1.5, True, "1")]
    assert [400, 400, 400, 400] == bad


# --------------------------------------------------------------------------------------------
# Filenames


@pytest.mark.parametrize(
    ("sent", "mime", "stored"),
    [("docs/a.txt", "text/plain", "a.txt"), ("/abs/deep/r.pdf", "application/pdf", "r.pdf"),
     ("dir/", "text/plain", "unnamed.txt"), ("", "application/pdf", "unnamed.pdf"),
     (None, "image/png", "unnamed.png"), (None, "text/plain; charset=utf-8", "unnamed.txt"),
     (None, "application/x-unknown", "unnamed"), (None, None, "unnamed")],
)
def test_ga_keeps_the_final_path_component(ga: httpx.Client, sent: str | None,
                                           mime: str | None, stored: str) -> None:
    """GA stores the last /-separated part of the filename; none at all becomes unnamed+ext."""
    response = raw_upload(ga, raw_part(sent, mime=mime) + closing())
    expected = (200, stored)
    assert expected == (response.status_code, response.json()["filename"])


@pytest.mark.parametrize("name", ["a|b.txt", "dir/a\\b.txt", "x/" + "y" * 256, "a\x01b", "a:b"])
def test_ga_other_filename_rules_stay(ga: httpx.Client, name: str) -> None:
    """Forbidden characters other than /, control characters and length still give a 400."""
    final = name.rsplit("/", 1)[-1]
    assert_error(raw_upload(ga, raw_part(name) + closing()), 400, "invalid_request_error",
                 filename_problem(final))


def test_2023_still_refuses_a_slash(beta: httpx.Client) -> None:
    """2023-06-01 refuses a / in the filename."""
    assert_error(raw_upload(beta, raw_part("docs/a.txt") + closing()), 400,
                 "invalid_request_error", "filename must not contain '/'")


# --------------------------------------------------------------------------------------------
# Session-scoped files


def test_session_files_show_their_scope_in_ga_only(ga: httpx.Client, beta: httpx.Client,
                                                   emu: RunningEmulator) -> None:
    """A seeded session file has scope in GA get/list; 2023-06-01 lists it without scope."""
    plain = emu.seed_foreign("plain.txt", b"x")
    scoped = emu.seed_foreign("out.md", b"# hi", "text/markdown",
                              scope=FileScope("session", "sesn_011Cabc"))
    got = ga.get(f"/v1/files/{scoped}").json()
    listed = {f["id"]: f["scope"] for f in ga.get("/v1/files").json()["data"]}
    old = beta.get(f"/v1/files/{scoped}").json()
    expected = ({"type": "session", "id": "sesn_011Cabc"},
                {scoped: {"type": "session", "id": "sesn_011Cabc"}, plain: None}, False)
    assert expected == (got["scope"], listed, "scope" in old)
    expected_filter = ([scoped], None)
    assert expected_filter == page(ga, scope_id="sesn_011Cabc")


def test_seed_endpoint_takes_a_scope(emu: RunningEmulator, ga: httpx.Client) -> None:
    """POST /_emulator/seed accepts scope (and expires_in_seconds); a bad scope is a 400."""
    url = f"{emu.base_url}/_emulator/seed"
    content = base64.b64encode(b"x").decode()
    seeded = control(emu).post(url, json={"filename": "s.txt", "content_base64": content,
                                   "scope": {"type": "session", "id": "sesn_1"},
                                   "expires_in_seconds": 3600}).json()["id"]
    got = ga.get(f"/v1/files/{seeded}").json()
    expected = ({"type": "session", "id": "sesn_1"}, "2025-06-15T16:06:40.000000Z")
    assert expected == (got["scope"], got["expires_at"])
    bad_bodies = [{"scope": {"type": "agent", "id": "x"}}, {"scope": {"type": "session"}},
                  {"scope": "sesn_1"}, {"expires_in_seconds": "60"}, {"expires_in_seconds": 0}]
    statuses = [control(emu).post(url, json={"filename": "b.txt", "content_base64": content} | body)
                .status_code for body in bad_bodies]
    assert [400] * len(bad_bodies) == statuses


# --------------------------------------------------------------------------------------------
# The store on disk and the CLI


def test_fresh_data_dir_gets_the_new_columns(tmp_path: Path) -> None:
    """A fresh data dir's table has the expiry, scope and workspace columns."""
    FileStore(tmp_path, lambda: 0.0, 2.0).close()
    with sqlite3.connect(tmp_path / "meta.sqlite3") as db:
        columns = {row[1] for row in db.execute("PRAGMA table_info(files)")}
    assert {"seq", "expires_at", "scope_type", "scope_id", "workspace"} <= columns


def test_data_dir_from_before_the_ga_columns_opens(tmp_path: Path, clock: FakeClock) -> None:
    """A data dir made by the 2023-only emulator gains the new columns and keeps its files."""
    with sqlite3.connect(tmp_path / "meta.sqlite3") as db:
        db.execute("CREATE TABLE files (seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT NOT NULL"
                   " UNIQUE, filename TEXT NOT NULL, mime_type TEXT NOT NULL, size INTEGER NOT"
                   " NULL, sha256 TEXT NOT NULL, created_at TEXT NOT NULL, downloadable INTEGER"
                   " NOT NULL, is_foreign INTEGER NOT NULL, deleted_at REAL)")
        db.execute("INSERT INTO files (id, filename, mime_type, size, sha256, created_at,"
                   " downloadable, is_foreign) VALUES ('file_old', 'old.txt', 'text/plain', 1,"
                   " 'x', '2025-01-01T00:00:00.000000Z', 0, 0)")
    with run_emulator(EmulatorConfig(data_dir=tmp_path, clock=clock)) as emu:
        expected = ["file_old"]
        assert expected == [f.id for f in emu.stored()]


def parse_cli(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_emulator_arguments(parser)
    return parser.parse_args(list(argv))


@pytest.mark.parametrize(("argv", "flag"),
                         [(["--page-max", "0"], "--page-max"),
                          (["--quota-bytes", "-1"], "--quota-bytes"),
                          (["--workspace-id", "team-1"], "--workspace-id")])
def test_cli_rejects_bad_ga_values(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                   argv: list[str], flag: str) -> None:
    """A bad --page-max, --quota-bytes or --workspace-id is one line naming it, and exit 2."""
    expected = 2
    assert expected == run_emulator_cli(parse_cli("--data", str(tmp_path), *argv))
    err = capsys.readouterr().err
    expected_err = (1, True)
    assert expected_err == (len(err.strip().splitlines()),
                            err.startswith(f"syncd emulator: {flag}"))


def test_cli_ga_options_reach_the_config(tmp_path: Path) -> None:
    """--page-max, --workspace-id and --quota-bytes end up in the emulator's config."""
    from syncd.emulator.cli import _config_from

    cfg = _config_from(parse_cli("--data", str(tmp_path), "--page-max", "7",
                                 "--workspace-id", "wrkspc_cli", "--quota-bytes", "99"))
    expected = (7, "wrkspc_cli", 99)
    assert expected == (cfg.page_max, cfg.workspace_id, cfg.faults.quota_bytes)
