"""The shared pacer on a real redis-server: one bucket for several hosts, a shared 429 pause
and rate, keys that never hold the API key, and local pacing while Redis is down or refuses us.

Each SharedPacer here is one "host". The bucket runs on Redis's clock, so these tests assert on
the script's answers (allowed, and how long to wait), not on how long anything took.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from structlog.testing import capture_logs

from syncd.config import load_settings
from syncd.engine.wiring import make_client
from syncd.remote.sharedpacer import RETRY_SECONDS, SharedPacer, budget_scope
from tests.conftest import Recorder
from tests.redis_server import RedisServer, running_redis
from tests.syncenv import API_KEY, bench

pytestmark = pytest.mark.timeout(120)
BASE = "https://api.anthropic.com"
SCOPE = budget_scope(BASE, API_KEY, None)
PASSWORD = "right-pass-0123456789"


@pytest.fixture
def server(tmp_path: Path) -> Iterator[RedisServer]:
    with running_redis(tmp_path / "redis") as started:
        yield started


@pytest.fixture
def secured(tmp_path: Path) -> Iterator[RedisServer]:
    """A redis-server that requires PASSWORD."""
    with running_redis(tmp_path / "redis-auth", password=PASSWORD) as started:
        yield started


def host(url: str, rpm: float = 6, burst: int = 1, **kwargs: Any) -> SharedPacer:
    """One host's pacer on the shared bucket (6/min: a slot every 10 s)."""
    kwargs.setdefault("scope", SCOPE)
    return SharedPacer(url, rpm, burst, **kwargs)


def warnings(logs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [entry for entry in logs if entry["log_level"] == "warning"]


def test_two_hosts_take_from_one_bucket_at_the_rate(server: RedisServer) -> None:
    """Burst 3 at 6/min shared by two hosts taking in turn: three takes in all go, then every
    take of either host is told to wait, at most one interval (10 s)."""
    a, b = host(server.url, burst=3), host(server.url, burst=3)
    grants = [(a if i % 2 == 0 else b).take() for i in range(10)]
    assert None not in grants
    allowed = [g.allowed for g in grants if g is not None]
    waits = [g.wait for g in grants if g is not None and not g.allowed]
    assert [True] * 3 + [False] * 7 == allowed
    assert 7 == len([w for w in waits if 0 < w <= 10.0])


def test_hosts_of_another_budget_do_not_share_the_bucket(server: RedisServer) -> None:
    """Another scope (another workspace) has its own bucket."""
    a, b = host(server.url), host(server.url, scope="ws-wrkspc_other")
    assert (True, True) == (a.take().allowed, b.take().allowed)  # type: ignore[union-attr]


def test_a_429_pause_stops_every_host(server: RedisServer) -> None:
    """One host's pause_for (a 429's retry-after) makes every host's take wait it out."""
    a, b = host(server.url, rpm=6000, burst=10), host(server.url, rpm=6000, burst=10)
    a.pause_for(30.0)
    grants = [a.take(), b.take()]
    assert [False, False] == [g.allowed for g in grants if g is not None]
    assert 2 == len([g for g in grants if g is not None and 20.0 < g.wait <= 30.0])
    assert 20.0 < b.paused_for() <= 30.0


def test_the_learned_rate_is_shared(server: RedisServer) -> None:
    """A rate one host's learner sets paces the other host too (3/min: a 20 s interval where
    the other host alone would wait at most 10 s); each host keeps its own view of it."""
    a, b = host(server.url), host(server.url)
    a.set_rate(3)
    first, second = a.take(), b.take()
    assert (True, False) == (first.allowed, second.allowed)  # type: ignore[union-attr]
    assert 10.0 < second.wait <= 20.0  # type: ignore[union-attr]
    assert (3.0, 6.0) == (a.requests_per_minute, b.requests_per_minute)


def test_no_host_goes_above_its_own_rate(server: RedisServer) -> None:
    """A shared rate above a host's own (its cap, or its backoff) does not speed that host up:
    at 6/min its takes stay 10 s apart though another host set 60/min."""
    a, b = host(server.url), host(server.url)
    a.set_rate(60)
    first, second = b.take(), b.take()
    assert (True, False) == (first.allowed, second.allowed)  # type: ignore[union-attr]
    assert 5.0 < second.wait <= 10.0  # type: ignore[union-attr]


def test_the_budget_keys_never_hold_the_api_key(server: RedisServer) -> None:
    """Without a workspace id the scope is a hash of base_url and the key's fingerprint: the
    key is in no Redis key or value; another key or URL is another scope; a workspace id
    names the scope when known."""
    pacer = host(server.url)
    pacer.take()
    pacer.set_rate(5)
    pacer.pause_for(60.0)  # keys that outlive the test's reads
    raw = redis.Redis.from_url(server.url)
    stored = {key.decode(): raw.get(key) for key in raw.keys("*")}
    raw.close()
    assert 3 == len(stored) and all(API_KEY not in f"{k}{v!r}" for k, v in stored.items())
    assert all(k.startswith(f"syncd:budget:{{{SCOPE}}}:") for k in stored)
    scopes = {SCOPE, budget_scope(BASE, API_KEY + "x", None),
              budget_scope("http://127.0.0.1:8080", API_KEY, None)}
    assert 3 == len(scopes) and all(API_KEY not in scope for scope in scopes)
    assert "ws-wrkspc_01Abc" == budget_scope(BASE, API_KEY, "wrkspc_01Abc")


def test_redis_killed_falls_back_then_reconnects(server: RedisServer) -> None:
    """Redis killed mid-run: one warning, then pacing alone at requests_per_minute /
    expected_hosts (90 / 3: a request every 2 s), on the injected clock. Redis back: the next
    take after RETRY_SECONDS uses it again (a fresh server: EVAL after NOSCRIPT)."""
    rec = Recorder()
    pacer = host(server.url, rpm=90, expected_hosts=3, clock=rec.clock, sleep=rec.sleep)
    assert pacer.take() is not None
    server.stop()
    with capture_logs() as logs:
        waits = [pacer.acquire() for _ in range(5)]
    assert [0.0, 2.0, 2.0, 2.0, 2.0] == waits
    assert (30.0, False) == (pacer.fallback.requests_per_minute, pacer.shared)
    assert ["shared budget unreachable: pacing alone until it is back"] == [
        entry["event"] for entry in warnings(logs)]
    server.start()
    assert pacer.take() is None  # 8 s of the 30 s retry interval have passed
    rec.now += RETRY_SECONDS
    with capture_logs() as logs:
        grant = pacer.take()
    assert (True, True) == (grant is not None and grant.allowed, pacer.shared)
    assert ["shared budget reachable again: pacing shared through Redis"] == [
        entry["event"] for entry in logs]


def test_a_wrong_password_falls_back_with_a_warning_that_hides_it(secured: RedisServer) -> None:
    """A wrong password, in the URL or from the file: not a config error but local pacing and
    one warning that quotes neither password."""
    url = secured.url.replace("//", "//:wrong-url-pass-0123@")
    rec = Recorder()
    with capture_logs() as logs:
        from_url = host(url, rpm=60, clock=rec.clock, sleep=rec.sleep)
        from_file = host(secured.url, rpm=60, password="wrong-file-pass-4567")
    assert (False, False) == (from_url.shared, from_file.shared)
    assert 2 == len(warnings(logs))
    text = repr(logs)
    assert ("wrong-url-pass" not in text, "wrong-file-pass" not in text) == (True, True)
    assert [0.0, 1.0] == [from_url.acquire(), from_url.acquire()]  # 60/min, locally


def test_the_right_password_from_the_file_wins_over_the_url(secured: RedisServer) -> None:
    """The password file's password is used even when the URL holds another."""
    pacer = host(secured.url.replace("//", "//:stale-url-pass-0123@"), password=PASSWORD)
    assert (True, True) == (pacer.shared, pacer.take() is not None)


def _config(b: Any, path: Path, extra: str) -> Path:
    path.write_text(
        f'root = "{b.root}"\n[remote]\nbase_url = "{b.emu.base_url}"\n'
        f"requests_per_minute = 60000\nburst = 100\n{extra}"
        f'[state]\njournal = "{b.tmp / "state" / "j.db"}"\n'
    )
    return path


def _sync(config: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "syncd", "sync", "--config", str(config)], capture_output=True,
        text=True, timeout=60, env={**os.environ, "ANTHROPIC_API_KEY": API_KEY},
    )


def test_syncd_sync_paces_through_redis_and_syncs_without_it(
    tmp_path: Path, server: RedisServer
) -> None:
    """`syncd sync` with a shared budget takes its requests from the bucket in Redis (one
    script call each: start, listing, upload at least); with Redis gone it still syncs
    everything, after one warning."""
    with bench(tmp_path) as b:
        b.write("a.txt", b"alpha")
        config = _config(b, tmp_path / "c.toml",
                         f'shared_budget = "{server.url}"\nexpected_hosts = 2\n')
        first = _sync(config)
        raw = redis.Redis.from_url(server.url)
        stats = raw.info("commandstats")  # the TAT key itself expires a second after use
        scripts = sum(stats.get(f"cmdstat_{c}", {}).get("calls", 0) for c in ("eval", "evalsha"))
        raw.close()
        server.stop()
        b.write("b.txt", b"beta")
        second = _sync(config)
        listed = sorted(f.filename for f in b.client().iter_files())
    assert (0, True) == (first.returncode, scripts >= 3), (first.stderr, stats)
    assert 0 == second.returncode, second.stderr
    assert 1 == second.stderr.count("shared budget unreachable")
    assert {"a.txt", "b.txt"} <= set(listed)


@pytest.mark.parametrize(
    ("remote", "needle"),
    [
        ('shared_budget = "http://:hunter2-secret@127.0.0.1:6379/0"\n',
         "[remote] shared_budget"),
        ('shared_budget = "redis://127.0.0.1:6379/0"\nshared_budget_password_file = "{dir}"\n',
         "[remote] shared_budget_password_file"),
    ],
)
def test_bad_shared_budget_config_is_one_line_exit_2(
    tmp_path: Path, remote: str, needle: str
) -> None:
    """A URL that is not redis:// or rediss:// (its password not echoed), or a password file
    that cannot be read: one line naming the key, exit 2."""
    (tmp_path / "root").mkdir()
    config = tmp_path / "c.toml"
    config.write_text(f'root = "{tmp_path / "root"}"\n[remote]\n'
                      + remote.format(dir=tmp_path)
                      + f'[state]\njournal = "{tmp_path / "j.db"}"\n')
    result = _sync(config)
    assert (2, 1) == (result.returncode, len(result.stderr.strip().splitlines())), result.stderr
    assert needle in result.stderr and "hunter2" not in result.stderr


def test_without_a_shared_budget_redis_is_never_imported(tmp_path: Path) -> None:
    """The daemon's modules and a client built from a config without shared_budget leave the
    redis library unloaded."""
    code = ("import sys, pathlib, syncd.cli.main, syncd.engine.mirror, syncd.service.loop\n"
            "from syncd.config import load_settings\n"
            "from syncd.engine.wiring import make_client\n"
            f"make_client(load_settings(None, root=pathlib.Path({str(tmp_path)!r}))).close()\n"
            "print(sorted(m for m in sys.modules if m.split('.')[0] == 'redis'))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, env={**os.environ, "ANTHROPIC_API_KEY": API_KEY})
    assert "[]" == out.stdout.strip()


def _connections(server: RedisServer) -> int:
    """Clients connected to ``server``, this check's own connection left out."""
    admin = redis.Redis.from_url(server.url)
    try:
        return len(admin.client_list()) - 1
    finally:
        admin.close()


def test_a_client_closes_the_shared_pacer_it_was_built_with(
    server: RedisServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The pacer make_client builds is the client's: closing the client closes its Redis
    connections. A pacer handed in (the folders' shared one) stays open for its owner."""
    monkeypatch.setenv("ANTHROPIC_API_KEY", API_KEY)
    (tmp_path / "root").mkdir()
    settings = load_settings(None, root=tmp_path / "root",
                             remote={"base_url": BASE, "shared_budget": server.url},
                             state={"journal": tmp_path / "journal.db"})
    client = make_client(settings)
    assert isinstance(client.pacer, SharedPacer) and client.pacer.take() is not None
    opened = _connections(server)
    client.close()
    shared = host(server.url)
    assert shared.take() is not None
    lent = make_client(settings, pacer=shared)
    lent.close()
    kept = _connections(server)  # the lent pacer's connection only
    shared.close()
    assert (1, 1, 0) == (opened, kept, _connections(server))
