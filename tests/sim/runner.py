"""One seed of the simulation: a random folder, `syncd run` as a real subprocess mirroring it to
the emulator over loopback, random operations (and, in crash profiles, SIGKILLs), then the
oracle once the daemon has had a bounded time to converge by itself.

Remote operations (``ops.REMOTE``) are applied to the emulator by :class:`RemoteOps`: an
out-of-band delete through the API with the key, as another program would, and a spell of
page listings cut short (the emulator's ``short_list_rate`` fault)."""

from __future__ import annotations

import contextlib
import ctypes
import dataclasses
import json
import multiprocessing
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import httpx

from syncd.cli.report import escape_path
from syncd.emulator.app import EmulatorConfig, RunningEmulator, run_emulator
from syncd.emulator.faults import Faults
from syncd.errors import JournalError
from syncd.remote.names import decode_name, encode_name
from tests.sim import oracle
from tests.sim.ops import OUTSIDE_MARK, Names, Op, World, initial_tree, next_op
from tests.sim.profiles import PROFILES, Profile

REPO = Path(__file__).resolve().parents[2]
LIMIT = 4_000_000  # the emulator's size limit: a few MB pass, the rare tens of MB do not
CONVERGE_SECONDS = 90.0
STATUS_SECONDS = 20.0  # for `syncd status` to reach pending 0 once the mirror is exact
TRIGGERS = ("upload", "answered", "commit", "list", "random")


@dataclass
class SeedResult:
    """The outcome of one seed."""

    profile: str
    seed: int
    ok: bool = False
    seconds: float = 0.0
    converge_seconds: float = 0.0
    kills: int = 0
    injected: dict[str, int] = field(default_factory=dict)  # faults the emulator injected
    ops: list[str] = field(default_factory=list)
    diff: list[str] = field(default_factory=list)
    workdir: str = ""

    def report(self) -> str:
        """The seed, its operations and the diff (printed for a failure, kept in report.txt)."""
        lines = [f"{'PASSED' if self.ok else 'FAILED'} seed {self.seed} profile {self.profile} "
                 f"(replay: python -m tests.sim --profile {self.profile} --seed {self.seed}; "
                 f"files kept in {self.workdir})", "operations:"]
        lines += [f"  {line}" for line in self.ops]
        lines.append("diff:")
        lines += [f"  {line}" for line in self.diff]
        return "\n".join(lines)


class DaemonProcess:
    """`python -m syncd run` with its JSON log on stderr going to a file per start."""

    def __init__(self, config: Path, key: str, logs: Path, cli_args: list[str]) -> None:
        self.config = config
        self.cli_args = cli_args  # for every cli() command: which folder the checks read
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("SYNCD_")}
        self.env["ANTHROPIC_API_KEY"] = key
        self.env["PYTHONFAULTHANDLER"] = "1"  # a fatal signal logs every thread's stack
        self.logs = logs
        self.starts = 0
        self.proc: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    def start(self) -> None:
        """Start a new daemon process."""
        self.starts += 1
        self._log = open(self.logs / f"daemon-{self.starts}.log", "wb")  # noqa: SIM115
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "syncd", "run", "--config", str(self.config)],
            env=self.env, cwd=REPO, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=self._log, preexec_fn=_die_with_parent,
        )

    def last_log(self) -> bytes:
        """What the current (or last) daemon process has logged so far."""
        return (self.logs / f"daemon-{self.starts}.log").read_bytes()

    def exited(self) -> int | None:
        """The exit code if the daemon is not running (None while it runs)."""
        return None if self.proc is None else self.proc.poll()

    def kill(self) -> None:
        """SIGKILL: no drain, no cleanup."""
        self._signal(signal.SIGKILL, 10.0)

    def stop(self, timeout: float = 30.0) -> int | None:
        """SIGTERM and wait; the exit code, or None if it had to be killed."""
        return self._signal(signal.SIGTERM, timeout)

    def _signal(self, sig: int, timeout: float) -> int | None:
        proc, self.proc = self.proc, None
        if proc is None:
            return None
        code: int | None
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(sig)
        try:
            code = proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
            code = None
        if self._log is not None:
            self._log.close()
        return code

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        """Run another syncd command on the same config (it reads the journal read-only)."""
        # A strict stdout, as under a UTF-8 locale other than C: non-UTF-8 names must print.
        env = {**self.env, "PYTHONIOENCODING": "utf-8:strict"}
        done = subprocess.run(
            [sys.executable, "-m", "syncd", *args, "--config", str(self.config),
             *self.cli_args],
            env=env, cwd=REPO, capture_output=True, text=True, timeout=60,
            errors="surrogateescape",
        )
        name = f"cli-{args[0]}-{self.starts}.txt"
        (self.logs / name).write_text(done.stdout + done.stderr, errors="surrogateescape")
        return done


def _die_with_parent() -> None:
    """In the child: SIGKILL it if the simulation process dies (no stray daemons)."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


class Sim:
    """The state of one seed's run."""

    def __init__(self, profile: Profile, seed: int, workdir: Path) -> None:
        self.profile = profile
        self.seed = seed
        self.rng = random.Random(seed)
        self.crash_rng = random.Random(seed * 1_000_003 + 17)
        self.workdir = workdir
        self.root = workdir / "root"
        self.journal = workdir / "state" / "journal.db"
        self.logs = workdir / "logs"
        for d in (self.root, workdir / "outside", self.journal.parent, self.logs):
            d.mkdir(parents=True)
        (workdir / "elsewhere.txt").write_text("a file outside root\n")
        self.world = World(self.root, workdir / "outside", LIMIT, tag=f"seed{seed}",
                           extra_seed=seed * 7_919 + 101)
        self.names = Names(self.rng)
        self.key = f"sk-ant-sim-{seed:08x}-{self.rng.getrandbits(64):016x}"
        self.prefix = self.rng.choice(["", "", "sim/mirror"])
        if profile.folders == 2:  # folders' prefixes must not start one another
            self.prefix = self.rng.choice(["sim/", "sim/mirror"])
            self.neighbour = workdir / "neighbour"
            for rel, data in NEIGHBOUR.items():
                (self.neighbour / rel).parent.mkdir(parents=True, exist_ok=True)
                (self.neighbour / rel).write_bytes(data)
        self.follow = self.rng.random() < 0.3
        self.result = SeedResult(profile.name, seed, workdir=str(workdir))
        self.foreign: dict[str, str] = {}  # file_id -> sha256 of the seeded foreign files
        self.remote_deleted: set[str] = set()  # our copies remote_delete deleted
        self.want: oracle.Expected | None = None  # the local truth once the ops stopped
        self.remote: RemoteOps | None = None  # set while the operations run
        self.base_url = ""

    def log(self, line: str) -> None:
        """Add a line to the record a failure prints."""
        self.result.ops.append(line)

    def apply(self, op: Op, note: str = "") -> None:
        """Record an operation, then apply it (to the folder, or to the emulator for a remote
        one); what went wrong, or what a remote op did, is added to its line."""
        if self.remote is not None:
            self.remote.tick()
        self.log(f"{note}{op}")
        line = len(self.result.ops) - 1
        outcome = self.world.apply(op)
        if outcome:
            self.result.ops[line] += f"  [{outcome}]"

    def seed_foreign(self, emu: RunningEmulator) -> None:
        """Files another program uploaded, some with names that look like ours."""
        names = ["foreign-report.pdf", "notes.txt", "other%2Fdocs%2Fa.txt"]
        if self.prefix:
            names.append(encode_name("docs/a.txt"))  # ours, were it not for the prefix
        for i, name in enumerate(names):
            data = b"foreign %d, not ours\n" % i * (i + 1)
            file_id = emu.seed_foreign(name, data)
            self.foreign[file_id] = oracle.file_digest_bytes(data)

    def config(self) -> Path:
        """The daemon's config: quick settle, reconcile and rescan so a seed takes seconds;
        with a neighbour, two [[folder]] tables."""
        path = self.workdir / "syncd.toml"
        q = json.dumps
        two = self.profile.folders == 2
        folders = "".join(
            f"[[folder]]\nname = {q(name)}\nroot = {q(str(root))}\nname_prefix = {q(prefix)}\n"
            f"journal = {q(str(journal))}\n"
            for name, root, prefix, journal in (
                ("main", self.root, self.prefix, self.journal),
                ("neighbour", self.workdir / "neighbour", NEIGHBOUR_PREFIX,
                 self.journal.with_name("neighbour.db")))
        ) if two else ""
        path.write_text(
            ("" if two else f"root = {q(str(self.root))}\n")
            + "[remote]\n"
            f"base_url = {q(self.base_url)}\n"
            + ("" if two else f"name_prefix = {q(self.prefix)}\n") +
            "requests_per_minute = 6000\nburst = 20\nmax_retries = 4\ntimeout_seconds = 10\n"
            "[sync]\n"
            "workers = 3\nsettle_seconds = 0.1\nsettle_max_seconds = 2.0\n"
            "reconcile_interval_seconds = 3.0\nrescan_interval_seconds = 3.0\n"
            f"follow_symlinks = {str(self.follow).lower()}\n"
            "max_delete_fraction = 1.0\nshutdown_timeout_seconds = 5.0\n"
            + ("" if two else f"[state]\njournal = {q(str(self.journal))}\n")
            + '[log]\nlevel = "debug"\nformat = "json"\n' + folders
        )
        return path

    def stored(self, emu: RunningEmulator) -> list[Any]:
        """What the emulator holds, less the neighbour folder's files (checked on their own
        by :meth:`neighbour_diff`)."""
        return [f for f in emu.stored() if decode_name(f.filename, NEIGHBOUR_PREFIX) is None
                or self.profile.folders == 1]

    def neighbour_diff(self, emu: RunningEmulator) -> list[str]:
        """The neighbour folder's files are each in the workspace once, as they are."""
        if self.profile.folders == 1:
            return []
        live = sorted((decode_name(f.filename, NEIGHBOUR_PREFIX), f.sha256)
                      for f in emu.stored() if not f.deleted and not f.foreign
                      and decode_name(f.filename, NEIGHBOUR_PREFIX) is not None)
        want = sorted((rel, oracle.file_digest_bytes(data)) for rel, data in NEIGHBOUR.items())
        return [] if live == want else [f"neighbour folder drifted: {live} != {want}"]


class RemoteOps:
    """Applies the remote operations to the running emulator (``World.remote``)."""

    def __init__(self, sim: Sim, emu: RunningEmulator) -> None:
        self.sim = sim
        self.emu = emu
        self.short: tuple[float, str, int] | None = None  # (until, stats key, count before)

    def apply(self, op: Op) -> str:
        """Apply ``op``; what it did, or why it did nothing."""
        if op.kind == "remote_delete":
            return self.delete(op.path)
        if op.kind == "short_listing":
            return self.short_listing(op.dest, op.count / 1000)
        raise ValueError(f"not a remote operation: {op.kind}")

    def delete(self, path: str) -> str:
        """Delete our newest live copy of ``path`` through the API, as another program would
        (it meets the profile's faults too, and retries a 429 or 5xx a few times)."""
        name = encode_name(path, self.sim.prefix)
        copies = [f for f in self.emu.stored() if f.filename == name and not f.foreign
                  and not f.deleted]
        if not copies:
            return "no remote copy (yet)"
        file_id = copies[0].id  # newest first
        headers = {"authorization": f"Bearer {self.sim.key}", "anthropic-version": "2026-10-21"}
        status = 0
        with httpx.Client(base_url=self.emu.base_url, headers=headers, timeout=10) as client:
            for _ in range(4):
                try:
                    status = client.delete(f"/v1/files/{file_id}").status_code
                except httpx.TransportError:
                    status = -1
                if status in (200, 404):
                    break
                time.sleep(0.5)
        if status == 200:
            self.sim.remote_deleted.add(file_id)
            return f"deleted {file_id} at {_clock()}"
        return f"{file_id}: delete answered {status}"

    def short_listing(self, mode: str, seconds: float) -> str:
        """From now on, for ``seconds``, every page listing is cut short (``mode``); the
        operations go on meanwhile. ``tick`` (before each operation) or ``end_short_listing``
        puts the profile's faults back."""
        self.end_short_listing()
        self.short = (time.monotonic() + seconds, f"fault:short_list_{mode}",
                      self.emu.stats().get(f"fault:short_list_{mode}", 0))
        faults = self.sim.profile.faults
        self.emu.set_faults(dataclasses.replace(faults, short_list_rate=1.0,
                                                short_list_mode=mode))
        return f"for {seconds:.1f} s from {_clock()}"

    def tick(self) -> None:
        """End a spell of short listings whose time is up."""
        if self.short is not None and time.monotonic() >= self.short[0]:
            self.end_short_listing()

    def end_short_listing(self, wait: bool = False) -> None:
        """The profile's faults again (logged with how many listings were cut short); with
        ``wait``, once the spell has lasted its whole time."""
        if self.short is None:
            return
        until, key, before = self.short
        if wait:
            time.sleep(max(0.0, until - time.monotonic()))
        self.short = None
        self.emu.set_faults(self.sim.profile.faults)
        cut = self.emu.stats().get(key, 0) - before
        self.sim.log(f"short listings over at {_clock()}: {cut} cut short")


NEIGHBOUR_PREFIX = "neighbour/"
NEIGHBOUR = {"a.txt": b"the neighbour's a\n", "deep/er/b.txt": b"the neighbour's b\n",
             "docs/a.txt": b"same path as one the sim may use\n"}


def _clock() -> str:
    """The wall clock (UTC, as the daemon's log has it), to find a remote op in the logs."""
    return time.strftime("%H:%M:%S", time.gmtime()) + f".{int(time.time() * 1000) % 1000:03d}"


def run_seed(profile_name: str, seed: int, base: Path, keep: bool = False) -> SeedResult:
    """Run one seed under one profile; the workdir is removed unless it failed or ``keep``."""
    profile = PROFILES[profile_name]
    workdir = base / f"{profile_name}-{seed}"
    if workdir.exists():
        shutil.rmtree(workdir)
    started = time.monotonic()
    sim = Sim(profile, seed, workdir)
    try:
        _run(sim)
    except Exception as exc:  # the harness itself broke: report it like a divergence
        sim.result.diff.append(f"harness error: {type(exc).__name__}: {exc}")
    result = sim.result
    result.seconds = round(time.monotonic() - started, 1)
    result.ok = not result.diff
    if result.ok and not keep:
        shutil.rmtree(workdir, ignore_errors=True)
    else:  # a kept passing seed has its record too
        (workdir / "report.txt").write_text(result.report(), errors="surrogateescape")
    return result


def run_many(
    runs: list[tuple[str, int]],
    base: Path,
    jobs: int = 1,
    keep: bool = False,
    on_result: Callable[[SeedResult], object] = lambda r: None,
) -> list[SeedResult]:
    """Run (profile, seed) pairs, ``jobs`` at a time in separate processes."""
    results: list[SeedResult] = []
    if jobs <= 1:
        for profile, seed in runs:
            results.append(run_seed(profile, seed, base, keep))
            on_result(results[-1])
        return results
    context = multiprocessing.get_context("spawn")  # never fork a process that has threads
    with ProcessPoolExecutor(jobs, mp_context=context) as pool:
        futures = [pool.submit(run_seed, p, s, base, keep) for p, s in runs]
        for future in as_completed(futures):
            results.append(future.result())
            on_result(results[-1])
    return results


def _run(sim: Sim) -> None:
    cfg = EmulatorConfig(
        data_dir=sim.workdir / "emulator", api_key=sim.key, max_file_bytes=LIMIT,
        linger_seconds=sim.profile.linger, faults=sim.profile.faults, seed=sim.seed,
    )
    with run_emulator(cfg) as emu:
        sim.base_url = emu.base_url
        sim.seed_foreign(emu)
        sim.log(f"# profile {sim.profile.name}, prefix {sim.prefix!r}, "
                f"follow_symlinks {sim.follow}")
        for op in initial_tree(sim.rng, sim.names, sim.world, sim.rng.randint(20, 60)):
            sim.apply(op, "init: ")
        daemon = DaemonProcess(sim.config(), sim.key, sim.logs,
                               ["--folder", "main"] if sim.profile.folders == 2 else [])
        daemon.start()
        try:
            _operate(sim, emu, daemon)
            _converge(sim, emu, daemon)
        finally:
            code = daemon.stop()
        if code != 0:
            sim.result.diff.append(f"daemon stopped with exit code {code} (SIGTERM)")
        _final_checks(sim)
        _remote_checks(sim, emu)


def _operate(sim: Sim, emu: RunningEmulator, daemon: DaemonProcess) -> None:
    """The random operations, with kills and restarts in crash profiles; remote ones go to
    the emulator."""
    sim.remote = RemoteOps(sim, emu)
    sim.world.remote = sim.remote.apply
    count = sim.rng.randint(20, 60)
    crashes: set[int] = set()
    if sim.profile.crash:
        crashes = set(sim.crash_rng.sample(range(count), sim.crash_rng.randint(1, 3)))
    for i in range(count):
        if i in crashes:
            _crash(sim, emu, daemon)
        sim.apply(next_op(sim.rng, sim.names, sim.world.survey(), sim.world))
        _restart_if_exited(sim, daemon)


def _restart_if_exited(sim: Sim, daemon: DaemonProcess) -> None:
    """Restart a daemon that exited, as systemd's Restart=on-failure would.

    Only one exit is expected: a daemon started while the root was renamed away refuses to
    start (exit 2, "root ... is not reachable") rather than sync an empty folder. Any other
    exit is a divergence.
    """
    code = daemon.exited()
    if code is None:
        return
    said = daemon.last_log().decode(errors="replace")
    if code == 2 and "is not reachable" in said and '"event"' not in said:  # at start-up
        sim.log(f"daemon refused to start without its root (exit {code}); restarted")
    else:
        sim.result.diff.append(f"daemon exited by itself with code {code}: {said[-300:]}")
    daemon.stop()
    daemon.start()


def _crash(sim: Sim, emu: RunningEmulator, daemon: DaemonProcess) -> None:
    """Kill the daemon at a chosen kind of moment, operate while it is down, restart it."""
    _restart_if_exited(sim, daemon)  # an exit since the last operation is not a kill
    trigger = sim.crash_rng.choice(TRIGGERS)
    fired = _wait_for(trigger, sim, emu)
    if fired:
        time.sleep(sim.crash_rng.uniform(0, 0.1 if trigger == "list" else 0.02))
    daemon.kill()
    sim.result.kills += 1
    sim.log(f"SIGKILL on {trigger}" + ("" if fired else " (not seen within 3 s: killed anyway)"))
    for _ in range(sim.crash_rng.randint(0, 5)):
        sim.apply(next_op(sim.rng, sim.names, sim.world.survey(), sim.world), "while down: ")
    daemon.start()
    sim.log("restart")


def _wait_for(trigger: str, sim: Sim, emu: RunningEmulator) -> bool:
    """Poll (1 ms) until the moment ``trigger`` names; False after 3 s."""
    if trigger == "random":
        time.sleep(sim.crash_rng.uniform(0, 1.5))
        return True
    wal = sim.journal.with_name(sim.journal.name + "-wal")
    key = {"upload": "upload", "answered": "status:upload:200", "list": "list"}.get(trigger)

    def probe() -> object:
        if key is not None:
            return emu.stats().get(key, 0)
        with contextlib.suppress(OSError):
            info = wal.stat()
            return (info.st_size, info.st_mtime_ns)
        return None

    before = probe()
    deadline = time.monotonic() + 3.0
    while time.monotonic() < deadline:
        if probe() != before:
            return True
        time.sleep(0.001)
    return False


def _converge(sim: Sim, emu: RunningEmulator, daemon: DaemonProcess) -> None:
    """Faults off; poll the oracle until it holds or the time is up (the daemon alone acts)."""
    if sim.remote is not None:
        sim.remote.end_short_listing(wait=True)  # a spell of short listings lasts its time
    sim.result.injected = injected_faults(emu.stats())
    emu.set_faults(Faults())
    want = sim.want = oracle.expected_state(sim.root, sim.follow, LIMIT)
    started = time.monotonic()
    deadline = started + CONVERGE_SECONDS
    problems: list[str] = ["never checked"]
    while time.monotonic() < deadline:
        problems = _check(sim, emu, want)
        if not problems:
            break
        if daemon.exited() is not None:
            _restart_if_exited(sim, daemon)
        time.sleep(0.25)
    sim.result.converge_seconds = round(time.monotonic() - started, 1)
    if problems:
        sim.result.diff.append(f"not converged after {sim.result.converge_seconds} s:")
        sim.result.diff.extend(problems)
        return
    sim.result.diff.extend(_cli_checks(sim, emu, daemon, want))


def injected_faults(stats: dict[str, int]) -> dict[str, int]:
    """How many 429s, 5xx, dropped uploads and lost responses the emulator produced."""
    totals: dict[str, int] = {}
    for key, n in stats.items():
        if key.startswith("fault:"):
            totals[key[6:]] = totals.get(key[6:], 0) + n
        elif key.startswith("status:") and key.rsplit(":", 1)[1] in ("429", "500", "529"):
            code = key.rsplit(":", 1)[1]
            totals[code] = totals.get(code, 0) + n
    return totals


def _check(sim: Sim, emu: RunningEmulator, want: oracle.Expected) -> list[str]:
    try:
        entries, errors, intents, tombstones, queued = oracle.journal_view(sim.journal)
    except JournalError as exc:
        return [f"journal unreadable: {exc}"]
    return [
        *oracle.diff(want, entries, errors, sim.stored(emu), sim.foreign, sim.prefix),
        *sim.neighbour_diff(emu),
        *oracle.pending_diff(intents, tombstones, queued),
        *oracle.log_diff(want, oracle.log_events(sorted(sim.logs.glob("daemon-*.log")))),
    ]


def _cli_checks(sim: Sim, emu: RunningEmulator, daemon: DaemonProcess,
                want: oracle.Expected) -> list[str]:
    """The same verdict from `syncd ls --json`, `syncd errors` and `syncd status --json`."""
    out: list[str] = []
    ls = daemon.cli("ls", "--json")
    if ls.returncode != 0:
        return [f"syncd ls failed ({ls.returncode}): {ls.stderr.strip()}"]
    errors = oracle.journal_view(sim.journal)[1]
    entries = oracle.entries_from_ls_json(ls.stdout)
    out += oracle.diff(want, entries, errors, sim.stored(emu), sim.foreign, sim.prefix)
    text = daemon.cli("ls")
    out += [f"syncd ls does not show {e.path!r}" for e in entries
            if f"{e.file_id}  {e.size:>12}  {escape_path(e.path)}" not in text.stdout]
    listed = daemon.cli("errors")
    if listed.returncode != (1 if errors else 0):
        out.append(f"syncd errors exit code {listed.returncode} with {len(errors)} errors")
    out += [f"syncd errors does not show {e.path!r}" for e in errors
            if f"{e.kind:<9}  {e.path}: {e.message}" not in listed.stdout]
    expected = {"errors": len(want.oversize), "pending": 0, "running": True}
    # The mirror is exact by now, but the watcher may still be reporting the ops' last events
    # (a deep tree exchanged a thousand times is minutes of inotify backlog on a loaded
    # machine): each report queues a path for an instant. Status must reach pending 0, not
    # show it at one chosen instant.
    deadline = time.monotonic() + STATUS_SECONDS
    while True:
        status = daemon.cli("status", "--json")
        data = json.loads(status.stdout) if status.stdout.startswith("{") else {}
        actual = {"errors": data.get("errors"), "pending": data.get("pending"),
                  "running": bool(data.get("daemon_pid"))}
        if expected == actual or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    if expected != actual:
        out.append(f"syncd status: expected {expected}, got {actual}")
    return out


def _final_checks(sim: Sim) -> None:
    logs = sorted(sim.logs.iterdir())
    journal_files = [sim.journal.with_name(sim.journal.name + s) for s in ("", "-wal")]
    sim.result.diff.extend(oracle.integrity_diff(sim.journal))
    sim.result.diff.extend(oracle.secret_diff(sim.key, [*logs, *journal_files]))


def _remote_checks(sim: Sim, emu: RunningEmulator) -> None:
    """Over every file the emulator ever stored (deleted ones too): nothing read outside root
    (invariant 10), and no reconcile acted on a listing that lacked our live copies."""
    rows = oracle.stored_rows(emu.data_dir)
    heads = oracle.content_heads(emu.data_dir, rows, len(OUTSIDE_MARK))
    if sim.want is not None:
        inside = {sha for sha, _ in [*sim.want.files.values(), *sim.want.oversize.values()]}
        if inside & sim.world.outside_shas:  # the check below would be meaningless
            sim.result.diff.append("harness error: outside-marked content exists inside root")
    sim.result.diff.extend(oracle.outside_diff(rows, heads, sim.world.outside_shas))
    per_start = [oracle.log_events([p]) for p in sorted(sim.logs.glob("daemon-*.log"))]
    sim.result.diff.extend(oracle.false_missing_diff(per_start, rows, sim.remote_deleted))
