"""Shared fixtures: the emulator over a real loopback socket, and clients pointed at it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from syncd.client import FilesClient
from syncd.pacer import Pacer


class Recorder:
    """An injected sleep that records waits and advances a fake clock instead of sleeping."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


@pytest.fixture
def emulator(tmp_path: Path) -> Iterator[Any]:
    """A fresh emulator on a free loopback port, stopped after the test."""
    from syncd.emulator import EmulatorConfig, run_emulator

    config = EmulatorConfig(data_dir=tmp_path / "emulator", api_key="sk-ant-test-0123456789")
    with run_emulator(config, host="127.0.0.1", port=0) as emu:
        yield emu


def make_client(emu: Any, recorder: Recorder | None = None, **kwargs: Any) -> FilesClient:
    """A FilesClient on the emulator whose sleeps are recorded, not slept."""
    rec = recorder or Recorder()
    pacer = kwargs.pop("pacer", None) or Pacer(6000, burst=100, clock=rec.clock, sleep=rec.sleep)
    return FilesClient(
        emu.api_key, emu.base_url, pacer=pacer, sleep=rec.sleep, rand=lambda: 0.0, **kwargs
    )


def control(emu: Any) -> httpx.Client:
    """A client for the emulator's /_emulator endpoints, which need its key."""
    return httpx.Client(headers={"x-api-key": emu.api_key}, timeout=30)
