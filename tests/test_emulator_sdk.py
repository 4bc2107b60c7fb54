"""The official SDK (anthropic==0.125.0, the last to speak this contract) against the emulator."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import anthropic
import pytest

from syncd.emulator import EmulatorConfig, RunningEmulator, run_emulator

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def emu(tmp_path: Path) -> Iterator[RunningEmulator]:
    with run_emulator(EmulatorConfig(data_dir=tmp_path)) as running:
        yield running


@pytest.fixture
def client(emu: RunningEmulator) -> Iterator[anthropic.Anthropic]:
    with anthropic.Anthropic(api_key=emu.api_key, base_url=emu.base_url, max_retries=0,
                             timeout=10) as sdk:
        yield sdk


def test_sdk_upload_and_retrieve_metadata(client: anthropic.Anthropic) -> None:
    """The SDK parses an upload's answer and the same metadata comes back by id."""
    uploaded = client.beta.files.upload(file=("notes.txt", b"hello sdk", "text/plain"))
    expected = ("notes.txt", "text/plain", 9, False, "file")
    assert expected == (uploaded.filename, uploaded.mime_type, uploaded.size_bytes,
                        uploaded.downloadable, uploaded.type)
    assert uploaded == client.beta.files.retrieve_metadata(uploaded.id)


def test_sdk_auto_pagination_walks_every_page(client: anthropic.Anthropic,
                                              emu: RunningEmulator) -> None:
    """Iterating list(limit=2) follows after_id across pages and yields every file once."""
    ids = [client.beta.files.upload(file=(f"f{i}.txt", b"x", "text/plain")).id for i in range(5)]
    ids.append(emu.seed_foreign("theirs.txt", b"y"))
    emu.reset_stats()
    listed = [f.id for f in client.beta.files.list(limit=2)]
    assert (ids[::-1], 3) == (listed, emu.stats()["list"])


def test_sdk_pages_backward_with_before_id(client: anthropic.Anthropic) -> None:
    """The SDK's before_id paging walks toward newer files."""
    ids = [client.beta.files.upload(file=(f"f{i}.txt", b"x", "text/plain")).id for i in range(4)]
    page = client.beta.files.list(limit=2, before_id=ids[0])
    assert ([ids[2], ids[1]], True) == ([f.id for f in page.data], page.has_more)


def test_sdk_download_of_upload_is_bad_request(client: anthropic.Anthropic) -> None:
    """Downloading an uploaded file raises BadRequestError with the service's message."""
    uploaded = client.beta.files.upload(file=("a.txt", b"x", "text/plain"))
    with pytest.raises(anthropic.BadRequestError) as caught:
        client.beta.files.download(uploaded.id)
    expected = ("invalid_request_error", "File is not downloadable")
    body = caught.value.body
    assert isinstance(body, dict)
    assert expected == (body["error"]["type"], body["error"]["message"])
    assert caught.value.request_id is not None


def test_sdk_download_of_downloadable_file(client: anthropic.Anthropic,
                                           emu: RunningEmulator) -> None:
    """A downloadable file's bytes come back through the SDK."""
    file_id = emu.seed_foreign("out.csv", b"a,b\n1,2\n", "text/csv", downloadable=True)
    expected = b"a,b\n1,2\n"
    assert expected == client.beta.files.download(file_id).read()


def test_sdk_delete_then_retrieve_is_not_found(client: anthropic.Anthropic) -> None:
    """After delete, retrieving the id raises NotFoundError, and so does deleting again."""
    uploaded = client.beta.files.upload(file=("a.txt", b"x", "text/plain"))
    deleted = client.beta.files.delete(uploaded.id)
    assert (uploaded.id, "file_deleted") == (deleted.id, deleted.type)
    with pytest.raises(anthropic.NotFoundError):
        client.beta.files.retrieve_metadata(uploaded.id)
    with pytest.raises(anthropic.NotFoundError):
        client.beta.files.delete(uploaded.id)


@pytest.mark.parametrize("name", ["docs/a.txt", "x" * 256, "a|b.txt"])
def test_sdk_upload_with_bad_filename_is_bad_request(client: anthropic.Anthropic,
                                                     emu: RunningEmulator, name: str) -> None:
    """A filename the service refuses raises BadRequestError and stores nothing."""
    with pytest.raises(anthropic.BadRequestError):
        client.beta.files.upload(file=(name, b"x", "text/plain"))
    expected = []
    assert expected == emu.stored()


def test_sdk_wrong_key_is_authentication_error(emu: RunningEmulator) -> None:
    """A wrong key raises AuthenticationError whose text does not contain the key."""
    with anthropic.Anthropic(api_key="sk-ant-not-this-one", base_url=emu.base_url,
                             max_retries=0) as sdk, pytest.raises(
            anthropic.AuthenticationError) as caught:
        sdk.beta.files.list()
    assert "sk-ant-not-this-one" not in str(caught.value)
