"""FdFile: positioned reads of one fd, the sniffed head read once and served again."""

from __future__ import annotations

import os
from pathlib import Path

import httpx
import pytest

from syncd.errors import FileChangedError
from syncd.local import fdfile
from syncd.local.fdfile import FdFile
from syncd.local.fs import FileSource
from syncd.remote.client import FilesClient
from syncd.remote.pacer import Pacer


def _counting_pread(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    calls: list[int] = []
    real = os.pread

    def pread(fd: int, size: int, offset: int) -> bytes:
        calls.append(offset)
        return real(fd, size, offset)

    monkeypatch.setattr(fdfile.os, "pread", pread)
    return calls


def test_a_small_file_is_read_once_for_its_head_and_its_body(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The head read for sniffing is the body too: one pread for a file smaller than it."""
    (tmp_path / "a").write_bytes(b"0123456789")
    calls = _counting_pread(monkeypatch)
    with FdFile(os.open(tmp_path / "a", os.O_RDONLY)) as handle:
        head = handle.head(8192)
        handle.seek(0)
        body = handle.read(10)
    assert (head, body, calls) == (b"0123456789", b"0123456789", [0])


def test_reads_past_the_head_continue_from_the_file(tmp_path: Path) -> None:
    """A read that starts in the head and goes past it returns both parts in order; read()
    with no size returns what is left; close twice closes once."""
    data = bytes(range(256)) * 40
    (tmp_path / "a").write_bytes(data)
    handle = FdFile(os.open(tmp_path / "a", os.O_RDONLY))
    handle.head(8)
    handle.seek(0)
    first = handle.read(100)
    rest = handle.read()
    end = handle.read(10)
    handle.close()
    handle.close()
    assert (first, first + rest, end, handle.closed) == (data[:100], data, b"", True)


def test_a_file_rewritten_after_its_sniff_is_not_sent(tmp_path: Path) -> None:
    """The kept head must never go out with a changed file: a rewrite in place between the
    sniff and the send changes the fd's stat, and the upload refuses before sending."""
    root = tmp_path / "root"
    root.mkdir()
    (root / "a.txt").write_bytes(b"first version")
    sent: list[httpx.Request] = []
    transport = httpx.MockTransport(lambda r: sent.append(r) or httpx.Response(500))
    client = FilesClient("sk-ant-test", "https://files.test", transport=transport,
                         pacer=Pacer(6000, burst=100), max_retries=0)
    with FileSource(root, "a.txt", False) as source, client:
        looked = source.look()
        source.head(8192)
        with open(root / "a.txt", "r+b") as out:  # same size, other bytes, a later mtime
            out.write(b"SECOND VERSIO")
        os.utime(root / "a.txt", ns=(1, 1))
        with pytest.raises(FileChangedError, match="changed before it was sent"):
            client.upload(source, "a.txt", "text/plain", expected=looked)
    assert sent == []
