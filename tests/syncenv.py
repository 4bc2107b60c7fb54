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

    def remote(self) -> dict[str, list[str]]:
        """Our live files in the emulator: decoded path -> sha256 of every copy."""
        copies: dict[str, list[str]] = {}
        for f in self.emu.stored():
            if f.foreign or f.deleted:
                continue
            path = decode_name(f.filename) or f.filename
            copies.setdefault(path, []).append(f.sha256)
        return copies

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


@contextmanager
def bench(
    tmp: Path, faults: Any = None, clock: Callable[[], float] = time.time,
    api_version: str = GA_VERSION, page_max: int | None = None, **sync: Any
) -> Iterator[Bench]:
    """A Bench on a fresh emulator (``clock`` drives the emulator's rate limiter and times)."""
    from syncd.emulator.faults import Faults

    cfg = EmulatorConfig(
        data_dir=tmp / "emulator", api_key=API_KEY, linger_seconds=1.0,
        faults=faults or Faults(), seed=7, clock=clock, page_max=page_max,
    )
    with run_emulator(cfg) as emu:
        yield Bench(tmp, emu, api_version, **sync)


def listdir_bytes(root: Path) -> list[bytes]:
    return sorted(os.listdir(os.fsencode(root)))


@contextmanager
def run_in_thread(daemon: Mirror, timeout: float) -> Iterator[None]:
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
