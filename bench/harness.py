"""The bench's moving parts: an emulator process, syncd processes, trees and timing helpers.

Everything measured runs in its own process (the emulator, syncd, every baseline), so no two of
them share a GIL. Servers bind 127.0.0.1 only; every wait has a deadline; every process started
here is stopped here.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import random
import re
import secrets
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from syncd.remote.names import decode_name, encode_name

API_KEY = "sk-ant-bench-0123456789abcdef"
EXTENSIONS = (".txt", ".md", ".py", ".json", ".csv", ".pdf", ".log", "")
PY = sys.executable
_LISTENING = re.compile(r"listening on (http://\S+)")
HEADERS = {"x-api-key": API_KEY, "anthropic-version": "2023-06-01",
           "anthropic-beta": "files-api-2025-04-14"}


def wait_until(check: Callable[[], bool], timeout: float, what: str,
               interval: float = 0.05) -> None:
    """Poll ``check`` until true; raise TimeoutError naming ``what`` after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(interval)


def median(values: list[float]) -> float:
    """The median (of one value: that value)."""
    return float(statistics.median(values))


def percentile(values: list[float], q: float) -> float:
    """The ``q`` quantile (0..1) by linear interpolation between closest ranks."""
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q
    low = int(pos)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (pos - low)


def stop_process(proc: subprocess.Popen[Any], timeout: float = 30.0) -> int:
    """SIGTERM, wait, then SIGKILL if it has not exited; return its exit code."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
    return proc.returncode


def vm_kib(pid: int, key: str) -> int:
    """A ``/proc/PID/status`` field in KiB (VmHWM: peak RSS, VmRSS: current RSS)."""
    with open(f"/proc/{pid}/status") as fh:
        for line in fh:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    raise KeyError(key)


# ---------------------------------------------------------------------------------------------
# The emulator, in its own process


class Emulator:
    """``python -m syncd emulator`` on a free loopback port, with its control endpoints."""

    def __init__(self, data_dir: Path, *, rpm: int | None = None,
                 linger_seconds: float = 2.0, ratelimit_headers: bool = False) -> None:
        self.data_dir = data_dir
        args = [PY, "-m", "syncd", "emulator", "--port", "0", "--data", str(data_dir),
                "--api-key", API_KEY, "--linger-seconds", str(linger_seconds)]
        if rpm is not None:
            args += ["--rate-limit-rpm", str(rpm)]
        if ratelimit_headers:
            args.append("--ratelimit-headers")
        data_dir.mkdir(parents=True, exist_ok=True)
        self._log = open(data_dir.parent / f"{data_dir.name}.log", "wb")  # noqa: SIM115
        self.proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=self._log)
        self.base_url = self._read_url(timeout=30)
        self.http = httpx.Client(base_url=self.base_url, headers=HEADERS, timeout=60)

    def _read_url(self, timeout: float) -> str:
        found: list[str] = []

        def read() -> None:
            assert self.proc.stdout is not None
            for raw in self.proc.stdout:
                match = _LISTENING.search(raw.decode(errors="replace"))
                if match:
                    found.append(match.group(1))
                    return

        reader = threading.Thread(target=read, daemon=True)
        reader.start()
        reader.join(timeout)
        if not found:
            self.close()
            raise RuntimeError(f"the emulator did not start (see {self._log.name})")
        return found[0]

    @property
    def pid(self) -> int:
        """The emulator's process id."""
        return self.proc.pid

    def stats(self) -> dict[str, int]:
        """Request counts since the last reset."""
        return dict(self.http.get("/_emulator/stats").json())

    def reset_stats(self) -> None:
        """Zero the counters."""
        self.http.post("/_emulator/stats/reset")

    def files(self) -> list[dict[str, Any]]:
        """Everything a listing shows (live and lingering), newest first, with sha256."""
        return list(self.http.get("/_emulator/files").json())

    def live(self) -> dict[str, list[str]]:
        """Live non-foreign files: decoded path (else raw name) -> sha256 of every copy."""
        copies: dict[str, list[str]] = {}
        for f in self.files():
            if f["foreign"] or f["deleted"]:
                continue
            path = decode_name(f["filename"]) or f["filename"]
            copies.setdefault(path, []).append(f["sha256"])
        return copies

    def close(self) -> None:
        """Stop the process."""
        with contextlib.suppress(Exception):
            self.http.close()
        stop_process(self.proc)
        if self.proc.stdout is not None:
            self.proc.stdout.close()
        self._log.close()

    def __enter__(self) -> Emulator:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def requests_total(stats: dict[str, int]) -> int:
    """All /v1 requests in a stats snapshot."""
    return sum(stats.get(op, 0) for op in ("upload", "list", "get", "download", "delete"))


# ---------------------------------------------------------------------------------------------
# syncd, in its own process


RECONCILE_INTERVAL = 86400.0  # the bench's syncd: no periodic pass inside a measurement


@dataclass
class SyncdSetup:
    """A root, a journal and a config file for one syncd under test."""

    work: Path
    base_url: str
    rpm: float | None = 1_000_000  # None: leave requests_per_minute unset (learned pacing)
    burst: int = 1000
    settle: float = 0.3
    workers: int = 4
    extra_sync: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.root = self.work / "root"
        self.root.mkdir(parents=True, exist_ok=True)
        self.journal = self.work / "state" / "journal.db"
        self.config = self.work / "syncd.toml"
        sync = {"settle_seconds": self.settle, "settle_max_seconds": max(5.0, self.settle * 4),
                "workers": self.workers, "reconcile_interval_seconds": RECONCILE_INTERVAL,
                "rescan_interval_seconds": 86400.0, "max_delete_fraction": 1.0,
                **self.extra_sync}
        lines = [f"root = {_toml(str(self.root))}", "", "[remote]",
                 f"base_url = {_toml(self.base_url)}", f"burst = {self.burst}"]
        if self.rpm is not None:
            lines.append(f"requests_per_minute = {self.rpm}")
        lines += ["", "[sync]"]
        lines += [f"{k} = {_toml(v)}" for k, v in sync.items()]
        lines += ["", "[state]", f"journal = {_toml(str(self.journal))}", "", "[log]",
                  'format = "json"', 'level = "info"', ""]
        self.config.write_text("\n".join(lines))

    def env(self) -> dict[str, str]:
        """The environment syncd runs with (the key; nothing from the caller's SYNCD_*)."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("SYNCD_")}
        env["ANTHROPIC_API_KEY"] = API_KEY
        env.pop("NOTIFY_SOCKET", None)
        return env

    def sync_once(self, timeout: float = 900.0) -> tuple[float, int]:
        """``syncd sync``: (wall seconds from launch to exit, exit code)."""
        log = open(self.work / "sync.log", "ab")  # noqa: SIM115
        started = time.perf_counter()
        try:
            proc = subprocess.run([PY, "-m", "syncd", "sync", "--config", str(self.config)],
                                  env=self.env(), stdout=subprocess.DEVNULL, stderr=log,
                                  timeout=timeout, check=False)
        finally:
            log.close()
        return time.perf_counter() - started, proc.returncode


def _toml(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    return '"' + str(value).replace("\\", "\\\\").replace('"', '\\"') + '"'


class Daemon:
    """``syncd run`` with a NOTIFY_SOCKET this bench listens on for as long as it runs.

    A thread reads every notification (READY=1, the last STATUS=), as systemd does: an unread
    socket fills within ~10 datagrams, and a daemon whose notifications block would never
    answer SIGTERM."""

    def __init__(self, setup: SyncdSetup) -> None:
        self.setup = setup
        # AF_UNIX paths are short (108 bytes): keep the socket out of deep scratch directories.
        self._sock_path = Path(tempfile.gettempdir()) / f"syncd-bench-{secrets.token_hex(6)}.sock"
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self._sock.bind(str(self._sock_path))
        self._sock.settimeout(0.2)  # how often the reader looks at its stop event
        env = setup.env()
        env["NOTIFY_SOCKET"] = str(self._sock_path)
        self.log_path = setup.work / "daemon.log"
        self._log = open(self.log_path, "ab")  # noqa: SIM115
        self.started = time.perf_counter()
        self.proc = subprocess.Popen(
            [PY, "-m", "syncd", "run", "--config", str(setup.config)],
            env=env, stdout=subprocess.DEVNULL, stderr=self._log,
        )
        self.ready_after: float | None = None
        self.status = ""  # the last STATUS= the daemon sent
        self._ready = threading.Event()
        self._stop = threading.Event()
        self._reader = threading.Thread(target=self._read_notifications, daemon=True,
                                        name="bench-notify")
        self._reader.start()

    def _read_notifications(self) -> None:
        """Until close(): every datagram read; READY=1 timed, the last STATUS= kept."""
        while not self._stop.is_set():
            try:
                message = self._sock.recv(4096)
            except TimeoutError:
                continue
            except OSError:
                return
            for line in message.decode(errors="replace").split("\n"):
                if line == "READY=1" and self.ready_after is None:
                    self.ready_after = time.perf_counter() - self.started
                    self._ready.set()
                elif line.startswith("STATUS="):
                    self.status = line.removeprefix("STATUS=")

    def wait_ready(self, timeout: float = 300.0) -> float:
        """Block until READY=1; return seconds from launch."""
        deadline = time.monotonic() + timeout
        while not self._ready.wait(min(1.0, max(0.0, deadline - time.monotonic()))):
            if time.monotonic() >= deadline or self.proc.poll() is not None:
                raise RuntimeError(f"syncd run did not become ready (see {self.log_path})")
        assert self.ready_after is not None  # set before the event
        return self.ready_after

    def peak_kib(self) -> int:
        """Peak resident set size so far (VmHWM)."""
        return vm_kib(self.proc.pid, "VmHWM")

    def rss_kib(self) -> int:
        """Resident set size now (VmRSS)."""
        return vm_kib(self.proc.pid, "VmRSS")

    def log_events(self, event: str) -> list[dict[str, Any]]:
        """Parsed JSON log lines whose event is ``event``."""
        import json

        out = []
        for line in self.log_path.read_text(errors="replace").splitlines():
            if f'"{event}"' in line:
                with contextlib.suppress(ValueError):
                    record = json.loads(line)
                    if record.get("event") == event:
                        out.append(record)
        return out

    def close(self) -> int:
        """SIGTERM and wait (still reading notifications), then stop reading; the exit code."""
        code = stop_process(self.proc)
        self._stop.set()
        self._reader.join(5)
        self._log.close()
        self._sock.close()
        self._sock_path.unlink(missing_ok=True)
        return code

    def __enter__(self) -> Daemon:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# ---------------------------------------------------------------------------------------------
# Trees


def tree_dirs(n_files: int, seed: int = 7) -> list[str]:
    """Directories for ``n_files`` files in a realistic shape: about one per 20 files, most
    leaves 3 to 6 levels deep (10k files: ~500 directories; 1M: ~50,000)."""
    rng = random.Random(seed)
    dirs: list[tuple[str, int]] = [("", 0)]
    while len(dirs) <= max(1, n_files // 20):
        parent, depth = rng.choice(dirs)
        if depth >= 6 or (depth < 2 and len(dirs) > 40 and rng.random() < 0.9):
            continue  # the top levels get some breadth first, then the tree grows down
        name = f"s{len(dirs):05d}"
        dirs.append((f"{parent}/{name}" if parent else name, depth + 1))
    return [d for d, _depth in dirs[1:]]


def make_tree(root: Path, n: int, size: int, *, old_mtime: bool = False,
              seed: int = 7) -> list[tuple[str, os.stat_result, bytes]]:
    """``n`` files of ``size`` bytes spread 15-25 per directory over :func:`tree_dirs`;
    returns (rel, stat, content) in creation order."""
    rng = random.Random(seed)
    out = []
    past = time.time_ns() - 3600 * 10**9
    filler = secrets.token_bytes(max(0, size - 32))
    dirs = tree_dirs(n, seed)
    i = 0
    for d in itertools.cycle(dirs):
        if i >= n:
            break
        (root / d).mkdir(parents=True, exist_ok=True)
        for _ in range(min(n - i, rng.randint(15, 25))):
            rel = f"{d}/f{i:07d}{EXTENSIONS[i % len(EXTENSIONS)]}"
            data = (f"{i:031d}\n".encode() + filler)[:size]
            with open(root / rel, "wb") as fh:
                fh.write(data)
            if old_mtime:
                os.utime(root / rel, ns=(past, past))
            out.append((rel, os.stat(root / rel), data))
            i += 1
    return out


def big_file(path: Path, size: int) -> Path:
    """A file of ``size`` bytes of incompressible data (made once, then reused)."""
    if path.exists() and path.stat().st_size == size:
        return path
    block = secrets.token_bytes(1 << 20)
    with open(path, "wb") as fh:
        left = size
        while left > 0:
            fh.write(block[: min(left, len(block))])
            left -= len(block)
    return path


def prefill_emulator(data: Path, tree: list[tuple[str, os.stat_result, bytes]]) -> list[str]:
    """An emulator data dir that already holds ``tree`` as our uploads; returns the file ids.

    Uploading 100,000 files would take minutes; the bench writes the rows the emulator would
    hold after that sync (metadata only: listing never reads content bytes).
    """
    import hashlib
    from datetime import UTC, datetime

    from syncd.emulator.store import FileStore, new_id

    FileStore(data, time.time, 2.0).close()
    created = datetime.fromtimestamp(time.time() - 60, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    rows = [(new_id("file"), encode_name(rel), "text/plain", st.st_size,
             hashlib.sha256(content).hexdigest(), created, 0, 0) for rel, st, content in tree]
    with contextlib.closing(sqlite3.connect(data / "meta.sqlite3")) as db, db:
        db.executemany(
            "INSERT INTO files (id, filename, mime_type, size, sha256, created_at, downloadable,"
            " is_foreign, deleted_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, NULL)", rows)
    return [row[0] for row in rows]


def prefill_journal(journal: Path, root: Path, base_url: str,
                    tree: list[tuple[str, os.stat_result, bytes]], ids: list[str],
                    listed_at: float | None = None) -> None:
    """A syncd journal in which every file of ``tree`` is synced to ``ids``, written in bulk.

    The same rows ``Journal.commit_upload`` writes, one transaction for all of them. With
    ``listed_at``, the journal also records a complete listing (a full reconcile) at that time,
    as a daemon that ran its periodic pass then would have: a restart before the pass is due
    again sends one request instead of the whole listing.
    """
    import hashlib

    from syncd.engine.reconcile import LISTED_META
    from syncd.journal import Journal

    with contextlib.closing(Journal.open(journal, os.fsdecode(root.absolute()), base_url)) as j:
        if listed_at is not None:
            j.set_meta(LISTED_META, repr(listed_at))
    now = time.time()
    rows = [(os.fsencode(rel), file_id, encode_name(rel), hashlib.sha256(content).hexdigest(),
             st.st_size, st.st_mtime_ns, st.st_ino, "text/plain", now)
            for (rel, st, content), file_id in zip(tree, ids, strict=True)]
    with contextlib.closing(sqlite3.connect(journal)) as db, db:
        db.executemany(
            "INSERT INTO files (path, file_id, remote_name, sha256, size, mtime_ns, ino,"
            " mime_type, synced_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)


@contextlib.contextmanager
def emulator_for(work: Path, **kwargs: Any) -> Iterator[Emulator]:
    """A fresh emulator whose data lives under ``work``."""
    emu = Emulator(work / "emulator", **kwargs)
    try:
        yield emu
    finally:
        emu.close()
