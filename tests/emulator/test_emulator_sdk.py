"""The official SDK (anthropic==2.14.0: anthropic-version 2026-10-21, Bearer auth, httpx2)
against the emulator over a real loopback socket: the GA surface end to end.

The 2023-06-01 surface, whose last SDK was anthropic==0.125.0, keeps its raw HTTP contract
tests in test_emulator.py.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import anthropic
import pytest
from anthropic.types import FileExpiredError, FileNotDownloadableError, StorageQuotaExceededError
from anthropic.types.beta import BetaFileScope

from syncd.emulator.app import EmulatorConfig, FileScope, RunningEmulator, run_emulator
from syncd.emulator.faults import Faults
from tests.emulator.test_emulator import FakeClock

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def emu(tmp_path: Path, clock: FakeClock) -> Iterator[RunningEmulator]:
    with run_emulator(EmulatorConfig(data_dir=tmp_path, clock=clock), host="127.0.0.1",
                      port=0) as running:
        yield running


@pytest.fixture
def client(emu: RunningEmulator) -> Iterator[anthropic.Anthropic]:
    with anthropic.Anthropic(api_key=emu.api_key, base_url=emu.base_url, max_retries=0,
                             timeout=10) as sdk:
        yield sdk


def upload(client: anthropic.Anthropic, name: str, content: bytes = b"x") -> str:
    return client.files.upload(file=(name, content, "text/plain")).id


def test_sdk_upload_and_retrieve_metadata(client: anthropic.Anthropic) -> None:
    """The SDK parses a GA upload's answer and the same metadata comes back by id."""
    uploaded = client.files.upload(file=("notes.txt", b"hello sdk", "text/plain"))
    expected = ("notes.txt", "text/plain", 9, False, "file", None)
    assert expected == (uploaded.filename, uploaded.mime_type, uploaded.size_bytes,
                        uploaded.downloadable, uploaded.type, uploaded.expires_at)
    assert uploaded == client.files.retrieve_metadata(uploaded.id)


def test_sdk_upload_keeps_the_final_path_component(client: anthropic.Anthropic) -> None:
    """A relative path as the filename is stored as its last component, not refused."""
    expected = "a.txt"
    assert expected == client.files.upload(file=("docs/a.txt", b"x", "text/plain")).filename


def test_sdk_auto_pagination_follows_next_page(client: anthropic.Anthropic,
                                               emu: RunningEmulator) -> None:
    """Iterating list(limit=2) follows next_page across 3 pages and yields every file once."""
    ids = [upload(client, f"f{i}.txt") for i in range(5)]
    ids.append(emu.seed_foreign("theirs.txt", b"y"))
    emu.reset_stats()
    listed = [f.id for f in client.files.list(limit=2)]
    assert (ids[::-1], 3) == (listed, emu.stats()["list"])


def test_sdk_auto_pagination_under_a_page_cap(tmp_path: Path) -> None:
    """With the server capping pages at 2, list(limit=1000) still yields every file."""
    with run_emulator(EmulatorConfig(data_dir=tmp_path, page_max=2)) as emu, \
            anthropic.Anthropic(api_key=emu.api_key, base_url=emu.base_url,
                                max_retries=0) as sdk:
        ids = [upload(sdk, f"f{i}.txt") for i in range(5)]
        emu.reset_stats()
        listed = [f.id for f in sdk.files.list(limit=1000)]
        assert (ids[::-1], 3) == (listed, emu.stats()["list"])


def test_sdk_list_with_ids(client: anthropic.Anthropic) -> None:
    """list(ids=...) is one page of the live files among them; a deleted id is left out."""
    a, b, c = (upload(client, f"{n}.txt") for n in "abc")
    client.files.delete(b)
    result = client.files.list(ids=[a, b, c, "file_011Cnowhere"])
    expected = ([c, a], None)
    assert expected == ([f.id for f in result.data], result.next_page)


def test_sdk_download_of_upload_is_file_not_downloadable(client: anthropic.Anthropic) -> None:
    """Downloading an upload raises BadRequestError whose error_code is file_not_downloadable."""
    file_id = upload(client, "a.txt")
    with pytest.raises(anthropic.BadRequestError) as caught:
        client.files.download(file_id)
    expected = (True, "file_not_downloadable", "File is not downloadable")
    body = caught.value.body
    assert isinstance(body, dict)
    assert expected == (isinstance(caught.value, FileNotDownloadableError),
                        caught.value.error_code, body["error"]["message"])
    assert caught.value.request_id is not None


def test_sdk_download_of_downloadable_file(client: anthropic.Anthropic,
                                           emu: RunningEmulator) -> None:
    """A downloadable file's bytes come back through the SDK."""
    file_id = emu.seed_foreign("out.csv", b"a,b\n1,2\n", "text/csv", downloadable=True)
    expected = b"a,b\n1,2\n"
    assert expected == client.files.download(file_id).read()


def test_sdk_delete_then_retrieve_is_not_found(client: anthropic.Anthropic) -> None:
    """After delete, retrieving the id raises NotFoundError, and so does deleting again."""
    file_id = upload(client, "a.txt")
    deleted = client.files.delete(file_id)
    assert (file_id, "file_deleted") == (deleted.id, deleted.type)
    with pytest.raises(anthropic.NotFoundError):
        client.files.retrieve_metadata(file_id)
    with pytest.raises(anthropic.NotFoundError):
        client.files.delete(file_id)


def test_sdk_expiry(client: anthropic.Anthropic, clock: FakeClock) -> None:
    """An upload with expires_in_seconds has expires_at; after it the SDK raises file_expired."""
    uploaded = client.files.upload(file=("t.txt", b"x", "text/plain"), expires_in_seconds=3600)
    assert uploaded.expires_at is not None
    expected_seconds = 3600.0
    assert expected_seconds == (uploaded.expires_at - uploaded.created_at).total_seconds()
    clock.advance(3600)
    with pytest.raises(anthropic.NotFoundError) as caught:
        client.files.retrieve_metadata(uploaded.id)
    expected = (True, "file_expired")
    assert expected == (isinstance(caught.value, FileExpiredError), caught.value.error_code)


def test_sdk_quota_exceeded(client: anthropic.Anthropic, emu: RunningEmulator) -> None:
    """A full storage quota raises BadRequestError with error_code storage_quota_exceeded."""
    emu.set_faults(Faults(quota_bytes=3))
    with pytest.raises(anthropic.BadRequestError) as caught:
        client.files.upload(file=("big.txt", b"1234", "text/plain"))
    expected = (True, "storage_quota_exceeded", [])
    assert expected == (isinstance(caught.value, StorageQuotaExceededError),
                        caught.value.error_code, emu.stored())


def test_sdk_sees_the_workspace(client: anthropic.Anthropic, emu: RunningEmulator) -> None:
    """Answers name the workspace; asking for another one raises PermissionDeniedError."""
    raw = client.files.with_raw_response.list()
    expected = "wrkspc_emulator"
    assert expected == raw.headers["anthropic-workspace-id"]
    expected_page: list[str] = []
    assert expected_page == [f.id for f in client.files.list(workspace_id="wrkspc_emulator")]
    with pytest.raises(anthropic.PermissionDeniedError):
        client.files.list(workspace_id="wrkspc_other")


def test_sdk_beta_namespace_shows_session_scope(client: anthropic.Anthropic,
                                                emu: RunningEmulator) -> None:
    """The beta namespace's list shows a session file's scope and filters by scope_id."""
    plain = upload(client, "mine.txt")
    scoped = emu.seed_foreign("out.md", b"#", "text/markdown",
                              scope=FileScope("session", "sesn_011Cxyz"))
    scopes = {f.id: f.scope for f in client.beta.files.list()}
    only = [f.id for f in client.beta.files.list(scope_id="sesn_011Cxyz")]
    expected = ({plain: None, scoped: BetaFileScope(type="session", id="sesn_011Cxyz")},
                [scoped])
    assert expected == (scopes, only)


@pytest.mark.parametrize("name", ["x" * 256, "a|b.txt", "a\\b.txt"])
def test_sdk_upload_with_bad_filename_is_bad_request(client: anthropic.Anthropic,
                                                     emu: RunningEmulator, name: str) -> None:
    """A filename the service refuses raises BadRequestError and stores nothing."""
    with pytest.raises(anthropic.BadRequestError):
        client.files.upload(file=(name, b"x", "text/plain"))
    expected = []
    assert expected == emu.stored()


def test_sdk_wrong_key_is_authentication_error(emu: RunningEmulator) -> None:
    """A wrong key raises AuthenticationError whose text does not contain the key."""
    with anthropic.Anthropic(api_key="sk-ant-not-this-one", base_url=emu.base_url,
                             max_retries=0) as sdk, pytest.raises(
            anthropic.AuthenticationError) as caught:
        sdk.files.list()
    assert "sk-ant-not-this-one" not in str(caught.value)
