"""Learned pacing against the emulator over loopback: announced limits are adopted (or capped),
an unannounced one is learnt from its 429s. Assertions are on rates and counters, not time."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from syncd import errors
from syncd.emulator.app import EmulatorConfig, run_emulator
from syncd.emulator.faults import Faults
from syncd.remote.pacer import Pacer
from syncd.remote.protocol import DefaultRate
from tests.conftest import Recorder, control, make_client


def emulator_at(tmp_path: Path, rpm: int, headers: bool, burst: int | None = None) -> Any:
    config = EmulatorConfig(data_dir=tmp_path / "emulator", api_key="sk-ant-test-0123456789",
                            faults=Faults(rate_limit_rpm=rpm, rate_limit_burst=burst),
                            ratelimit_headers=headers)
    return run_emulator(config, host="127.0.0.1", port=0)


@pytest.fixture
def announcing(tmp_path: Path) -> Iterator[Any]:
    """An emulator that enforces 6000/min and says so in its headers."""
    with emulator_at(tmp_path, 6000, headers=True) as emu:
        yield emu


def paced(rpm: float, recorder: Recorder) -> Pacer:
    return Pacer(rpm, burst=5, clock=recorder.clock, sleep=recorder.sleep)


def test_emulator_announces_its_limit(announcing: Any) -> None:
    """ratelimit_headers: a /v1 answer carries limit, remaining and an RFC 3339 reset (and an
    emulator without it sends none: see the 429 test below)."""
    with control(announcing) as http:
        headers = http.get(f"{announcing.base_url}/v1/files",
                           headers={"anthropic-version": "2026-10-21"}).headers
    assert ("6000", True, True) == (
        headers["anthropic-ratelimit-requests-limit"],
        0 <= int(headers["anthropic-ratelimit-requests-remaining"]) <= 600,  # the bucket: rpm/10
        headers["anthropic-ratelimit-requests-reset"].endswith("Z"))


def test_a_client_without_a_configured_rate_adopts_the_announced_limit(
        announcing: Any, recorder: Recorder) -> None:
    """Default 90/min, the service announces 6000: after one answer the client paces at 5700."""
    client = make_client(announcing, recorder, pacer=paced(DefaultRate(90), recorder))
    client.list_page()
    client.list_page()
    statuses = {k: v for k, v in announcing.stats().items() if k.startswith("status:")}
    assert (5700.0, {"status:list:200": 2}) == (client.pacer.requests_per_minute, statuses)


def test_a_configured_rate_caps_the_announced_limit(announcing: Any, recorder: Recorder) -> None:
    """A user-set 90/min stays at 90 although 6000 is announced."""
    client = make_client(announcing, recorder, pacer=paced(90.0, recorder))
    client.list_page()
    assert 90.0 == client.pacer.requests_per_minute


def test_an_unannounced_limit_is_learnt_from_its_429s(tmp_path: Path, recorder: Recorder) -> None:
    """No headers, a 1-request bucket: the second request is a 429 (announcing nothing) and the
    client halves its rate."""
    with emulator_at(tmp_path, 1, headers=False, burst=1) as emu:
        client = make_client(emu, recorder, pacer=paced(600.0, recorder), max_retries=0)
        client.list_page()
        with pytest.raises(errors.RateLimited):
            client.list_page()
        limited = emu.stats()["status:list:429"]
        with control(emu) as http:
            raw = http.get(f"{emu.base_url}/v1/files", headers={"anthropic-version": "2026-10-21"})
    assert (300.0, 1, 429, None) == (client.pacer.requests_per_minute, limited, raw.status_code,
                                     raw.headers.get("anthropic-ratelimit-requests-limit"))
