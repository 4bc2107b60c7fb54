"""Learned pacing: the rate-limit headers are read strictly, and AIMD moves the pacer's rate."""

from __future__ import annotations

from datetime import UTC, datetime

import httpx
import pytest
from structlog.testing import capture_logs

from syncd.remote.client import FilesClient
from syncd.remote.pacer import Pacer
from syncd.remote.protocol import DefaultRate
from syncd.remote.ratelimit import (
    LIMIT_HEADER,
    REMAINING_HEADER,
    RESET_HEADER,
    RateLearner,
    RateLimits,
    parse_headers,
)
from tests.fakes import Clock

NOW = 1_800_000_000.0  # unix time the tests read headers against


def stamp(seconds_from_now: float) -> str:
    """An RFC 3339 reset ``seconds_from_now`` after NOW."""
    when = datetime.fromtimestamp(NOW + seconds_from_now, UTC)
    return when.strftime("%Y-%m-%dT%H:%M:%SZ")


def announced(limit: str = "300", remaining: str = "200", reset: str | None = None) -> dict:
    return {LIMIT_HEADER: limit, REMAINING_HEADER: remaining,
            RESET_HEADER: stamp(10) if reset is None else reset}


def learner(rpm: float, clock: Clock, **kwargs: object) -> tuple[RateLearner, Pacer]:
    pacer = Pacer(rpm, burst=5, clock=clock, sleep=lambda _s: None)
    return RateLearner(pacer, wall=lambda: NOW, **kwargs), pacer  # type: ignore[arg-type]


# --- parsing --------------------------------------------------------------------------------


def test_good_headers_parse() -> None:
    """Limit, remaining, an RFC 3339 reset and a retry-after in seconds all parse."""
    headers = {**announced(reset=stamp(12)), "retry-after": "3"}
    assert RateLimits(300, 200, NOW + 12, 3.0) == parse_headers(headers, NOW)


def test_missing_headers_are_none_and_not_ignored() -> None:
    """An answer without the headers announces nothing and reports nothing ignored."""
    assert RateLimits() == parse_headers({"content-type": "application/json"}, NOW)


def test_retry_after_as_an_http_date() -> None:
    """retry-after may be an HTTP date: it is read as seconds from now."""
    date = "Fri, 15 Jan 2027 08:00:05 GMT"
    now = datetime(2027, 1, 15, 8, 0, 0, tzinfo=UTC).timestamp()
    assert 5.0 == parse_headers({"retry-after": date}, now).retry_after


@pytest.mark.parametrize("value", ["abc", "", "-5", "1.5", "3e2", "٣٠٠", "9" * 20])
def test_garbage_limit_is_ignored(value: str) -> None:
    """A limit that is not a whole number is left out and named in ``ignored``."""
    limits = parse_headers(announced(limit=value), NOW)
    assert (None, 1) == (limits.limit, len(limits.ignored))
    assert limits.ignored[0].startswith(LIMIT_HEADER)


def test_limit_zero_is_ignored() -> None:
    """A limit of 0 would stop all pacing: it is ignored, the rest still counts."""
    limits = parse_headers(announced(limit="0", remaining="0"), NOW)
    assert (None, 0, NOW + 10) == (limits.limit, limits.remaining, limits.reset)
    assert [f"{LIMIT_HEADER}: 0 is below 1"] == list(limits.ignored)


def test_remaining_above_the_limit_is_ignored() -> None:
    """remaining 500 of a 300 limit contradicts itself: remaining is left out."""
    limits = parse_headers(announced(remaining="500"), NOW)
    assert (300, None, 1) == (limits.limit, limits.remaining, len(limits.ignored))


@pytest.mark.parametrize("reset", [
    stamp(-60),  # a minute in the past
    stamp(86400 * 365 * 3),  # years ahead
    "9999-12-31T23:59:59Z",
    "2027-01-15T08:00:00",  # no zone
    "tomorrow",
    "",
])
def test_bad_reset_is_ignored(reset: str) -> None:
    """A reset in the past, years ahead, zoneless or garbage is left out; the limit stands."""
    limits = parse_headers(announced(reset=reset), NOW)
    assert (300, None, 1) == (limits.limit, limits.reset, len(limits.ignored))


def test_reset_a_second_ago_counts_as_now() -> None:
    """Whole-second stamps and skew put a just-passed reset slightly behind: still valid."""
    assert NOW - 1 == parse_headers(announced(reset=stamp(-1)), NOW).reset


@pytest.mark.parametrize("value", ["soon", "-3", "nan", "99999"])
def test_bad_retry_after_is_ignored(value: str) -> None:
    """A retry-after that is garbage, negative or absurdly long is left out."""
    limits = parse_headers({"retry-after": value}, NOW)
    assert (None, 1) == (limits.retry_after, len(limits.ignored))


# --- learning from announcements ------------------------------------------------------------


def test_unset_rate_adopts_the_announced_limit_less_the_margin() -> None:
    """With the default rate, an announced 300/min paces at 95% of it: 285/min."""
    rates, pacer = learner(DefaultRate(90), Clock(0.0))
    rates.observe(200, announced())
    assert 285.0 == pacer.requests_per_minute


def test_unset_rate_also_follows_a_lower_announcement() -> None:
    """An announced 60/min below the default 90 lowers the pace to 57/min."""
    rates, pacer = learner(DefaultRate(90), Clock(0.0))
    rates.observe(200, announced(limit="60", remaining="10"))
    assert 57.0 == pacer.requests_per_minute


def test_explicit_rate_is_a_cap() -> None:
    """A user-set 90/min stays 90 when 300 is announced, and drops to 57 when 60 is."""
    rates, pacer = learner(90.0, Clock(0.0))
    rates.observe(200, announced())
    first = pacer.requests_per_minute
    rates.observe(200, announced(limit="60", remaining="10"))
    assert (90.0, 57.0) == (first, pacer.requests_per_minute)


@pytest.mark.usefixtures("debug_level")
def test_bad_headers_fall_back_to_the_configured_rate_with_one_debug_line() -> None:
    """Garbage in every header: the rate stays configured and one debug line says why."""
    rates, pacer = learner(DefaultRate(90), Clock(0.0))
    headers = {LIMIT_HEADER: "lots", REMAINING_HEADER: "-1", RESET_HEADER: stamp(-3600)}
    with capture_logs() as logs:
        rates.observe(200, headers)
    debug = [e for e in logs if e["event"] == "ratelimit headers ignored"]
    assert (90.0, 1, 3) == (pacer.requests_per_minute, len(debug), len(debug[0]["ignored"]))


def test_a_stale_announcement_falls_back_to_the_configured_rate() -> None:
    """Ten minutes without a fresh announcement: back to the configured rate."""
    clock = Clock(0.0)
    rates, pacer = learner(DefaultRate(90), clock)
    rates.observe(200, announced())
    clock.now = 601.0
    rates.observe(200, {})
    assert 90.0 == pacer.requests_per_minute


def test_remaining_zero_pauses_one_interval() -> None:
    """remaining 0 on a success: everyone waits one request's interval (60/300 s)."""
    rates, pacer = learner(DefaultRate(90), Clock(0.0))
    rates.observe(200, announced(remaining="0"))
    assert 0.2 == pytest.approx(pacer.paused_for())


def test_a_429_with_an_announcement_lowers_nothing() -> None:
    """A 429 that announces its limit is followed, not halved."""
    rates, pacer = learner(DefaultRate(90), Clock(0.0))
    rates.observe(429, announced(remaining="0"))
    assert 285.0 == pacer.requests_per_minute


# --- AIMD without headers --------------------------------------------------------------------


def test_429_without_headers_halves_the_rate() -> None:
    """A bare 429 halves the rate: 600 -> 300."""
    rates, pacer = learner(600.0, Clock(0.0))
    rates.observe(429, {"retry-after": "2"})
    assert 300.0 == pacer.requests_per_minute


def test_429s_of_one_overload_halve_once() -> None:
    """429s within 10 s of a decrease are the same overload; a later one halves again."""
    clock = Clock(0.0)
    rates, pacer = learner(600.0, clock)
    for at in (0.0, 1.0, 5.0):
        clock.now = at
        rates.observe(429, {})
    once = pacer.requests_per_minute
    clock.now = 11.0
    rates.observe(429, {})
    assert (300.0, 150.0) == (once, pacer.requests_per_minute)


def test_quiet_minutes_add_back_a_tenth_of_the_ceiling_each() -> None:
    """After a halving, each quiet minute adds 60/min (10% of 600) until 600 again."""
    clock = Clock(0.0)
    rates, pacer = learner(600.0, clock)
    rates.observe(429, {})
    seen = []
    for minute in range(1, 7):
        clock.now = minute * 60.0 + 0.5
        rates.observe(200, {})
        seen.append(pacer.requests_per_minute)
    assert [360.0, 420.0, 480.0, 540.0, 600.0, 600.0] == seen


def test_a_long_quiet_spell_stops_at_the_ceiling() -> None:
    """An hour without 429s raises the rate to the configured value, never above it."""
    clock = Clock(0.0)
    rates, pacer = learner(600.0, clock)
    rates.observe(429, {})
    clock.now = 3600.0
    rates.observe(200, {})
    assert (600.0, 600.0) == (pacer.requests_per_minute, rates.ceiling())


def test_a_429_restarts_the_quiet_minute() -> None:
    """A 429 (even an announced one) 50 s into a minute means that minute was not quiet."""
    clock = Clock(0.0)
    rates, pacer = learner(600.0, clock)
    rates.observe(429, {})
    clock.now = 50.0
    rates.observe(429, announced(limit="1000"))
    clock.now = 70.0
    rates.observe(200, {})
    assert 300.0 == pacer.requests_per_minute


def test_decreases_stop_at_the_floor() -> None:
    """Many overloads never take the rate below 10% of the configured value."""
    clock = Clock(0.0)
    rates, pacer = learner(600.0, clock)
    for step in range(10):
        clock.now = step * 11.0
        rates.observe(429, {})
    assert 60.0 == pacer.requests_per_minute


def test_the_floor_is_at_least_one_request_a_minute() -> None:
    """A configured 5/min backs off to 1/min, not 0.5."""
    clock = Clock(0.0)
    rates, pacer = learner(5.0, clock)
    for step in range(5):
        clock.now = step * 11.0
        rates.observe(429, {})
    assert 1.0 == pacer.requests_per_minute


def test_announcement_lifts_the_ceiling_aimd_climbs_to() -> None:
    """Backed off at 45 from a default 90, an announced 300 caps nothing: recovery aims at 285."""
    clock = Clock(0.0)
    rates, pacer = learner(DefaultRate(90), clock)
    rates.observe(429, {})
    clock.now = 61.0
    rates.observe(200, announced())
    assert (45.0 + 28.5, 285.0) == (pacer.requests_per_minute, rates.ceiling())


# --- the client feeds it ---------------------------------------------------------------------


def test_the_client_feeds_every_answer_to_the_learner() -> None:
    """A success announcing 300/min re-paces a default-rate client; a later bare 429 halves it."""
    answers = [httpx.Response(200, json={"data": [], "next_page": None}, headers=announced(
        reset=datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"))),
        httpx.Response(429, json={"type": "error", "error": {"type": "rate_limit_error",
                                                              "message": "Rate limited"}})]
    clock = Clock(0.0)
    pacer = Pacer(DefaultRate(90), burst=5, clock=clock, sleep=lambda _s: None)
    client = FilesClient("sk-ant-test-0123", "https://files.test", pacer=pacer, max_retries=0,
                         transport=httpx.MockTransport(lambda _r: answers.pop(0)))
    client.list_page()
    learned = pacer.requests_per_minute
    with pytest.raises(Exception, match="429"):
        client.list_page()
    assert (285.0, 142.5) == (learned, pacer.requests_per_minute)
