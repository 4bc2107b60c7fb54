"""Reading under root (invariant 10): swapped directories, links, FIFOs, and the code that reads.

Each attack is played twice where it can be: once deterministically (the tree is swapped at a
chosen moment) and once as a real race against a thread exchanging a directory with a symlink
to a folder outside root. Outside files hold ``OUTSIDE`` bytes; no read may ever return them.
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from syncd.cli import rebuild
from syncd.engine.context import SyncContext
from syncd.engine.deletes import DeleteGate
from syncd.engine.dirtyqueue import DirtyQueue
from syncd.engine.reconcile import Reconciler
from syncd.engine.worker import Syncer
from syncd.errors import LocalFileError, RootMoved
from syncd.journal import Journal
from syncd.local import beneath
from syncd.local import fs as localfs
from syncd.local.contenttype import content_type
from syncd.local.fs import FileSource, hash_unchanged, open_file
from syncd.local.ignore import IgnoreRules
from syncd.local.scan import local_stat
from syncd.model import LocalStat
from syncd.remote.client import FilesClient, RemoteFile
from syncd.remote.pacer import Pacer

pytestmark = pytest.mark.timeout(60)
KEY = "sk-ant-test-localfs-0123456789"
INSIDE = b"inside root: fine to upload\n"
OUTSIDE = b"OUTSIDE root: secret bytes\n"
AT_FDCWD = -100
RENAME_EXCHANGE = 2
RACE_ATTEMPTS = 2000
RACE_SECONDS = 20.0  # a bound on the loop, never asserted on


def _renameat2() -> Callable[[Path, Path], None] | None:
    """An atomic exchange of two paths (Linux renameat2), or None without one."""
    try:
        fn = ctypes.CDLL(None, use_errno=True).renameat2
    except (OSError, AttributeError):
        return None
    fn.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]

    def exchange(a: Path, b: Path) -> None:
        if fn(AT_FDCWD, os.fsencode(a), AT_FDCWD, os.fsencode(b), RENAME_EXCHANGE) != 0:
            code = ctypes.get_errno()
            raise OSError(code, os.strerror(code))

    return exchange


def _rename_swap(a: Path, b: Path) -> None:
    """The fallback: swap two names with three renames (``a`` is briefly missing)."""
    hold = a.with_name(a.name + ".hold")
    os.rename(a, hold)
    os.rename(b, a)
    os.rename(hold, b)


def exchanger(a: Path, b: Path) -> Callable[[Path, Path], None]:
    """The best swap this kernel and file system offer for ``a`` and ``b`` (tried once)."""
    exchange = _renameat2()
    if exchange is not None:
        try:
            exchange(a, b)
            exchange(a, b)
            return exchange
        except OSError:
            pass
    return _rename_swap


@contextmanager
def swapping(a: Path, b: Path) -> Iterator[None]:
    """A thread exchanging ``a`` and ``b`` as fast as it can, until the block ends."""
    swap = exchanger(a, b)
    stop = threading.Event()
    swaps = [0]

    def run() -> None:
        while not stop.is_set():
            swap(a, b)
            swaps[0] += 1

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(timeout=10)
        if swaps[0] % 2:
            swap(a, b)  # leave the tree as it was built


def race(attempt: Callable[[int], None]) -> int:
    """Run ``attempt(i)`` up to RACE_ATTEMPTS times (bounded in time too); return how many."""
    deadline = time.monotonic() + RACE_SECONDS
    done = 0
    while done < RACE_ATTEMPTS and time.monotonic() < deadline:
        attempt(done)
        done += 1
    return done


@pytest.fixture(autouse=True, params=["openat2", "walk"])
def resolution(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Every test here runs twice: directories reached with openat2 (where this kernel has
    it) and one component at a time; both must give the same answers to every attack."""
    if request.param == "openat2" and not beneath.available():
        pytest.skip("this kernel or sandbox has no openat2")
    if request.param == "walk":
        monkeypatch.setattr(beneath, "_available", False)
    return str(request.param)


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """root/d/f holds INSIDE; out/f holds OUTSIDE; root/x is a symlink to out (swappable)."""
    root = tmp_path / "root"
    (root / "d").mkdir(parents=True)
    (root / "d" / "f").write_bytes(INSIDE)
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "f").write_bytes(OUTSIDE)
    (root / "x").symlink_to(tmp_path / "out")
    return root


def swap_d_out(root: Path) -> None:
    """Exchange root/d with the symlink root/x to the outside folder (once)."""
    exchanger(root / "d", root / "x")(root / "d", root / "x")


def stat_of(path: Path) -> LocalStat:
    return LocalStat.from_stat(os.stat(path))


def read_all(handle: Any) -> bytes:
    with handle:
        return bytes(handle.read())


# --- opening under root ---------------------------------------------------------------------


def test_directory_swapped_for_an_outside_link_is_never_read(tree: Path) -> None:
    """After root/d becomes a link out of root, nothing reads root/d/f: it is not eligible."""
    swap_d_out(tree)
    assert OUTSIDE == (tree / "d" / "f").read_bytes()  # the trap is armed: a path open leaks
    expected = [None, None, b"", b"", None, None, None, None]
    actual = [
        open_file(tree, "d/f", False), open_file(tree, "d/f", True),
        FileSource(tree, "d/f", False).head(100), FileSource(tree, "d/f", True).head(100),
        hash_unchanged(tree, "d/f", stat_of(tree / "d" / "f"), False),
        hash_unchanged(tree, "d/f", stat_of(tree / "d" / "f"), True),
        local_stat(tree, "d/f", False), local_stat(tree, "d/f", True),
    ]
    assert expected == actual


def test_a_root_that_is_not_the_one_first_synced_is_never_read_under(
    tree: Path, tmp_path: Path
) -> None:
    """Given the root's identity, every way of reading checks the root fd it walks from: under
    another directory at the root's path, each raises RootMoved and reads nothing."""
    info = tree.stat()
    first = (info.st_dev, info.st_ino)
    assert INSIDE == read_all(open_file(tree, "d/f", False, first))  # the right root reads
    os.rename(tree, tmp_path / "away")
    (tree / "d").mkdir(parents=True)
    (tree / "d" / "f").write_bytes(OUTSIDE)
    reads: list[Callable[[], object]] = [
        lambda: open_file(tree, "d/f", False, first),
        lambda: FileSource(tree, "d/f", False, first).look(),
        lambda: FileSource(tree, "d/f", False, first)(),
        lambda: hash_unchanged(tree, "d/f", stat_of(tree / "d" / "f"), False, first),
        lambda: local_stat(tree, "d/f", False, first),
    ]
    refused = 0
    for read in reads:
        with pytest.raises(RootMoved, match="no longer the directory first synced"):
            read()
        refused += 1
    assert refused == len(reads)


def test_opener_refuses_a_path_through_a_link_with_a_local_error(tree: Path) -> None:
    """The upload opener raises LocalFileError, naming the path, where open_file says None."""
    swap_d_out(tree)
    with pytest.raises(LocalFileError, match="cannot read d/f"):
        FileSource(tree, "d/f", False)()


def test_regular_file_is_read_and_its_fd_is_blocking(tree: Path) -> None:
    """A regular file opens; its fd has O_NONBLOCK cleared, and reads give its bytes."""
    handle = open_file(tree, "d/f", False)
    assert handle is not None
    expected = (True, INSIDE)
    assert expected == (os.get_blocking(handle.fileno()), read_all(handle))


def test_links_are_followed_only_when_asked_and_only_inside_root(tree: Path) -> None:
    """A file link is read with follow on and inside root; out of root never, in any form."""
    (tree / "in").symlink_to(tree / "d" / "f")
    (tree / "rel").symlink_to("d/f")
    (tree / "abs_out").symlink_to(tree.parent / "out" / "f")
    (tree / "dotdot").symlink_to("../out/f")
    (tree / "via_x").symlink_to("x/f")  # through root/x, itself a link out of root
    (tree / "dirlink").symlink_to("d")
    names = ["in", "rel", "abs_out", "dotdot", "via_x", "dirlink/f"]
    expected = ([None] * 6, [INSIDE, INSIDE, None, None, None, None])
    actual = tuple(
        [h if h is None else read_all(h) for h in (open_file(tree, n, follow) for n in names)]
        for follow in (False, True)
    )
    assert expected == actual


def test_followed_link_is_checked_on_what_was_opened(tree: Path) -> None:
    """A link to d/f after d became a link out of root: the opened fd is outside, refused."""
    (tree / "l").symlink_to("d/f")
    swap_d_out(tree)
    assert OUTSIDE == (tree / "l").read_bytes()  # the link now resolves outside
    expected = (None, None)
    assert expected == (open_file(tree, "l", True), local_stat(tree, "l", True))


def test_names_that_climb_or_are_absolute_are_refused(tree: Path) -> None:
    """``..``, ``.``, empty and absolute components never open anything."""
    rels = ["../out/f", "d/../../out/f", "./d/f", "d//f", "", "/etc/passwd", "d/f/"]
    expected = [None] * len(rels)
    assert expected == [open_file(tree, rel, True) for rel in rels]


def test_file_source_sends_the_file_it_sniffed_and_reopens_for_a_retry(tree: Path) -> None:
    """One open serves the sniff and the first attempt (a rename between them does not change
    what is sent); a second attempt opens the path again, under root, as it is then."""
    with FileSource(tree, "d/f", False) as source:
        head = source.head(6)
        (tree / "d" / "g").write_bytes(b"replaced")
        os.replace(tree / "d" / "g", tree / "d" / "f")
        first, second = read_all(source()), read_all(source())
    expected = (INSIDE[:6], INSIDE, b"replaced")
    assert expected == (head, first, second)


def test_file_source_through_a_swapped_directory_sniffs_and_sends_nothing(tree: Path) -> None:
    """The sniff of a path through a link out of root is empty; the attempt is a LocalFileError."""
    swap_d_out(tree)
    with FileSource(tree, "d/f", False) as source:
        head = source.head(100)
        with pytest.raises(LocalFileError, match="cannot read d/f"):
            source()
    assert b"" == head


def test_file_source_closes_a_handle_no_attempt_took(tree: Path) -> None:
    """Leaving the source closes the file the sniff opened when no attempt used it."""
    with FileSource(tree, "d/f", False) as source:
        source.head(1)
        during = fds_open_on(tree / "d" / "f")
    assert (1, 0) == (during, fds_open_on(tree / "d" / "f"))


def fds_open_on(path: Path) -> int:
    """How many of this process's fds name ``path`` (Linux /proc)."""
    count = 0
    for fd in os.listdir("/proc/self/fd"):
        try:
            count += os.readlink(f"/proc/self/fd/{fd}") == str(path)
        except OSError:
            continue  # the listing's own fd, closed by now
    return count


@pytest.mark.usefixtures("file_permissions")
def test_unreadable_file_is_a_local_error_with_a_clear_message(tree: Path) -> None:
    """Permission denied is not "no file": LocalFileError names the path and the reason."""
    (tree / "d" / "f").chmod(0)
    try:
        with pytest.raises(LocalFileError, match="cannot read d/f: Permission denied"):
            open_file(tree, "d/f", False)
    finally:
        (tree / "d" / "f").chmod(0o644)


# --- FIFOs ----------------------------------------------------------------------------------


@pytest.mark.timeout(10)
def test_fifo_at_the_path_is_not_a_file_and_never_blocks(tree: Path) -> None:
    """A FIFO (no writer) is treated as not a regular file by open, hash, sniff and upload."""
    os.mkfifo(tree / "p")
    remote = Remote()
    client = FilesClient(KEY, "https://files.test", transport=httpx.MockTransport(remote),
                         sleep=lambda _: None)
    with pytest.raises(LocalFileError, match="cannot read p"):
        client.upload(FileSource(tree, "p", False), "p", "text/plain")
    with pytest.raises(LocalFileError, match="not a regular file"):
        client.upload(tree / "p", "p", "text/plain")  # a plain path gets the same care
    expected: tuple[None, bytes, None, None, list[bytes]] = (None, b"", None, None, [])
    actual = (open_file(tree, "p", False), FileSource(tree, "p", False).head(10),
              hash_unchanged(tree, "p", stat_of(tree / "p"), False),
              local_stat(tree, "p", False), remote.bodies)
    assert expected == actual


@pytest.mark.timeout(60)
def test_fifo_swapped_with_a_file_never_blocks_a_reader(tree: Path) -> None:
    """Racing a FIFO in and out of the path: every open returns, with the file or nothing."""
    os.mkfifo(tree / "p")
    results: set[bytes | None] = set()

    def attempt(_: int) -> None:
        handle = open_file(tree, "d/f", False)
        results.add(None if handle is None else read_all(handle))

    with swapping(tree / "d" / "f", tree / "p"):
        race(attempt)
    assert results <= {INSIDE, None}


# --- hashing an unchanged file --------------------------------------------------------------


class RewritingSha256:
    """hashlib.sha256 whose first update() rewrites ``path`` in place (same size)."""

    def __init__(self, path: Path, real: Callable[[], Any]) -> None:
        self._path, self._real = path, real
        self.done = False

    def __call__(self, *args: Any) -> Any:
        inner = self._real(*args)
        outer = self

        class Wrapper:
            def update(self, data: bytes) -> None:
                if not outer.done:
                    outer.done = True
                    info = os.stat(outer._path)
                    with open(outer._path, "r+b") as fh:
                        fh.write(b"Z" * info.st_size)
                    os.utime(outer._path, ns=(info.st_atime_ns, info.st_mtime_ns + 10**9))
                inner.update(data)

            def hexdigest(self) -> str:
                return str(inner.hexdigest())

        return Wrapper()


def big_file(root: Path, rel: str) -> Path:
    """A file of two and a half read chunks, so a rewrite can land between two reads."""
    path = root / rel
    path.write_bytes(b"a" * (localfs.CHUNK * 2 + localfs.CHUNK // 2))
    return path


def test_hash_unchanged_returns_the_sha_of_the_stated_version(tree: Path) -> None:
    """Unchanged: the sha256 of the content; a stat that no longer matches: None."""
    now = stat_of(tree / "d" / "f")
    other = LocalStat(now.size, now.mtime_ns - 1, now.ino)
    expected = (hashlib.sha256(INSIDE).hexdigest(), None, None)
    actual = (hash_unchanged(tree, "d/f", now, False), hash_unchanged(tree, "d/f", other, False),
              hash_unchanged(tree, "d/missing", now, False))
    assert expected == actual


def test_hash_unchanged_is_none_for_a_same_size_rewrite_while_hashing(
    tree: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A rewrite of the same size between two reads: the mixed hash is never returned."""
    path = big_file(tree, "big")
    before = stat_of(path)
    monkeypatch.setattr(hashlib, "sha256", RewritingSha256(path, hashlib.sha256))
    assert None is hash_unchanged(tree, "big", before, False)


# --- the code that reads: worker, reconcile, rebuild ----------------------------------------


class Remote:
    """A MockTransport handler storing uploads (and accepting deletes), recording both."""

    def __init__(self) -> None:
        self.bodies: list[bytes] = []
        self.deleted: list[str] = []
        self._lock = threading.Lock()

    def __call__(self, request: httpx.Request) -> httpx.Response:
        with self._lock:
            if request.method == "DELETE":
                self.deleted.append(request.url.path.rsplit("/", 1)[1])
                return httpx.Response(200, json={"id": "x", "type": "file_deleted"})
            body = request.read()
            self.bodies.append(body)
            content = body.split(b"\r\n\r\n", 1)[1].rsplit(b"\r\n--", 1)[0]
            return httpx.Response(200, json=remote_json(f"file_{len(self.bodies)}", len(content)))


def remote_json(file_id: str, size: int, filename: str = "f") -> dict[str, Any]:
    return {"id": file_id, "type": "file", "filename": filename, "mime_type": "text/plain",
            "size_bytes": size, "created_at": "2025-04-15T18:37:24Z", "downloadable": False}


@contextmanager
def syncer(tmp_path: Path, root: Path, remote: Remote, follow: bool = False,
           clock: Callable[[], float] = lambda: 2e9) -> Iterator[Syncer]:
    """A Syncer on a real journal, its client answered by ``remote``."""
    client = FilesClient(
        KEY, "https://files.test", pacer=Pacer(6e6, burst=10**6), sleep=lambda _: None,
        transport=httpx.MockTransport(remote), rand=lambda: 0.0,
    )
    with Journal.open(tmp_path / "j.db", root=str(root), base_url="https://files.test") as j:
        yield Syncer(SyncContext(
            root=root, rules=IgnoreRules.load(root), follow_symlinks=follow, name_prefix="",
            client=client, journal=j, queue=DirtyQueue(0.0, 0.0), gate=DeleteGate(1.0),
            clock=clock,
        ))


class SwapOnFirstCall:
    """A clock that runs ``action`` the first time it is read: just after the worker's stat."""

    def __init__(self, action: Callable[[], None]) -> None:
        self._action: Callable[[], None] | None = action

    def __call__(self) -> float:
        if self._action is not None:
            action, self._action = self._action, None
            action()
        return 2e9


def test_worker_sends_the_file_it_looked_at_when_its_directory_is_swapped_after(
    tmp_path: Path, tree: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """d swapped for a link out of root after the look: the sniff and the upload read the file
    the look opened (inside root), never what the link now leads to."""
    heads: list[bytes] = []
    real = content_type

    def sniff(path: str, head: bytes) -> str:
        heads.append(head)
        return real(path, head)

    monkeypatch.setattr("syncd.engine.worker.content_type", sniff)
    remote = Remote()
    clock = SwapOnFirstCall(lambda: swap_d_out(tree))
    with syncer(tmp_path, tree, remote, clock=clock) as s:
        s.process("d/f")
    leaked = [b for b in [*heads, *remote.bodies] if OUTSIDE in b]
    sent = [b for b in remote.bodies if INSIDE in b]
    assert (leaked, len(sent), heads) == ([], 1, [INSIDE])


@pytest.mark.timeout(10)
def test_worker_does_not_block_on_a_fifo_swapped_in_after_its_look(
    tmp_path: Path, tree: Path
) -> None:
    """A FIFO replacing the file after the look: the worker returns at once, having sent the
    file it opened; when the path is processed again (the watcher reports the swap) the FIFO
    is no file to sync, so its copy is asked to go."""

    def to_fifo() -> None:
        (tree / "d" / "f").unlink()
        os.mkfifo(tree / "d" / "f")

    remote = Remote()
    with syncer(tmp_path, tree, remote, clock=SwapOnFirstCall(to_fifo)) as s:
        s.process("d/f")
        s.process("d/f")
        sent = [b for b in remote.bodies if INSIDE in b]
        assert (len(sent), len(remote.bodies), s.ctx.gate.pending()) == (1, 1, 1)


@pytest.mark.parametrize("follow", [False, True])
def test_race_exchanging_a_directory_never_uploads_outside_bytes(
    tmp_path: Path, follow: bool
) -> None:
    """A thread exchanging d with a link out of root while files under d upload: none leaks.

    With follow on, each file is also reached through a link in root (``l<i>`` -> ``d/f<i>``).
    """
    root = tmp_path / "root"
    (root / "d").mkdir(parents=True)
    (tmp_path / "out").mkdir()
    for i in range(RACE_ATTEMPTS):
        (root / "d" / f"f{i}").write_bytes(INSIDE)
        (tmp_path / "out" / f"f{i}").write_bytes(OUTSIDE)
        if follow:
            (root / f"l{i}").symlink_to(f"d/f{i}")
    (root / "x").symlink_to(tmp_path / "out")
    stats = [stat_of(root / "d" / f"f{i}") for i in range(RACE_ATTEMPTS)]
    remote = Remote()
    hashes: set[str | None] = set()
    with syncer(tmp_path, root, remote, follow=follow) as s:

        def attempt(i: int) -> None:
            rel = f"l{i}" if follow else f"d/f{i}"
            s.process(rel)
            hashes.add(hash_unchanged(root, rel, stats[i], follow))

        with swapping(root / "d", root / "x"):
            attempts = race(attempt)
    leaked = [b for b in remote.bodies if OUTSIDE in b]
    assert ([], True) == (leaked, hashlib.sha256(OUTSIDE).hexdigest() not in hashes)
    assert attempts > 0


def test_reconcile_does_not_adopt_a_file_rewritten_while_hashed(
    tmp_path: Path, tree: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Adoption re-checks the stat around its hash: a same-size rewrite makes the copy an orphan."""
    path = big_file(tree, "big")
    remote = Remote()
    with syncer(tmp_path, tree, remote) as s:
        j = s.ctx.journal
        intent = j.add_intent("big", "big", stat_of(path), 1.0)
        lost = RemoteFile.from_json(remote_json("file_lost", stat_of(path).size, "big"))
        monkeypatch.setattr(hashlib, "sha256", RewritingSha256(path, hashlib.sha256))
        Reconciler(s.ctx, s.ctx.gate)._adopt(intent, lost)
        row = j.get("big")
        expected = (None, ["file_lost"], "big")
        assert expected == (row and row.synced, remote.deleted, s.ctx.queue.pop_ready())


def test_rebuild_records_no_sha_for_a_file_rewritten_while_hashed(
    tmp_path: Path, tree: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Rebuild's adoption shares the check: a rewrite while hashing records no sha256."""
    path = big_file(tree, "big")
    before = stat_of(path)
    copy = RemoteFile(id="file_a", filename="big", mime_type="text/plain",
                      size_bytes=before.size, created_at=datetime.now(UTC))
    with Journal.open(tmp_path / "j.db", root=str(tree), base_url="https://files.test") as j:
        monkeypatch.setattr(hashlib, "sha256", RewritingSha256(path, hashlib.sha256))
        rebuild._adopt(j, tree, "big", before, copy, False, lambda: 2e9)
        row = j.get("big")
        assert ("file_a", "") == (row and row.synced and (row.synced.file_id, row.synced.sha256))


def test_rebuild_records_the_sha_of_an_unchanged_file(tmp_path: Path, tree: Path) -> None:
    """Rebuild's adoption of a file left alone records its content's sha256."""
    before = stat_of(tree / "d" / "f")
    copy = RemoteFile(id="file_a", filename="d%2Ff", mime_type="text/plain",
                      size_bytes=before.size, created_at=datetime.now(UTC))
    with Journal.open(tmp_path / "j.db", root=str(tree), base_url="https://files.test") as j:
        rebuild._adopt(j, tree, "d/f", before, copy, False, lambda: 2e9)
        row = j.get("d/f")
        expected = hashlib.sha256(INSIDE).hexdigest()
        assert expected == (row and row.synced and row.synced.sha256)

