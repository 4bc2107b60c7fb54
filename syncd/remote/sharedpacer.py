"""One request budget for several hosts: the pacer's token bucket (GCRA) kept in Redis.

The rate limit belongs to the organization: syncd processes on several hosts mirroring into
one workspace spend one budget. With ``[remote] shared_budget`` each takes its tokens from one
bucket in Redis. Every take is ONE Lua script (EVALSHA, EVAL when the server answers NOSCRIPT):
it reads the bucket, decides and books atomically, so two hosts can never both take the last
slot, and a take costs one round trip.

**Clocks.** The script reads the time from the Redis server (``TIME``) and never from the
caller, and the bucket's state (GCRA's theoretical arrival time, TAT) is stored on that clock.
Every decision is made on one clock, so hosts whose clocks disagree (by seconds, by hours, or
one stepped by NTP mid-run) share the budget exactly as if they shared a clock. A host is only
told durations ("wait 0.7 s") and measures them on its own monotonic clock: an offset between
hosts never enters, only a difference in clock *rate* (parts per million) would. What remains
is the delay between a grant and the request reaching the service, which the 95% margin of
:mod:`syncd.remote.ratelimit` covers. If the Redis server's own clock steps back, the bucket
grants nothing until it has caught up with the slots already booked (the safe side); if it
steps forward, at most ``burst`` requests go at once.

**Keys** (``syncd:budget:{SCOPE}:...``; the braces are a Redis Cluster hash tag, so the three
keys share a slot and one script may touch them all). SCOPE is the workspace id when the
config names one, else a sha256 of ``base_url`` and a fingerprint of the API key (never the
key itself), see :func:`budget_scope`.

- ``tat``: the theoretical arrival time, in microseconds on the Redis clock; it expires once
  passed (an absent TAT means "now").
- ``pause``: a 429's retry-after (:meth:`SharedPacer.pause_for`), with that expiry (PX); every
  host's take waits it out.
- ``rate``: the learned rate (:meth:`SharedPacer.set_rate`, from each host's RateLearner). A
  take books at the lower of it and the caller's own rate, so one host's backoff after a 429
  slows every host, and no host ever goes above its own cap or backoff. Learners set a rate
  only when theirs changes, so the latest change wins; it expires RATE_TTL after that, and
  hosts go back to their own view (the same service tells them all the same limit).

**Redis down.** A call that fails (unreachable, a wrong password, an error reply) switches the
pacer to a local :class:`~syncd.remote.pacer.Pacer` at ``requests_per_minute / expected_hosts``
with one warning; every RETRY_SECONDS (on the pacer's clock) one take tries Redis again, and
one line says when it is back. Syncing never stops for Redis. The password is never logged:
URLs are shown with :func:`syncd.logs.redact_url` and the password is a registered secret.
The ``redis`` library (extra ``syncd[redis]``) is imported only when a SharedPacer is built.
"""

from __future__ import annotations

import hashlib
import math
import threading
import time
import urllib.parse
from dataclasses import dataclass
from typing import Any, Protocol, cast

import structlog

from syncd import logs
from syncd.errors import ConfigError
from syncd.remote.pacer import Clock, Pacer, Sleep

RETRY_SECONDS = 30.0  # while Redis is down, how often one take tries it again
RATE_TTL_MS = 600_000  # a shared rate no host changed for 10 minutes no longer counts
SOCKET_TIMEOUT = 2.0  # seconds: a Redis that does not answer costs at most this per retry
MIN_WAIT = 0.001  # seconds: never ask Redis again sooner than this
KEY_PREFIX = "syncd:budget"

# KEYS: tat, pause, rate. ARGV: op (take | pause | rate | paused), the caller's rate (requests
# a minute), burst, and for "pause" the milliseconds, for "rate" the new rate.
# Returns {allowed: 1 or 0, microseconds to wait (take) or left in the pause (pause, paused)}.
SCRIPT = """
if redis.replicate_commands then redis.replicate_commands() end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local op = ARGV[1]
local rpm = tonumber(ARGV[2])
rpm = math.min(tonumber(redis.call('GET', KEYS[3])) or rpm, rpm)
local interval = 60000000 / rpm
local tolerance = (tonumber(ARGV[3]) - 1) * interval
local left = redis.call('PTTL', KEYS[2])
local resume = now
if left > 0 then resume = now + left * 1000 end
local tat = math.max(tonumber(redis.call('GET', KEYS[1])) or now, now)
local function book(value)
  local ttl = math.max(0, math.ceil((value - now) / 1000)) + 1000
  redis.call('SET', KEYS[1], string.format('%.0f', value), 'PX', ttl)
end
if op == 'take' then
  if resume > now then return {0, resume - now} end
  local ahead = tat - now - tolerance
  if ahead > 0 then return {0, math.ceil(ahead)} end
  book(tat + interval)
  return {1, 0}
elseif op == 'pause' then
  local ms = tonumber(ARGV[4])
  if ms > 0 and ms > left then
    redis.call('SET', KEYS[2], '1', 'PX', ms)
    resume = now + ms * 1000
  end
  if tat < resume + tolerance then book(resume + tolerance) end
  return {1, resume - now}
elseif op == 'rate' then
  local base = math.max(now, resume)
  local booked = math.max(0, tat - base) / interval
  redis.call('SET', KEYS[3], ARGV[4], 'PX', ARGV[5])
  book(base + booked * 60000000 / tonumber(ARGV[4]))
  return {1, 0}
end
return {0, resume - now}
"""
SCRIPT_SHA = hashlib.sha1(SCRIPT.encode("ascii")).hexdigest()

log = structlog.get_logger("syncd.sharedpacer")


class RedisLike(Protocol):
    """The part of ``redis.Redis`` the shared pacer uses."""

    def evalsha(self, sha: str, numkeys: int, *keys_and_args: str) -> Any: ...
    def eval(self, script: str, numkeys: int, *keys_and_args: str) -> Any: ...
    def close(self) -> None: ...


@dataclass(frozen=True)
class Grant:
    """The shared bucket's answer to one take."""

    allowed: bool
    wait: float  # seconds before another take can succeed (0 when allowed)


def key_fingerprint(api_key: str) -> str:
    """A stable short name for an API key that does not reveal it (16 hex digits of sha256)."""
    return hashlib.sha256(api_key.encode("utf-8")).hexdigest()[:16]


def budget_scope(base_url: str, api_key: str, workspace_id: str | None) -> str:
    """Whose budget the bucket is: the workspace when known, else the service and the key
    (hashed: the key never reaches Redis)."""
    if workspace_id:
        return f"ws-{workspace_id}"
    material = f"{base_url.rstrip('/')}\n{key_fingerprint(api_key)}"
    return "key-" + hashlib.sha256(material.encode("utf-8")).hexdigest()[:32]


def connect_redis(url: str, password: str | None = None) -> RedisLike:
    """A client for ``url`` (redis:// or rediss://); ``password`` overrides the URL's.

    It connects on first use. No retries inside the library: a failed call falls back to
    local pacing at once, and SharedPacer retries on its own schedule.
    """
    try:
        import redis
        from redis.backoff import NoBackoff
        from redis.retry import Retry
    except ImportError:
        raise ConfigError("[remote] shared_budget needs the redis client library: "
                          "pip install 'syncd[redis]'") from None
    for secret in (password, _url_password(url)):
        if secret:
            logs.add_secret(secret)
    if password is not None:
        url = _without_password(url)  # the URL's options would win over the keyword
    client = redis.Redis.from_url(
        url, password=password, socket_timeout=SOCKET_TIMEOUT,
        socket_connect_timeout=SOCKET_TIMEOUT, retry=Retry(NoBackoff(), 0),
    )
    return cast(RedisLike, client)


def _url_password(url: str) -> str | None:
    password = urllib.parse.urlsplit(url).password
    return urllib.parse.unquote(password) if password else password


def _without_password(url: str) -> str:
    parts = urllib.parse.urlsplit(url)
    host = parts.netloc.rpartition("@")[2]
    user = f"{parts.username}@" if parts.username else ""
    return urllib.parse.urlunsplit(parts._replace(netloc=user + host))


class SharedPacer:
    """A :class:`~syncd.remote.pacer.Pacer` whose bucket lives in Redis, shared by every host
    with the same scope. Thread-safe; falls back to local pacing while Redis is down."""

    def __init__(
        self,
        url: str,
        requests_per_minute: float,
        burst: int = 1,
        *,
        scope: str,
        expected_hosts: int = 1,
        password: str | None = None,
        clock: Clock = time.monotonic,
        sleep: Sleep = time.sleep,
    ) -> None:
        if not (requests_per_minute > 0 and math.isfinite(requests_per_minute)):
            raise ValueError("requests_per_minute must be positive and finite")
        self.configured = requests_per_minute  # as given (a DefaultRate: the user chose none)
        self.rate = requests_per_minute / 60.0  # this host's view; the script may use a shared one
        self.burst = max(1, burst)
        self.expected_hosts = max(1, expected_hosts)
        self.url = logs.redact_url(url)
        self.fallback = Pacer(requests_per_minute / self.expected_hosts, self.burst,
                              clock=clock, sleep=sleep)
        self._keys = tuple(f"{KEY_PREFIX}:{{{scope}}}:{name}" for name in ("tat", "pause", "rate"))
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        self._retry_at: float | None = None  # None: Redis in use; else when to try it again
        self._waited = 0.0
        self._redis = connect_redis(url, password)
        if self._call("paused") is not None:
            log.info("pacing shared through Redis", url=self.url, keys=self._keys[0][:-4] + "*")

    @property
    def requests_per_minute(self) -> float:
        """The rate this host last set (or was configured with); the shared bucket paces at
        the latest rate any host set, while it is fresh."""
        return self.rate * 60.0

    @property
    def clock(self) -> Clock:
        """The clock the pacer runs on: the fallback's, and the retry schedule's."""
        return self._clock

    @property
    def waited(self) -> float:
        """Total seconds callers spent waiting, shared bucket and fallback together."""
        with self._lock:
            return self._waited + self.fallback.waited

    @property
    def shared(self) -> bool:
        """True while Redis is in use (False: pacing locally until the next retry)."""
        with self._lock:
            return self._retry_at is None

    def acquire(self) -> float:
        """Block until a request may be sent; return the seconds waited."""
        waited = 0.0
        while True:
            grant = self.take()
            if grant is None:
                return waited + self.fallback.acquire()
            if grant.allowed:
                return waited
            delay = max(grant.wait, MIN_WAIT)
            self._sleep(delay)
            waited += delay
            with self._lock:
                self._waited += delay

    def take(self) -> Grant | None:
        """One script call: take a slot or learn how long to wait. None while Redis is not in
        use (then the fallback decides)."""
        reply = self._call("take")
        return None if reply is None else Grant(reply[0] == 1, reply[1] / 1e6)

    def pause_for(self, seconds: float) -> None:
        """Hold back every caller on every host for ``seconds`` from now (a 429's retry-after).

        The fallback pauses too, so a pause survives Redis going down.
        """
        self.fallback.pause_for(seconds)
        self._call("pause", max(0, math.ceil(seconds * 1000)))

    def paused_for(self) -> float:
        """Seconds left in a 429 pause (0 when none), for progress displays."""
        reply = self._call("paused")
        return self.fallback.paused_for() if reply is None else reply[1] / 1e6

    def set_rate(self, requests_per_minute: float) -> None:
        """Pace every host at ``requests_per_minute`` (and the fallback at its share of it).

        Slots already booked are re-spaced at the new interval in the same script, as the
        local pacer does, so a change never grants a burst.
        """
        if not (requests_per_minute > 0 and math.isfinite(requests_per_minute)):
            raise ValueError("requests_per_minute must be positive and finite")
        with self._lock:
            self.rate = requests_per_minute / 60.0
        self.fallback.set_rate(requests_per_minute / self.expected_hosts)
        self._call("rate", requests_per_minute)

    def close(self) -> None:
        """Close the connections to Redis."""
        self._redis.close()

    def _call(self, op: str, arg: float = 0) -> tuple[int, int] | None:
        """Run the script once; None if Redis is not in use or the call failed."""
        if not self._in_use():
            return None
        args = (*self._keys, op, repr(float(self.requests_per_minute)), str(self.burst),
                repr(arg), str(RATE_TTL_MS))
        try:
            reply = self._eval(args)
        except Exception as exc:  # whatever Redis does, pacing goes on without it
            self._lost(exc)
            return None
        self._found()
        return int(reply[0]), int(reply[1])

    def _eval(self, args: tuple[str, ...]) -> Any:
        from redis.exceptions import NoScriptError

        try:
            return self._redis.evalsha(SCRIPT_SHA, 3, *args)
        except NoScriptError:  # a restarted or flushed server: EVAL also caches it again
            return self._redis.eval(SCRIPT, 3, *args)

    def _in_use(self) -> bool:
        """Redis is up, or it is time for this call to try it again."""
        with self._lock:
            if self._retry_at is None:
                return True
            if self._clock() < self._retry_at:
                return False
            self._retry_at = self._clock() + RETRY_SECONDS  # this call is the retry
            return True

    def _lost(self, exc: Exception) -> None:
        with self._lock:
            first = self._retry_at is None
            self._retry_at = self._clock() + RETRY_SECONDS
        if first:
            log.warning(
                "shared budget unreachable: pacing alone until it is back",
                url=self.url, error=f"{type(exc).__name__}: {logs.redact(str(exc))[:200]}",
                requests_per_minute=round(self.fallback.requests_per_minute, 1),
                expected_hosts=self.expected_hosts, retry_seconds=RETRY_SECONDS,
            )
        else:
            log.debug("shared budget still unreachable", error=type(exc).__name__)

    def _found(self) -> None:
        with self._lock:
            back = self._retry_at is not None
            self._retry_at = None
        if back:
            log.info("shared budget reachable again: pacing shared through Redis", url=self.url)
