"""A sync test bench: a real folder, the emulator over loopback, and a daemon wired to both."""

from __future__ import annotations

import hashlib
import os
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from syncd.config import Settings, load_settings
from syncd.emulator.app import EmulatorConfig, RunningEmulator, run_emulator
from syncd.engine import oneshot
from syncd.engine.mirror import Mirror, Options
from syncd.local.ignore import IgnoreRules
from syncd.local.scan import walk
from syncd.remote.client import FilesClient
from syncd.remote.names import decode_name
from syncd.remote.pacer import Pacer
from syncd.remote.protocol import GA_VERSION
from syncd.remote.turns import Turns
from syncd.service.loop import run_daemon

API_KEY = "sk-ant-bench-key-0123456789abcdef"
FOREIGN = {"foreign-report.pdf": b"%PDF-1.4 not ours", "docs%2Fa.txt": b"same name as ours"}


def wait_until(check: Callable[[], bool], timeout: float = 30.0, what: str = "condition") -> None:
    """Poll ``check`` every 50 ms until true; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class Bench:
    """A root folder, an emulator with foreign files, and settings pointing at both."""

    def __init__(self, tmp: Path, emu: RunningEmulator, api_version: str = GA_VERSION,
                 **sync: Any) -> None:
        self.tmp = tmp
        self.root = tmp / "root"
        self.root.mkdir(exist_ok=True)
        self.emu = emu
        self.api_version = api_version
        self.remote_options: dict[str, Any] = {}  # extra [remote] keys for settings()
        self.sync = {"settle_seconds": 0.3, "settle_max_seconds": 5.0, "workers": 4, **sync}
        self.foreign_ids = {
            emu.seed_foreign(name, data): sha(data) for name, data in FOREIGN.items()
        }

    def settings(self, **sync: Any) -> Settings:
        return load_settings(
            None,
            root=self.root,
            remote={"base_url": self.emu.base_url, "requests_per_minute": 60000, "burst": 100,
                    "api_version": self.api_version, **self.remote_options},
            state={"journal": self.tmp / "state" / "journal.db"},
            sync={**self.sync, **sync},
        )

    def client(self, **kwargs: Any) -> FilesClient:
        """A client whose waits are not slept (or go through ``self.sleep`` when set)."""
        kwargs.setdefault("max_retries", 8)
        kwargs.setdefault("pacer", Pacer(60000, burst=100))
        kwargs.setdefault("api_version", self.api_version)
        kwargs.setdefault("expires_in_seconds", self.settings().remote.expires_in_seconds)
        return FilesClient(
            API_KEY, self.emu.base_url, sleep=self.sleep, rand=lambda: 0.0, **kwargs
        )

    sleep: Callable[[float], None] = staticmethod(lambda s: None)  # type: ignore[assignment]
    client_options: dict[str, Any] = {}  # noqa: RUF012 - per-instance override below

    clock: Callable[[], float] = staticmethod(time.time)  # type: ignore[assignment]

    def daemon(self, options: Options | None = None, **sync: Any) -> Mirror:
        return Mirror(
            self.settings(**sync), options or Options(), client=self.client(**self.client_options),
            clock=self.clock,
        )

    def sync_once(self, options: Options | None = None, **sync: Any) -> int:
        with self.daemon(options, **sync) as daemon:
            return oneshot.sync_once(daemon)

    @contextmanager
    def running(self, **sync: Any) -> Iterator[Mirror]:
        """The daemon's run loop in a thread (with its real inotify watcher)."""
        daemon = self.daemon(**sync)
        try:
            with run_in_thread(daemon, 30):
                yield daemon
        finally:
            daemon.close()

    # --- what is where ---------------------------------------------------------------------

    def write(self, rel: str, data: bytes) -> Path:
        path = self.root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        return path

    def local(self) -> dict[str, str]:
        """Eligible local files -> sha256."""
        rules = IgnoreRules.load(self.root)
        return {
            item[0]: sha((self.root / item[0]).read_bytes())
            for item in walk(self.root, rules, False, lambda *_: None)
            if isinstance(item, tuple)
        }

    def decode(self, remote_name: str) -> str | None:
        """The path of the folder under test a remote name stands for (None: not its name)."""
        return decode_name(remote_name)

    def remote(self) -> dict[str, list[str]]:
        """Our live files in the emulator: decoded path -> sha256 of every copy."""
        copies: dict[str, list[str]] = {}
        for f in self.emu.stored():
            if f.foreign or f.deleted or self.neighbours(f.filename):
                continue
            path = self.decode(f.filename) or f.filename
            copies.setdefault(path, []).append(f.sha256)
        return copies

    def neighbours(self, remote_name: str) -> bool:
        """True for a file of another folder of the same daemon (none here)."""
        return False

    def converged(self) -> bool:
        """Remote == local, one copy each, foreign files intact."""
        local = self.local()
        remote = self.remote()
        return {p: [h] for p, h in local.items()} == remote and self.foreign_intact()

    def foreign_intact(self) -> bool:
        stored = {f.id: f.sha256 for f in self.emu.stored() if f.foreign and not f.deleted}
        return stored == self.foreign_ids

    def assert_converged(self) -> None:
        expected = {p: [h] for p, h in self.local().items()}
        assert expected == self.remote()
        assert self.foreign_intact()

    def counts(self) -> dict[str, int]:
        stats = self.emu.stats()
        return {op: stats[op] for op in ("upload", "list", "get", "delete") if stats[op]}


NEIGHBOUR = {"n/one.txt": b"neighbour one", "two.txt": b"neighbour two", "main": b"x"}


class TwoFolderBench(Bench):
    """The same bench with a second folder in the same daemon: the folder under test mirrors
    under "main/", its neighbour under "other/" with files of its own, both on one pacer taken
    in turns (as ``open_mirrors`` builds them). Every convergence check covers the neighbour
    too: whatever happens to the folder under test, the neighbour stays exact."""

    PREFIX, OTHER = "main/", "other/"

    def __init__(self, tmp: Path, emu: RunningEmulator, api_version: str = GA_VERSION,
                 **sync: Any) -> None:
        super().__init__(tmp, emu, api_version, **sync)
        self.other = tmp / "other"
        for rel, data in NEIGHBOUR.items():
            (self.other / rel).parent.mkdir(parents=True, exist_ok=True)
            (self.other / rel).write_bytes(data)
        self.turns = Turns(Pacer(60000, burst=100))
        self.neighbour_ran = False  # checked exact when the bench closes (bench())

    def settings(self, **sync: Any) -> Settings:
        one = super().settings(**sync)
        return one.model_copy(update={"remote": one.remote.model_copy(
            update={"name_prefix": self.PREFIX})})

    def other_settings(self, **sync: Any) -> Settings:
        one = super().settings(**sync)
        return one.model_copy(update={
            "root": self.other,
            "remote": one.remote.model_copy(update={"name_prefix": self.OTHER}),
            "state": one.state.model_copy(update={"journal": self.tmp / "state" / "other.db"}),
        })

    def daemon(self, options: Options | None = None, **sync: Any) -> Mirror:
        client = self.client(pacer=self.turns.folder("main"), **self.client_options)
        return Mirror(self.settings(**sync), options or Options(), client=client,
                      clock=self.clock, name="main")

    def neighbour(self, options: Options | None = None, **sync: Any) -> Mirror:
        client = self.client(pacer=self.turns.folder("other"))
        return Mirror(self.other_settings(**sync), options or Options(), client=client,
                      clock=self.clock, name="other")

    def sync_once(self, options: Options | None = None, **sync: Any) -> int:
        """Both folders, one after the other as `syncd sync` does; the folder under test's code."""
        with self.daemon(options, **sync) as main, self.neighbour(options, **sync) as other:
            code = oneshot.sync_once(main)
            oneshot.sync_once(other)
            self.neighbour_ran = True
            return code

    @contextmanager
    def running(self, **sync: Any) -> Iterator[Mirror]:
        main, other = self.daemon(**sync), self.neighbour(**sync)
        self.neighbour_ran = True
        try:
            with run_in_thread([main, other], 30):
                yield main
        finally:
            main.close()
            other.close()

    def sync_neighbour(self) -> int:
        """One more pass of the neighbour alone (faults off): what it converges to."""
        with self.neighbour() as other:
            return oneshot.sync_once(other)

    def decode(self, remote_name: str) -> str | None:
        return decode_name(remote_name, self.PREFIX)

    def neighbours(self, remote_name: str) -> bool:
        return decode_name(remote_name, self.OTHER) is not None

    def neighbour_exact(self) -> bool:
        """The neighbour folder's files are in the workspace exactly once each, as they are."""
        live = [f for f in self.emu.stored() if not f.deleted and self.neighbours(f.filename)]
        got = sorted((decode_name(f.filename, self.OTHER), f.sha256) for f in live)
        return got == sorted((rel, sha(data)) for rel, data in NEIGHBOUR.items())

    def converged(self) -> bool:
        return super().converged() and self.neighbour_exact()

    def assert_converged(self) -> None:
        super().assert_converged()
        assert self.neighbour_exact()


@contextmanager
def bench(
    tmp: Path, faults: Any = None, clock: Callable[[], float] = time.time,
    api_version: str = GA_VERSION, page_max: int | None = None, folders: int = 1, **sync: Any
) -> Iterator[Bench]:
    """A Bench on a fresh emulator (``clock`` drives the emulator's rate limiter and times);
    ``folders=2``: a :class:`TwoFolderBench`."""
    from syncd.emulator.faults import Faults

    cfg = EmulatorConfig(
        data_dir=tmp / "emulator", api_key=API_KEY, linger_seconds=1.0,
        faults=faults or Faults(), seed=7, clock=clock, page_max=page_max,
    )
    kind = TwoFolderBench if folders == 2 else Bench
    with run_emulator(cfg) as emu:
        b = kind(tmp, emu, api_version, **sync)
        yield b
        if isinstance(b, TwoFolderBench) and b.neighbour_ran:
            b.emu.set_faults(Faults())
            oneshot_code = b.sync_neighbour()
            assert (oneshot_code, b.neighbour_exact()) == (0, True), "the neighbour drifted"


def listdir_bytes(root: Path) -> list[bytes]:
    return sorted(os.listdir(os.fsencode(root)))


@contextmanager
def run_in_thread(daemon: Mirror | list[Mirror], timeout: float) -> Iterator[None]:
    """``daemon``'s run loop in a thread (real watcher) until READY, stopped on exit; the loop
    must end with exit code 0."""
    stop, ready = threading.Event(), threading.Event()
    codes: list[int] = []
    thread = threading.Thread(
        target=lambda: codes.append(run_daemon(daemon, stop, on_ready=ready.set)), daemon=True
    )
    thread.start()
    try:
        assert ready.wait(timeout), "daemon did not become ready"
        yield
    finally:
        stop.set()
        thread.join(timeout=timeout)
    assert codes == [0]
