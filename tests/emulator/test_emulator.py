"""The emulator over a real loopback socket: the Files API contract, faults, controls, CLI."""

from __future__ import annotations

import argparse
import base64
import hashlib
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import tracemalloc
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import yaml

from syncd.emulator.app import (
    OPENAPI_PATH,
    EmulatorConfig,
    RunningEmulator,
    run_emulator,
)
from syncd.emulator.cli import add_emulator_arguments, run_emulator_cli
from syncd.emulator.faults import Faults
from syncd.remote.names import filename_problem
from tests.conftest import control

pytestmark = pytest.mark.timeout(60)

REQUEST_ID = re.compile(r"req_011C[0-9A-Za-z]{20}")
FILE_ID = re.compile(r"file_011C[0-9A-Za-z]{20}")
CREATED_AT = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z")
BOUNDARY = "syncd-test-boundary"


class FakeClock:
    """A clock that moves only when told to."""

    def __init__(self) -> None:
        self.now = 1_750_000_000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def api_headers(key: str) -> dict[str, str]:
    return {"x-api-key": key, "anthropic-version": "2023-06-01",
            "anthropic-beta": "files-api-2025-04-14"}


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "data"


@pytest.fixture
def emu(data_dir: Path, clock: FakeClock) -> Iterator[RunningEmulator]:
    with run_emulator(EmulatorConfig(data_dir=data_dir, clock=clock)) as running:
        yield running


@pytest.fixture
def client(emu: RunningEmulator) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=emu.base_url, headers=api_headers(emu.api_key),
                      timeout=10) as c:
        yield c


def upload(client: httpx.Client, name: str, content: bytes = b"hello",
           mime: str = "text/plain") -> dict[str, object]:
    response = client.post("/v1/files", files={"file": (name, content, mime)})
    expected = 200
    assert expected == response.status_code, response.text
    body: dict[str, object] = response.json()
    return body


def raw_part(filename: str | None, content: bytes = b"x", mime: str | None = "text/plain",
             name: str = "file") -> bytes:
    """One multipart part, quoting the filename by hand (httpx would percent-encode it)."""
    disposition = f'form-data; name="{name}"'
    if filename is not None:
        quoted = filename.replace("\\", "\\\\").replace('"', '\\"')
        disposition += f'; filename="{quoted}"'
    head = f"--{BOUNDARY}\r\nContent-Disposition: {disposition}\r\n"
    if mime is not None:
        head += f"Content-Type: {mime}\r\n"
    return head.encode() + b"\r\n" + content + b"\r\n"


def raw_upload(client: httpx.Client, body: bytes,
               content_type: str = f"multipart/form-data; boundary={BOUNDARY}") -> httpx.Response:
    return client.post("/v1/files", content=body, headers={"content-type": content_type})


def closing() -> bytes:
    return f"--{BOUNDARY}--\r\n".encode()


def assert_error(response: httpx.Response, status: int, kind: str,
                 message: str | None = None) -> None:
    """The response is the service's nested error shape with this status, type and message."""
    body = response.json()
    expected = {
        "type": "error",
        "error": {"type": kind,
                  "message": body["error"]["message"] if message is None else message},
        "request_id": response.headers.get("request-id"),
    }
    assert (status, expected) == (response.status_code, body)
    assert REQUEST_ID.fullmatch(body["request_id"])


def list_ids(client: httpx.Client, **params: object) -> tuple[list[str], dict[str, object]]:
    response = client.get("/v1/files", params=params)
    expected = 200
    assert expected == response.status_code, response.text
    body = response.json()
    return [f["id"] for f in body["data"]], body


# --------------------------------------------------------------------------------------------
# The contract


def test_round_trip_upload_get_list_delete(client: httpx.Client, clock: FakeClock) -> None:
    """An upload is a File object that GET and LIST show and DELETE removes."""
    created = upload(client, "notes.txt", b"hello world")
    assert FILE_ID.fullmatch(str(created["id"]))
    assert CREATED_AT.fullmatch(str(created["created_at"]))
    expected = {"id": created["id"], "type": "file", "filename": "notes.txt",
                "mime_type": "text/plain", "size_bytes": 11,
                "created_at": "2025-06-15T15:06:40.000000Z", "downloadable": False}
    assert expected == created
    assert expected == client.get(f"/v1/files/{created['id']}").json()
    _, body = list_ids(client)
    assert {"data": [expected], "first_id": created["id"], "last_id": created["id"],
            "has_more": False} == body
    deleted = client.delete(f"/v1/files/{created['id']}")
    assert (200, {"id": created["id"], "type": "file_deleted"}) == (deleted.status_code,
                                                                    deleted.json())
    assert_error(client.get(f"/v1/files/{created['id']}"), 404, "not_found_error",
                 f"File `{created['id']}` not found.")


def test_every_response_has_a_request_id(client: httpx.Client) -> None:
    """Success and error answers alike carry a request-id header in the service's format."""
    responses = [client.get("/v1/files"), client.get("/v1/files/nope"), client.get("/v1/nope"),
                 client.get("/v1/files", headers={"x-api-key": "wrong"})]
    assert all(REQUEST_ID.fullmatch(r.headers["request-id"]) for r in responses)


def test_list_pages_forward_with_after_id_newest_first(client: httpx.Client) -> None:
    """limit=2 pages through 5 files newest first; has_more is false only on the last page."""
    ids = [str(upload(client, f"f{i}.txt")["id"]) for i in range(5)]
    newest_first = ids[::-1]
    pages, after = [], None
    for _ in range(5):  # bounded: 3 pages expected
        params: dict[str, object] = {"limit": 2} | ({"after_id": after} if after else {})
        page, body = list_ids(client, **params)
        pages.append((page, body["has_more"]))
        after = body["last_id"]
        if not body["has_more"]:
            break
    expected = [(newest_first[0:2], True), (newest_first[2:4], True), (newest_first[4:], False)]
    assert expected == pages


def test_list_pages_backward_with_before_id(client: httpx.Client) -> None:
    """before_id gives the files just newer than the cursor, still newest first."""
    ids = [str(upload(client, f"f{i}.txt")["id"]) for i in range(5)]
    page, body = list_ids(client, limit=2, before_id=ids[0])
    assert ([ids[2], ids[1]], True) == (page, body["has_more"])
    page, body = list_ids(client, limit=2, before_id=ids[2])
    assert ([ids[4], ids[3]], False) == (page, body["has_more"])
    page, body = list_ids(client, limit=2, before_id=ids[4])
    expected = ([], None, None, False)
    assert expected == (page, body["first_id"], body["last_id"], body["has_more"])


def test_list_default_limit_is_20(client: httpx.Client, emu: RunningEmulator) -> None:
    """Without limit a page holds 20 files."""
    for i in range(21):
        emu.seed_foreign(f"f{i}.txt", b"x")
    page, body = list_ids(client)
    expected = (20, True)
    assert expected == (len(page), body["has_more"])


@pytest.mark.parametrize(
    ("limit", "message"),
    [("0", "limit: Input should be greater than or equal to 1"),
     ("1001", "limit: Input should be less than or equal to 1000"),
     ("x", "limit: Input should be a valid integer"),
     ("1.5", "limit: Input should be a valid integer"),
     ("", "limit: Input should be a valid integer")],
)
def test_bad_limit_is_400(client: httpx.Client, limit: str, message: str) -> None:
    """limit must be an integer from 1 to 1000."""
    assert_error(client.get("/v1/files", params={"limit": limit}), 400,
                 "invalid_request_error", message)


def test_bad_cursors_are_400(client: httpx.Client) -> None:
    """Both cursors together, or a cursor naming no file, are invalid requests."""
    file_id = upload(client, "a.txt")["id"]
    both = client.get("/v1/files", params={"after_id": file_id, "before_id": file_id})
    assert_error(both, 400, "invalid_request_error",
                 "after_id and before_id cannot be given together")
    unknown = client.get("/v1/files", params={"after_id": "file_unknown"})
    assert_error(unknown, 400, "invalid_request_error", "after_id: no file with id `file_unknown`")


def test_cursor_of_deleted_file_stays_valid(client: httpx.Client, clock: FakeClock) -> None:
    """Paging from a file deleted long ago still works: its place in the order is kept."""
    old, mid, new = (str(upload(client, f"{n}.txt")["id"]) for n in ("old", "mid", "new"))
    client.delete(f"/v1/files/{mid}")
    clock.advance(3600)
    assert ([old], [new]) == (list_ids(client, after_id=mid)[0], list_ids(client, before_id=mid)[0])


def test_garbage_query_parameters_are_ignored(client: httpx.Client) -> None:
    """Unknown query parameters (the SDK adds beta=true) do not change the answer."""
    file_id = upload(client, "a.txt")["id"]
    assert [file_id] == list_ids(client, beta="true", foo="%00\u2603")[0]


@pytest.mark.parametrize("key", [None, "sk-ant-wrong-key-123"])
def test_missing_or_wrong_key_is_401_without_echo(emu: RunningEmulator, key: str | None) -> None:
    """Without the right x-api-key every operation is 401 and the body never echoes a key."""
    headers = api_headers(emu.api_key)
    del headers["x-api-key"]
    if key is not None:
        headers["x-api-key"] = key
    with httpx.Client(base_url=emu.base_url, headers=headers) as c:
        responses = [c.get("/v1/files"), c.get("/v1/files/x"), c.delete("/v1/files/x"),
                     c.get("/v1/files/x/content"),
                     c.post("/v1/files", files={"file": ("a.txt", b"x")})]
    for response in responses:
        assert_error(response, 401, "authentication_error")
        assert emu.api_key not in response.text
        assert key is None or key not in response.text
    expected = []
    assert expected == emu.stored()


@pytest.mark.parametrize(
    ("header", "value", "message"),
    [("anthropic-version", None, "anthropic-version: header is required"),
     ("anthropic-version", "2024-01-01",
      "anthropic-version: this server speaks only 2023-06-01 and 2026-10-21"),
     ("anthropic-beta", None,
      "anthropic-beta: header is required (the Files API needs files-api-2025-04-14)"),
     ("anthropic-beta", "other-beta-2024-01-01",
      "anthropic-beta: must include files-api-2025-04-14")],
)
def test_version_and_beta_headers_are_required(emu: RunningEmulator, header: str,
                                               value: str | None, message: str) -> None:
    """A missing or wrong anthropic-version or anthropic-beta header is a 400 naming it."""
    headers = api_headers(emu.api_key)
    del headers[header]
    if value is not None:
        headers[header] = value
    response = httpx.get(f"{emu.base_url}/v1/files", headers=headers)
    assert_error(response, 400, "invalid_request_error", message)


def test_beta_header_may_list_several_betas(client: httpx.Client) -> None:
    """The Files API beta may be one of several comma-separated betas."""
    response = client.get("/v1/files", headers={"anthropic-beta": "x-1, files-api-2025-04-14"})
    expected = 200
    assert expected == response.status_code


@pytest.mark.parametrize(
    "name", [f"a{ch}b.txt" for ch in '<>:"|?*\\/'] + ["x" * 256, "a\x01b", "tab\there", ""],
)
def test_bad_filenames_are_400(client: httpx.Client, emu: RunningEmulator, name: str) -> None:
    """Each forbidden character, an over-long name, a control character or no name is a 400."""
    response = raw_upload(client, raw_part(name) + closing())
    assert_error(response, 400, "invalid_request_error", filename_problem(name))
    expected = []
    assert expected == emu.stored()


def test_longest_and_unicode_filenames_are_kept(client: httpx.Client) -> None:
    """A 255-character name and a non-ASCII name are stored exactly."""
    names = ["y" * 255, "résumé 2024 ☃.txt"]
    assert names == [upload(client, n)["filename"] for n in names]


def test_part_content_type_becomes_mime_type(client: httpx.Client) -> None:
    """The part's Content-Type is the mime_type; without one it is application/octet-stream."""
    with_type = raw_upload(client, raw_part("a.pdf", mime="application/pdf") + closing())
    without = raw_upload(client, raw_part("b.bin", mime=None) + closing())
    expected = ["application/pdf", "application/octet-stream"]
    assert expected == [
        with_type.json()["mime_type"], without.json()["mime_type"]]


@pytest.mark.parametrize(
    ("body", "content_type", "message"),
    [(raw_part(None, name="other") + closing(), None, "file: Field required"),
     (closing(), None, "file: Field required"),
     (b'{"file": "x"}', "application/json", "file: Field required"),
     (b"", None, "file: Field required"),
     (raw_part("a.txt"), None,
      "Invalid multipart/form-data body: it ends before the closing boundary"),
     (b"this is not multipart at all", None, "Invalid multipart/form-data body"),
     (raw_part("a.txt") + closing(), "multipart/form-data",
      "Invalid multipart/form-data body: the Content-Type has no boundary"),
     (raw_part(None) + closing(), None,
      "file: the part must be a file (Content-Disposition needs a filename)"),
     (raw_part("a.txt") + raw_part("b.txt") + closing(), None,
      "file: exactly one part named `file` is allowed")],
)
def test_malformed_uploads_are_400_never_500(client: httpx.Client, emu: RunningEmulator,
                                             body: bytes, content_type: str | None,
                                             message: str) -> None:
    """Missing, extra or broken multipart parts are a clean 400 and store nothing."""
    response = raw_upload(client, body, content_type or f"multipart/form-data; boundary={BOUNDARY}")
    assert_error(response, 400, "invalid_request_error", message)
    expected = []
    assert expected == emu.stored()
    expected = []
    assert expected == list((emu.data_dir / "tmp").iterdir())


def test_other_form_fields_are_ignored(client: httpx.Client) -> None:
    """A plain field beside the file part does not disturb the upload."""
    response = raw_upload(client, raw_part(None, b"v", None, "purpose") + raw_part("a.txt")
                          + closing())
    expected = (200, "a.txt")
    assert expected == (response.status_code, response.json()["filename"])


@pytest.mark.parametrize("size", [1001, 1024 * 1024 + 2000])
def test_oversize_upload_is_413_edge_body(tmp_path: Path, size: int) -> None:
    """Over max_file_bytes (found while streaming or from Content-Length) is the edge's 413."""
    with run_emulator(EmulatorConfig(data_dir=tmp_path, max_file_bytes=1000)) as emu, \
            httpx.Client(base_url=emu.base_url, headers=api_headers(emu.api_key)) as c:
        response = c.post("/v1/files", files={"file": ("big.bin", b"x" * size)})
        exact = c.post("/v1/files", files={"file": ("fits.bin", b"x" * 1000)})
        names = [f.filename for f in emu.stored()]
        leftovers = list((tmp_path / "tmp").iterdir())
    expected = {"error": {"type": "request_too_large",
                          "message": "Request exceeds the maximum size"}}
    assert (413, expected) == (response.status_code, response.json())
    expected = (200, ["fits.bin"], [])
    assert expected == (exact.status_code, names, leftovers)


@pytest.mark.parametrize(("method", "path"), [("GET", "/v1/files/{}"), ("DELETE", "/v1/files/{}"),
                                              ("GET", "/v1/files/{}/content")])
def test_unknown_id_is_404(client: httpx.Client, method: str, path: str) -> None:
    """An id the workspace never had is not_found on get, delete and download."""
    response = client.request(method, path.format("file_011Cnope"))
    assert_error(response, 404, "not_found_error", "File `file_011Cnope` not found.")


def test_unknown_v1_path_is_404_in_api_shape(client: httpx.Client) -> None:
    """Paths the API does not have answer 404 in the usual error shape."""
    assert_error(client.get("/v1/nothing/here"), 404, "not_found_error", "Not found")


def test_download_of_upload_is_400(client: httpx.Client) -> None:
    """Uploaded files are never downloadable."""
    file_id = upload(client, "a.txt")["id"]
    assert_error(client.get(f"/v1/files/{file_id}/content"), 400, "invalid_request_error",
                 "File is not downloadable")


def test_download_of_downloadable_seeded_file(client: httpx.Client, emu: RunningEmulator) -> None:
    """A downloadable (seeded) file's bytes come back with its content type."""
    content = os.urandom(200_000)
    file_id = emu.seed_foreign("chart.png", content, "image/png", downloadable=True)
    response = client.get(f"/v1/files/{file_id}/content")
    assert (200, "image/png", content) == (response.status_code,
                                           response.headers["content-type"], response.content)


def test_deleted_file_lingers_in_list_only(client: httpx.Client, clock: FakeClock,
                                           emu: RunningEmulator) -> None:
    """After DELETE a file is gone from GET at once but listed until linger_seconds pass."""
    file_id = str(upload(client, "a.txt")["id"])
    client.delete(f"/v1/files/{file_id}")
    expected = 404
    assert expected == client.get(f"/v1/files/{file_id}").status_code
    assert ([file_id], [True]) == (list_ids(client)[0], [f.deleted for f in emu.stored()])
    clock.advance(1.9)
    assert [file_id] == list_ids(client)[0]
    clock.advance(0.2)
    expected = ([], [])
    assert expected == (list_ids(client)[0], emu.stored())
    assert_error(client.delete(f"/v1/files/{file_id}"), 404, "not_found_error")
    assert not (emu.data_dir / "files" / file_id).exists()


def test_data_survives_restart(data_dir: Path, clock: FakeClock) -> None:
    """Stopping and starting on the same directory keeps files, order and foreign marks."""
    cfg = EmulatorConfig(data_dir=data_dir, clock=clock)
    with run_emulator(cfg) as emu, httpx.Client(base_url=emu.base_url,
                                                 headers=api_headers(emu.api_key)) as c:
        first = upload(c, "first.txt", b"one")
        emu.seed_foreign("theirs.txt", b"two")
        before = emu.stored()
    with run_emulator(cfg) as emu, httpx.Client(base_url=emu.base_url,
                                                 headers=api_headers(emu.api_key)) as c:
        assert before == emu.stored()
        assert first == c.get(f"/v1/files/{first['id']}").json()
        expected = ["theirs.txt", "first.txt"]
        assert expected == [f["filename"] for f in c.get("/v1/files").json()["data"]]


def test_concurrent_uploads_all_land(client: httpx.Client, emu: RunningEmulator) -> None:
    """Eight uploads at once each get their own id and stored content."""
    results: list[dict[str, object]] = []
    lock = threading.Lock()

    def one(i: int) -> None:
        body = upload(client, f"c{i}.txt", f"content {i}".encode() * 10_000)
        with lock:
            results.append(body)

    threads = [threading.Thread(target=one, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    stored = {f.filename: f.sha256 for f in emu.stored()}
    expected = {f"c{i}.txt": hashlib.sha256(f"content {i}".encode() * 10_000).hexdigest()
                for i in range(8)}
    assert (8, expected) == (len({r["id"] for r in results}), stored)


def test_large_upload_streams_to_disk(client: httpx.Client, emu: RunningEmulator,
                                      tmp_path: Path) -> None:
    """A 24 MB upload is stored with the right sha256 without holding it in memory."""
    source = tmp_path / "big.bin"
    block = os.urandom(1024 * 1024)
    with source.open("wb") as f:
        for i in range(24):
            f.write(block[i:] + block[:i])
    tracemalloc.start()
    try:
        with source.open("rb") as f:
            response = client.post("/v1/files", files={"file": ("big.bin", f, "application/pdf")})
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    expected = 200
    assert expected == response.status_code
    stored = emu.stored()[0]
    assert (hashlib.sha256(source.read_bytes()).hexdigest(), 24 * 1024 * 1024) == (
        stored.sha256, stored.size)
    assert peak < 12 * 1024 * 1024, f"peak traced memory {peak} bytes for a 24 MB upload"


# --------------------------------------------------------------------------------------------
# Faults


def test_rate_limit_answers_429_with_retry_after(client: httpx.Client, emu: RunningEmulator,
                                                 clock: FakeClock) -> None:
    """Past the burst every /v1 call is 429 with retry-after until a token frees."""
    emu.set_faults(Faults(rate_limit_rpm=60, rate_limit_burst=2))
    statuses = [client.get("/v1/files").status_code, client.get("/v1/files/x").status_code]
    limited = client.post("/v1/files", files={"file": ("a.txt", b"x")})
    assert_error(limited, 429, "rate_limit_error", "Rate limited")
    clock.advance(1.0)
    after_a_second = [client.get("/v1/files") for _ in range(2)]
    expected = ([200, 404], "1", [200, 429], "1", [])
    assert expected == (statuses, limited.headers["retry-after"],
                        [r.status_code for r in after_a_second],
                        after_a_second[1].headers["retry-after"], emu.stored())


def test_rate_limit_retry_after_counts_whole_seconds(client: httpx.Client, emu: RunningEmulator,
                                                     clock: FakeClock) -> None:
    """At 6 requests a minute a token takes 10 s, so retry-after is 10, then less as time passes."""
    emu.set_faults(Faults(rate_limit_rpm=6))
    expected = 200
    assert expected == client.get("/v1/files").status_code
    first = client.get("/v1/files").headers["retry-after"]
    clock.advance(7.5)
    expected = ("10", "3")
    assert expected == (first, client.get("/v1/files").headers["retry-after"])


def test_error_rate_one_gives_only_500_and_529(client: httpx.Client,
                                               emu: RunningEmulator) -> None:
    """With error_rate=1 every call is 500 api_error or 529 overloaded_error and has no effect."""
    emu.seed_foreign("keep.txt", b"x")
    emu.set_faults(Faults(error_rate=1.0))
    responses = [client.post("/v1/files", files={"file": (f"{i}.txt", b"x")}) for i in range(10)]
    responses += [client.delete(f"/v1/files/{emu.stored()[0].id}") for _ in range(10)]
    kinds = {(r.status_code, r.json()["error"]["type"]) for r in responses}
    assert {(500, "api_error"), (529, "overloaded_error")} == kinds
    expected = ["keep.txt"]
    assert expected == [f.filename for f in emu.stored()]


def test_drop_upload_is_transport_error_and_stores_nothing(client: httpx.Client,
                                                           emu: RunningEmulator) -> None:
    """A dropped upload reaches the client as a transport error, never an HTTP answer."""
    emu.set_faults(Faults(drop_upload_rate=1.0))
    for size in (10, 2_000_000):
        with pytest.raises(httpx.TransportError):
            client.post("/v1/files", files={"file": ("a.txt", b"x" * size)})
    expected = ([], [], [])
    assert expected == (emu.stored(), list((emu.data_dir / "files").iterdir()),
                            list((emu.data_dir / "tmp").iterdir()))
    expected = 2
    assert expected == emu.stats()["fault:drop_upload"]


def test_lose_response_stores_the_file_but_drops_the_answer(client: httpx.Client,
                                                            emu: RunningEmulator) -> None:
    """A lost response is a transport error, yet the file is stored and listed."""
    emu.set_faults(Faults(lose_response_rate=1.0))
    with pytest.raises(httpx.TransportError):
        client.post("/v1/files", files={"file": ("lost.txt", b"hello")})
    emu.set_faults(Faults())
    expected = (["lost.txt"], ["lost.txt"])
    assert expected == (
        [f.filename for f in emu.stored()],
        [f["filename"] for f in client.get("/v1/files").json()["data"]])


def test_faults_are_reproducible_with_a_seed(tmp_path: Path) -> None:
    """Two emulators with the same seed fail the same calls."""
    def run(seed: int, sub: str) -> list[int]:
        faults = Faults(error_rate=0.5)
        with run_emulator(EmulatorConfig(data_dir=tmp_path / sub, faults=faults, seed=seed)) as e:
            return [httpx.get(f"{e.base_url}/v1/files", headers=api_headers(e.api_key)).status_code
                    for _ in range(12)]
    first, second = run(7, "a"), run(7, "b")
    assert first == second
    assert {200, 500, 529} >= set(first) and len(set(first)) > 1


def test_latency_fault_still_answers(client: httpx.Client, emu: RunningEmulator) -> None:
    """With added latency the answers are unchanged (the delay itself is not timed here)."""
    emu.set_faults(Faults(latency_seconds=0.01))
    expected = [200, 404]
    assert expected == [client.get("/v1/files").status_code,
                        client.get("/v1/files/x").status_code]


def test_faults_validate_their_values() -> None:
    """Out-of-range fault settings are refused with the field's name."""
    for kwargs, text in [({"error_rate": 1.5}, "error_rate"), ({"latency_seconds": -1}, "latency"),
                         ({"rate_limit_rpm": 0}, "rate_limit_rpm")]:
        with pytest.raises(ValueError, match=text):
            Faults(**kwargs)  # type: ignore[arg-type]
    expected = 10
    assert expected == Faults(rate_limit_rpm=100).burst


# --------------------------------------------------------------------------------------------
# Stats and control endpoints


def test_stats_count_requests_per_operation_and_status(client: httpx.Client,
                                                       emu: RunningEmulator) -> None:
    """Each /v1 operation and each (operation, status) pair is counted; controls are not."""
    emu.reset_stats()
    file_id = upload(client, "a.txt")["id"]
    client.get("/v1/files")
    client.get(f"/v1/files/{file_id}")
    client.get(f"/v1/files/{file_id}/content")
    client.delete(f"/v1/files/{file_id}")
    client.delete(f"/v1/files/{file_id}")
    control(emu).get(f"{emu.base_url}/_emulator/stats")
    expected = {"upload": 1, "list": 1, "get": 1, "download": 1, "delete": 2,
            "status:upload:200": 1, "status:list:200": 1, "status:get:200": 1,
            "status:download:400": 1, "status:delete:200": 1, "status:delete:404": 1}
    assert expected == emu.stats()
    emu.reset_stats()
    expected = {"upload": 0, "list": 0, "get": 0, "download": 0, "delete": 0}
    assert expected == emu.stats()


def test_control_endpoints(emu: RunningEmulator, client: httpx.Client) -> None:
    """Faults, files, seeding, stats and the OpenAPI document are reachable with the key."""
    base = f"{emu.base_url}/_emulator"
    put = control(emu).put(f"{base}/faults", json={"error_rate": 0.25, "rate_limit_rpm": 100})
    assert (200, Faults(error_rate=0.25, rate_limit_rpm=100)) == (put.status_code, emu.faults)
    expected_faults = Faults(error_rate=0.25, rate_limit_rpm=100).to_dict()
    assert expected_faults == control(emu).get(f"{base}/faults").json()
    expected = 400
    assert expected == control(emu).put(f"{base}/faults", json={"error_rate": 2}).status_code
    expected = 400
    assert expected == control(emu).put(f"{base}/faults", json={"nonsense": 1}).status_code
    control(emu).put(f"{base}/faults", json={})
    seeded = control(emu).post(f"{base}/seed", json={"filename": "s.txt", "content_base64":
                        base64.b64encode(b"seeded").decode(), "downloadable": True})
    file_id = seeded.json()["id"]
    expected = b"seeded"
    assert expected == client.get(f"/v1/files/{file_id}/content").content
    expected = 400
    bad_seed = control(emu).post(f"{base}/seed", json={"filename": "a/b", "content_base64": ""})
    assert expected == bad_seed.status_code
    files = control(emu).get(f"{base}/files").json()
    assert [{"id": file_id, "filename": "s.txt", "mime_type": "text/plain", "size": 6,
             "sha256": hashlib.sha256(b"seeded").hexdigest(), "created_at": files[0]["created_at"],
             "downloadable": True, "foreign": True, "deleted": False, "expires_at": None,
             "scope": None}] == files
    expected = 1
    assert expected == control(emu).get(f"{base}/stats").json()["download"]
    expected = 0
    assert expected == control(emu).post(f"{base}/stats/reset").json()["download"]
    spec = yaml.safe_load(control(emu).get(f"{base}/openapi.yaml").text)
    assert yaml.safe_load(OPENAPI_PATH.read_text()) == spec


# --------------------------------------------------------------------------------------------
# CLI hooks


def parse_cli(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_emulator_arguments(parser)
    return parser.parse_args(list(argv))


@pytest.mark.parametrize(
    ("argv", "flag"),
    [(["--error-rate", "1.5"], "--error-rate"),
     (["--drop-upload-rate", "-0.1"], "--drop-upload-rate"),
     (["--lose-response-rate", "2"], "--lose-response-rate"),
     (["--latency", "-1"], "--latency"),
     (["--rate-limit-rpm", "0"], "--rate-limit-rpm"),
     (["--max-file-bytes", "0"], "--max-file-bytes")],
)
def test_cli_rejects_bad_values(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                argv: list[str], flag: str) -> None:
    """A bad flag value is one line on stderr naming the flag, and exit status 2."""
    expected = 2
    assert expected == run_emulator_cli(parse_cli("--data", str(tmp_path), *argv))
    err = capsys.readouterr().err
    expected = (1, True)
    assert expected == (len(err.strip().splitlines()), err.startswith(f"syncd emulator: {flag}"))


def test_cli_rejects_unwritable_data_dir(tmp_path: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    """A data directory that cannot be created is a clear error, not a traceback."""
    blocker = tmp_path / "file"
    blocker.write_text("x")
    expected = 2
    assert expected == run_emulator_cli(parse_cli("--data", str(blocker / "sub")))
    assert capsys.readouterr().err.startswith(f"syncd emulator: --data {blocker / 'sub'}: cannot")


def test_cli_rejects_port_in_use(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A port already taken is one clear line and exit status 2."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        expected = 2
        assert expected == run_emulator_cli(parse_cli("--data", str(tmp_path), "--port", str(port)))
    err = capsys.readouterr().err
    expected = (1, True)
    assert expected == (len(err.strip().splitlines()), f"--port {port}" in err)


def test_cli_defaults_read_the_key_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """--api-key defaults to $SYNCD_EMULATOR_API_KEY, else sk-ant-emulator."""
    monkeypatch.setenv("SYNCD_EMULATOR_API_KEY", "sk-from-env")
    args = parse_cli("--data", "d")
    expected = ("sk-from-env", "127.0.0.1", 8765)
    assert expected == (args.api_key, args.host, args.port)


def test_cli_serves_until_sigterm_and_seeds_foreign_files(tmp_path: Path) -> None:
    """The CLI seeds N foreign files, serves, and exits 0 on SIGTERM."""
    code = ("import argparse, sys; from syncd.emulator.cli import add_emulator_arguments, "
            "run_emulator_cli; p = argparse.ArgumentParser(); add_emulator_arguments(p); "
            "sys.exit(run_emulator_cli(p.parse_args(sys.argv[1:])))")
    argv = [sys.executable, "-c", code, "--data", str(tmp_path), "--port", "0",
            "--seed-foreign", "3"]
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        url = re.search(r"http://\S+", line)
        assert url is not None, line
        files = httpx.get(f"{url.group(0)}/_emulator/files", timeout=5,
                          headers={"x-api-key": "sk-ant-emulator"}).json()
        expected = ["foreign-003.txt", "foreign-002.txt", "foreign-001.txt"]
        assert expected == [
            f["filename"] for f in files]
        proc.send_signal(signal.SIGTERM)
        expected = 0
        assert expected == proc.wait(timeout=15)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(5)


def test_seeding_foreign_files_is_idempotent(data_dir: Path) -> None:
    """Seeding N foreign files again, even after a restart, adds none."""
    with run_emulator(EmulatorConfig(data_dir=data_dir)) as emu:
        first = emu.ensure_foreign_files(3)
    with run_emulator(EmulatorConfig(data_dir=data_dir)) as emu:
        assert (first, 3) == (emu.ensure_foreign_files(3), len(emu.stored()))


def test_a_data_dir_holding_other_files_is_refused_and_left_alone(tmp_path: Path) -> None:
    """`--data ~`: a non-empty directory the emulator did not make is refused; its tmp/ stays."""
    home = tmp_path / "home"
    (home / "tmp").mkdir(parents=True)
    (home / "tmp" / "precious.txt").write_text("mine")
    args = parse_cli("--data", str(home))
    assert 2 == run_emulator_cli(args)
    with pytest.raises(ValueError, match="did not make"):
        run_emulator(EmulatorConfig(data_dir=home)).__enter__()
    assert ["precious.txt"] == os.listdir(home / "tmp")


def test_control_endpoints_need_the_key(emu: RunningEmulator) -> None:
    """Without the key, /_emulator/* answers 401 and changes nothing."""
    base = f"{emu.base_url}/_emulator"
    statuses = [httpx.get(f"{base}/files").status_code,
                httpx.put(f"{base}/faults", json={"error_rate": 1}).status_code,
                httpx.get(f"{base}/stats", headers={"x-api-key": "wrong"}).status_code]
    assert ([401, 401, 401], Faults()) == (statuses, emu.faults)


def test_a_non_loopback_host_is_warned_about(capsys: pytest.CaptureFixture[str]) -> None:
    """--host 0.0.0.0 prints one warning line; loopback does not."""
    from syncd.emulator.cli import _exposure_warning

    assert (None, None, True) == (
        _exposure_warning("127.0.0.1"), _exposure_warning("localhost"),
        "reachable from other machines" in (_exposure_warning("0.0.0.0") or ""))
