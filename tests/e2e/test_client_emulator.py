"""FilesClient against the emulator over a real loopback socket."""

from __future__ import annotations

import hashlib
import os
import tracemalloc
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from syncd import errors
from syncd.emulator.app import EmulatorConfig, run_emulator
from syncd.emulator.faults import Faults
from tests.conftest import Recorder, make_client


def write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def test_upload_get_list_delete_round_trip(emulator: Any, tmp_path: Path) -> None:
    """An uploaded file is listed, described and deleted; its sha256 matches the service's."""
    client = make_client(emulator)
    result = client.upload(write(tmp_path / "a.txt", b"hello"), "docs%2Fa.txt", "text/plain")
    stored = {f.id: f for f in emulator.stored()}
    assert (result.sha256, result.file.size_bytes, result.file.downloadable) == (
        stored[result.file.id].sha256,
        5,
        False,
    )
    assert client.get(result.file.id) == result.file
    assert [f.id for f in client.iter_files()] == [result.file.id]
    assert (client.delete(result.file.id), client.delete(result.file.id)) == (True, False)
    with pytest.raises(errors.NotFound):
        client.get(result.file.id)


def test_paging_with_limit_two_sees_every_file_once(emulator: Any, tmp_path: Path) -> None:
    """Seven files listed two at a time arrive exactly once each, in four pages."""
    client = make_client(emulator)
    ids = [
        client.upload(write(tmp_path / f"{i}.txt", b"x" * i), f"{i}.txt", "text/plain").file.id
        for i in range(7)
    ]
    emulator.reset_stats()
    listed = [f.id for f in client.iter_files(limit=2)]
    assert (sorted(listed), len(listed), emulator.stats()["list"]) == (sorted(ids), 7, 4)


def test_paging_2500_files_at_limit_1000_takes_three_pages(emulator: Any) -> None:
    """2,500 files are listed in ceil(2500/1000) = 3 requests, none missed or repeated."""
    ids = {emulator.seed_foreign(f"f{i}.txt", b"%d" % i) for i in range(2500)}
    client = make_client(emulator)
    emulator.reset_stats()
    listed = [f.id for f in client.iter_files()]
    assert (len(listed), set(listed) == ids, emulator.stats()["list"]) == (2500, True, 3)


def test_download_streams_a_downloadable_file(emulator: Any, tmp_path: Path) -> None:
    """A downloadable file is written to disk intact; an uploaded one is a BadRequest."""
    file_id = emulator.seed_foreign("out.csv", b"a,b\n1,2\n", "text/csv", downloadable=True)
    client = make_client(emulator)
    dest = tmp_path / "out.csv"
    assert (client.download(file_id, dest), dest.read_bytes()) == (8, b"a,b\n1,2\n")
    mine = client.upload(write(tmp_path / "m.txt", b"m"), "m.txt", "text/plain").file.id
    with pytest.raises(errors.BadRequest, match="not downloadable"):
        client.download(mine, tmp_path / "m2.txt")
    assert not (tmp_path / "m2.txt").exists()


def test_wrong_key_is_authentication_failed_without_the_key(emulator: Any) -> None:
    """A rejected key raises AuthenticationFailed whose text does not contain the key."""
    from syncd.remote.client import FilesClient

    client = FilesClient("sk-ant-wrong-key-123", emulator.base_url, max_retries=0)
    with pytest.raises(errors.AuthenticationFailed) as info:
        client.get("file_x")
    assert (info.value.status, "sk-ant-wrong-key-123" in str(info.value)) == (401, False)
    assert info.value.request_id is not None and info.value.request_id.startswith("req_")


def test_service_refusals_map_to_permanent_errors(emulator: Any, tmp_path: Path) -> None:
    """A bad limit is BadRequest and an unknown id NotFound, with request ids."""
    client = make_client(emulator)
    with pytest.raises(errors.BadRequest) as bad:
        client.list_page(limit=1001)
    with pytest.raises(errors.NotFound) as missing:
        client.get("file_011CNha8iCJcU1wXNR6q4V8w")
    assert (bad.value.status, missing.value.status) == (400, 404)


@pytest.fixture
def small_emulator(tmp_path: Path, recorder: Recorder) -> Iterator[Any]:
    """An emulator with a 1 KB size limit whose clock is the test's recorder."""
    cfg = EmulatorConfig(
        data_dir=tmp_path / "emu", api_key="sk-ant-small", max_file_bytes=1000,
        clock=recorder.clock,
    )
    with run_emulator(cfg) as emu:
        yield emu


def test_oversize_upload_is_too_large(small_emulator: Any, tmp_path: Path) -> None:
    """The service's 413 edge body surfaces as TooLarge; nothing is stored."""
    client = make_client(small_emulator, max_upload_bytes=10**9)
    with pytest.raises(errors.TooLarge):
        client.upload(write(tmp_path / "big.bin", b"x" * 5000), "big.bin", "text/plain")
    assert small_emulator.stored() == []


def test_rate_limit_retry_after_from_the_emulator(
    small_emulator: Any, recorder: Recorder, tmp_path: Path
) -> None:
    """The emulator's 429 retry-after is waited (recorded) and the retry then succeeds."""
    small_emulator.set_faults(Faults(rate_limit_rpm=6, rate_limit_burst=1))
    client = make_client(small_emulator, recorder)
    client.list_page()
    client.list_page()
    assert recorder.sleeps == [10.0]
    assert small_emulator.stats()["status:list:429"] == 1


def test_lost_responses_leave_copies_the_client_cannot_see(emulator: Any, tmp_path: Path) -> None:
    """With every response lost, each retry stores a copy: why callers must write intents."""
    emulator.set_faults(Faults(lose_response_rate=1.0))
    client = make_client(emulator, max_retries=2)
    with pytest.raises(errors.ConnectionFailed):
        client.upload(write(tmp_path / "a.txt", b"abc"), "a.txt", "text/plain")
    assert [f.filename for f in emulator.stored()] == ["a.txt"] * 3


def test_dropped_uploads_are_retried_until_one_lands(tmp_path: Path) -> None:
    """Connections dropped mid-upload are retried; exactly one copy is stored in the end."""
    cfg = EmulatorConfig(
        data_dir=tmp_path / "emu", api_key="sk-ant-x", faults=Faults(drop_upload_rate=0.5), seed=3
    )
    with run_emulator(cfg) as emu:
        client = make_client(emu, max_retries=10)
        data = os.urandom(300_000)
        result = client.upload(write(tmp_path / "a.bin", data), "a.bin", "application/pdf")
        stored = emu.stored()
    assert [(f.id, f.sha256) for f in stored] == [
        (result.file.id, hashlib.sha256(data).hexdigest())
    ]


def test_large_upload_streams_with_bounded_memory(emulator: Any, tmp_path: Path) -> None:
    """A 110 MB file uploads intact while traced memory stays under 16 MB (no full read)."""
    path = tmp_path / "large.bin"
    block = os.urandom(1024 * 1024)
    digest = hashlib.sha256()
    with open(path, "wb") as out:
        for i in range(110):
            chunk = block[i:] + block[:i]
            digest.update(chunk)
            out.write(chunk)
    client = make_client(emulator)
    tracemalloc.start()
    try:
        result = client.upload(path, "large.bin", "application/octet-stream")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert (result.sha256, result.file.size_bytes) == (digest.hexdigest(), 110 * 1024 * 1024)
    assert [f.sha256 for f in emulator.stored()] == [digest.hexdigest()]
    assert peak < 16 * 1024 * 1024
