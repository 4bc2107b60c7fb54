"""The upload's body: multipart/form-data streamed from one open file, hashed on the way out.

The file is never held in memory, and the sha256 is of exactly the bytes sent.
"""

from __future__ import annotations

import hashlib
import itertools
import secrets
from collections.abc import Iterator
from typing import Any

from syncd.errors import FileChangedError, LocalFileError
from syncd.local.fdfile import FdFile

CHUNK = 1024 * 1024
# Boundaries: a secret per process and a count, so no file's bytes can be made to contain the
# boundary of their own request (without a random read per upload).
_BOUNDARY_SECRET = secrets.token_hex(12)
_BOUNDARY_COUNT = itertools.count()


class MultipartFile:
    """A multipart/form-data body with one ``file`` part, streamed from an open file's fd.

    Hashes exactly ``size`` bytes as they are sent; a file that ends early aborts the request
    (the server must never store a truncated upload), one that grows is cut at ``size`` and
    caught afterwards by the stat check.
    """

    def __init__(
        self, handle: FdFile, size: int, name: str, content_type: str,
        fields: dict[str, str] | None = None,
    ) -> None:
        self._handle = handle
        self._size = size
        self._boundary = f"syncd-{_BOUNDARY_SECRET}{next(_BOUNDARY_COUNT):08x}"
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
