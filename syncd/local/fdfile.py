"""One open regular file, read by position: what :mod:`syncd.local.fs` hands every reader.

Reads are ``pread`` at the file's own position (a seek is not a system call), and the first
bytes read for sniffing are kept and served again: a small file is read once for its content
type, its sha256 and the upload body. Whatever changes the file between those reads shows in
its ``fstat``, which the upload checks before and after it sends (:mod:`syncd.remote.client`).
"""

from __future__ import annotations

import os
from types import TracebackType

_CHUNK = 1024 * 1024


class FdFile:
    """A read-only view of one fd, which it owns (closed once, by :meth:`close`)."""

    def __init__(self, fd: int) -> None:
        self._fd = fd
        self._pos = 0
        self._head = b""  # the file's first bytes, as :meth:`head` read them
        self.closed = False

    def fileno(self) -> int:
        """The fd (for fstat)."""
        return self._fd

    def head(self, size: int) -> bytes:
        """Up to ``size`` bytes from the start, read once and kept for :meth:`read`."""
        if len(self._head) < size:
            self._head = os.pread(self._fd, size, 0)
        return self._head[:size]

    def seek(self, offset: int) -> int:
        """Move to ``offset`` from the start (the only kind of seek a reader here needs)."""
        self._pos = offset
        return offset

    def read(self, size: int = -1) -> bytes:
        """Up to ``size`` bytes from the position (fewer only at the end, or as a raw read
        may; all that is left when negative); b"" at the end. The kept head is served from
        memory, the rest read."""
        if size < 0:
            return b"".join(iter(lambda: self.read(_CHUNK), b""))
        pos = self._pos
        data = self._head[pos:pos + size] if pos < len(self._head) else b""
        if len(data) < size:
            data += os.pread(self._fd, size - len(data), pos + len(data))
        self._pos = pos + len(data)
        return data

    def close(self) -> None:
        """Close the fd (once)."""
        if not self.closed:
            self.closed = True
            os.close(self._fd)

    def __enter__(self) -> FdFile:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
