"""The emulator's short-listing fault (``Faults.short_list_rate`` / ``short_list_mode``): page
listings cut short in both API versions, as the simulation's ``short_listing`` op uses them."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from syncd.emulator.app import EmulatorConfig, RunningEmulator, run_emulator
from syncd.emulator.faults import FaultDice, Faults
from tests.conftest import control
from tests.emulator.test_emulator import api_headers

pytestmark = pytest.mark.timeout(60)


def ga_headers(key: str) -> dict[str, str]:
    return {"authorization": f"Bearer {key}", "anthropic-version": "2026-10-21"}


@pytest.fixture
def emu(tmp_path: Path) -> Iterator[RunningEmulator]:
    with run_emulator(EmulatorConfig(data_dir=tmp_path / "data")) as running:
        yield running


@pytest.fixture
def ga(emu: RunningEmulator) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=emu.base_url, headers=ga_headers(emu.api_key), timeout=10) as c:
        yield c


@pytest.fixture
def beta(emu: RunningEmulator) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=emu.base_url, headers=api_headers(emu.api_key), timeout=10) as c:
        yield c


def three_files(emu: RunningEmulator) -> list[str]:
    return [emu.seed_foreign(f"f{i}.txt", b"x") for i in range(3)]


def test_empty_mode_claims_a_complete_empty_listing(emu: RunningEmulator, ga: httpx.Client,
                                                    beta: httpx.Client) -> None:
    """`empty`: no files and the end marker of each version; counted as a fault."""
    three_files(emu)
    emu.set_faults(Faults(short_list_rate=1.0, short_list_mode="empty"))
    emu.reset_stats()
    expected = [
        {"data": [], "next_page": None},
        {"data": [], "first_id": None, "last_id": None, "has_more": False},
    ]
    assert expected == [ga.get("/v1/files").json(), beta.get("/v1/files").json()]
    assert 2 == emu.stats().get("fault:short_list_empty")


def test_unmarked_mode_drops_only_the_end_marker(emu: RunningEmulator, ga: httpx.Client,
                                                 beta: httpx.Client) -> None:
    """`unmarked`: the real (full) page without `next_page` / `has_more`."""
    ids = three_files(emu)[::-1]  # newest first
    emu.set_faults(Faults(short_list_rate=1.0, short_list_mode="unmarked"))
    got_ga = ga.get("/v1/files", params={"limit": 2}).json()
    got_beta = beta.get("/v1/files", params={"limit": 2}).json()
    expected = ([ids[:2], ["data"]], [ids[:2], ["data", "first_id", "last_id"]])
    assert expected == ([[f["id"] for f in got_ga["data"]], sorted(got_ga)],
                        [[f["id"] for f in got_beta["data"]], sorted(got_beta)])
    assert 2 == emu.stats().get("fault:short_list_unmarked")


def test_ids_lookups_and_other_requests_are_never_cut(emu: RunningEmulator,
                                                      ga: httpx.Client) -> None:
    """A look-up by ids is answered whole; with the rate back at 0 listings are whole again."""
    ids = three_files(emu)
    emu.set_faults(Faults(short_list_rate=1.0, short_list_mode="empty"))
    looked_up = ga.get("/v1/files", params={"ids[]": ids}).json()
    assert (3, None) == (len(looked_up["data"]), looked_up["next_page"])
    emu.set_faults(Faults())
    whole = ga.get("/v1/files").json()
    assert (3, None) == (len(whole["data"]), whole["next_page"])


def test_either_mode_uses_both_and_rate_zero_never_draws() -> None:
    """`either` picks each mode; a rate of 0 draws nothing from the seeded dice."""
    dice = FaultDice(Faults(short_list_rate=1.0), seed=1, clock=lambda: 0.0)
    assert {"empty", "unmarked"} == {dice.short_listing() for _ in range(50)}
    off = FaultDice(Faults(), seed=1, clock=lambda: 0.0)
    before = off._random.getstate()
    assert [None] * 5 == [off.short_listing() for _ in range(5)]
    assert before == off._random.getstate()
    half = FaultDice(Faults(short_list_rate=0.5, short_list_mode="empty"), seed=2,
                     clock=lambda: 0.0)
    cut = sum(half.short_listing() is not None for _ in range(400))
    assert 150 < cut < 250, cut


def test_short_list_settings_are_validated(emu: RunningEmulator) -> None:
    """A rate outside 0..1 or an unknown mode is refused, also through the control endpoint."""
    for kwargs, text in [({"short_list_rate": 1.5}, "short_list_rate"),
                         ({"short_list_mode": "half"}, "short_list_mode")]:
        with pytest.raises(ValueError, match=text):
            Faults(**kwargs)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="short_list_mode"):
        Faults.from_dict({"short_list_mode": 1})
    base = f"{emu.base_url}/_emulator/faults"
    put = control(emu).put(base, json={"short_list_rate": 0.5, "short_list_mode": "unmarked"})
    assert (200, Faults(short_list_rate=0.5, short_list_mode="unmarked")) == (
        put.status_code, emu.faults)
    expected = 400
    assert expected == control(emu).put(base, json={"short_list_mode": "nope"}).status_code
