"""An in-memory Files service for the engine's seams: what the engine calls on a FilesClient.

``FakeFiles`` reads an upload's bytes as the real client does (the opener once, ``fstat`` on
the fd before and after, the sha256 of what was read), keeps its files in a dict, records every
call in ``calls`` and can be told to fail the next calls of an operation. Its ``iter_files`` is
the real client's, over the fake's pages: a listing ends only at a page that says it is the last.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Callable, Generator, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import cast

from syncd.engine.context import SyncContext
from syncd.engine.deletes import DeleteGate
from syncd.engine.dirtyqueue import DirtyQueue
from syncd.engine.quota import QuotaPause
from syncd.errors import BadRequest, FileChangedError, NotFound, SyncdError
from syncd.journal import Journal
from syncd.local.fs import Opener, fstat, open_path
from syncd.local.ignore import IgnoreRules
from syncd.model import LocalStat
from syncd.remote.client import Cursor, FilePage, FilesClient, RemoteFile, UploadResult
from syncd.remote.names import filename_problem
from syncd.remote.protocol import LIST_LIMIT

Call = tuple[str, ...]


class Clock:
    """A clock the test moves (``now``), for the fake and the engine alike."""

    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def drain(queue: DirtyQueue, limit: int = 100_000) -> list[str]:
    """Every path of ``queue`` ready now, each released at once (bounded)."""
    out: list[str] = []
    for _ in range(limit):
        path = queue.pop_ready()
        if path is None:
            break
        out.append(path)
        queue.done(path)
    return out


@contextmanager
def fake_context(tmp_path: Path, clock: Clock, fake: FakeFiles) -> Iterator[SyncContext]:
    """A SyncContext over ``fake`` on a real journal in ``tmp_path``: an empty root, a queue
    without settling and a delete gate at 0.5, all on ``clock``."""
    root = tmp_path / "root"
    root.mkdir()
    with Journal.open(tmp_path / "state" / "journal.db", str(root), "https://fake.invalid") as j:
        yield SyncContext(
            root=root, rules=IgnoreRules.load(root), follow_symlinks=False, name_prefix="",
            client=cast(FilesClient, fake), journal=j, queue=DirtyQueue(0.0, 0.0, clock=clock),
            gate=DeleteGate(0.5, clock=clock), clock=clock, quota=QuotaPause(clock),
        )


class FakeFiles:
    """The Files API in a dict; thread-safe (workers upload concurrently)."""

    def __init__(self, clock: Callable[[], float] = time.time, page_size: int = LIST_LIMIT) -> None:
        self.clock = clock
        self.page_size = page_size  # the most a page holds, whatever the limit asked
        self.newest_first = False  # list in reverse creation order (what the service does)
        self.skew = 0.0  # what clock_skew() says: the service's clock minus ours
        self.budget = 90.0  # what budget_per_minute() says
        self.files: dict[str, RemoteFile] = {}  # file id -> File, in creation order
        self.sha256: dict[str, str] = {}  # file id -> sha256 of the bytes stored
        self.calls: list[Call] = []
        self.during_upload: Callable[[str], None] | None = None  # after the read, before the answer
        self._failures: dict[str, list[SyncdError]] = {}
        self._lock = threading.Lock()
        self._next = 0

    # --- the test's controls ----------------------------------------------------------------

    def fail(self, op: str, exc: SyncdError, times: int = 1) -> None:
        """The next ``times`` calls of ``op`` ("upload", "list_page", "delete", "get") raise
        ``exc`` (after being recorded; an upload that fails stores nothing)."""
        with self._lock:
            self._failures.setdefault(op, []).extend([exc] * times)

    def add(self, name: str, size: int, created_at: float | None = None,
            mime_type: str = "text/plain") -> RemoteFile:
        """Store a file nobody uploaded through this fake (a foreign file, a lost upload)."""
        created = self.clock() if created_at is None else created_at
        with self._lock:
            return self._store(name, size, mime_type, created, "")

    def uploads(self) -> list[str]:
        """The remote names of every upload call, in order."""
        with self._lock:
            return [call[1] for call in self.calls if call[0] == "upload"]

    # --- what the engine calls --------------------------------------------------------------

    def upload(self, source: Path | Opener, remote_name: str, content_type: str,
               expected: LocalStat | None = None) -> UploadResult:
        """Read the file as the real client does and store it; one attempt, no retries."""
        self._enter("upload", remote_name)
        problem = filename_problem(remote_name)
        if problem:
            raise BadRequest(problem, error_type="invalid_request_error")
        opener: Opener = (lambda: open_path(source)) if isinstance(source, Path) else source
        handle = opener()
        try:
            before = fstat(handle)
            if expected is not None and before != expected:
                raise FileChangedError(f"{remote_name} changed before it was sent")
            handle.seek(0)
            data = handle.read(before.size)
            if len(data) < before.size:
                raise FileChangedError("the file shrank while it was uploaded")
            if self.during_upload is not None:
                self.during_upload(remote_name)
            sha = hashlib.sha256(data).hexdigest()
            with self._lock:
                stored = self._store(remote_name, before.size, content_type, self.clock(), sha)
            if fstat(handle) != before:
                raise FileChangedError(f"{remote_name} changed while it was uploaded",
                                       uploaded_id=stored.id)
        finally:
            handle.close()
        return UploadResult(file=stored, sha256=sha, local=before)

    def list_page(self, limit: int = LIST_LIMIT, cursor: Cursor | None = None) -> FilePage:
        """One page, oldest first (or newest first, in creation order either way); the cursor
        is the offset of the next page."""
        where = () if cursor is None else (f"{cursor[0]}={cursor[1]}",)
        self._enter("list_page", f"limit={limit}", *where)
        start = int(cursor[1]) if cursor else 0
        with self._lock:
            files = tuple(self.files.values())
        if self.newest_first:
            files = files[::-1]
        end = start + min(limit, self.page_size)
        return FilePage(files[start:end], ("page", str(end)) if end < len(files) else None)

    def iter_files(self, limit: int = LIST_LIMIT, max_pages: int | None = None,
                   on_page: Callable[[int], None] | None = None) -> Iterator[RemoteFile]:
        """The real client's iterator over this fake's pages (its completeness rules)."""
        self._enter("iter_files")
        return FilesClient.iter_files(cast(FilesClient, self), limit, max_pages, on_page)

    def iter_pages(self, limit: int = LIST_LIMIT, max_pages: int | None = None,
                   on_page: Callable[[int], None] | None = None
                   ) -> Generator[FilePage, None, None]:
        """The real client's pages over this fake's (not recorded itself: each page is)."""
        return FilesClient.iter_pages(cast(FilesClient, self), limit, max_pages, on_page)

    def get(self, file_id: str) -> RemoteFile:
        self._enter("get", file_id)
        with self._lock:
            if file_id not in self.files:
                raise NotFound(f"no file {file_id}", status=404, error_type="not_found_error")
            return self.files[file_id]

    def delete(self, file_id: str) -> bool:
        """Delete a file; False if it was already gone (the real client's 404)."""
        self._enter("delete", file_id)
        with self._lock:
            self.sha256.pop(file_id, None)
            return self.files.pop(file_id, None) is not None

    def clock_skew(self) -> float:
        return self.skew

    def budget_per_minute(self) -> float:
        return self.budget

    def close(self) -> None:
        self._enter("close")

    def __enter__(self) -> FakeFiles:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- inside -----------------------------------------------------------------------------

    def _enter(self, op: str, *args: str) -> None:
        """Record the call; raise the failure queued for ``op`` if there is one."""
        with self._lock:
            self.calls.append((op, *args))
            queued = self._failures.get(op)
            exc = queued.pop(0) if queued else None
        if exc is not None:
            raise exc

    def _store(self, name: str, size: int, mime: str, created: float, sha: str) -> RemoteFile:
        self._next += 1
        file = RemoteFile(f"file_fake{self._next:04d}", name, mime, size,
                          datetime.fromtimestamp(created, UTC))
        self.files[file.id] = file
        self.sha256[file.id] = sha
        return file
