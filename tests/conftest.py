"""Shared fixtures: the emulator over a real loopback socket, and clients pointed at it."""

from __future__ import annotations

import ctypes
import logging
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import structlog

from syncd.remote.client import FilesClient
from syncd.remote.pacer import Pacer

TIERS = ("unit", "e2e", "emulator", "sim")  # tests/<tier>/, and a marker of the same name


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark every test with its tier, the directory it lives in."""
    here = Path(__file__).parent
    for item in items:
        parts = item.path.relative_to(here).parts
        if len(parts) > 1 and parts[0] in TIERS:
            item.add_marker(getattr(pytest.mark, parts[0]))


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
def debug_level() -> Iterator[None]:
    """Debug lines reach structlog's capture_logs whatever level an earlier test in this
    process configured (logs.configure installs a filtering logger)."""
    old = structlog.get_config()
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.DEBUG))
    yield
    structlog.configure(**old)


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


@pytest.fixture
def emulator(tmp_path: Path) -> Iterator[Any]:
    """A fresh emulator on a free loopback port, stopped after the test."""
    from syncd.emulator.app import EmulatorConfig, run_emulator

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


class _CapHeader(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class _CapData(ctypes.Structure):
    _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32),
                ("inheritable", ctypes.c_uint32)]


_CAP_VERSION_3 = 0x20080522
_DAC_CAPS = (1 << 1) | (1 << 2)  # CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH


def _set_dac_caps(enabled: bool) -> bool:
    """Raise or drop the DAC override capabilities in this thread's effective set."""
    libc = ctypes.CDLL(None, use_errno=True)
    header, data = _CapHeader(_CAP_VERSION_3, 0), (_CapData * 2)()
    if libc.capget(ctypes.byref(header), data) != 0:
        return False
    if enabled:
        data[0].effective |= data[0].permitted & _DAC_CAPS
    else:
        data[0].effective &= ~_DAC_CAPS
    return bool(libc.capset(ctypes.byref(header), data) == 0)


def _permissions_enforced() -> bool:
    """False for a process that reads any file (root with CAP_DAC_OVERRIDE)."""
    with tempfile.NamedTemporaryFile() as probe:
        os.chmod(probe.name, 0)
        try:
            with open(probe.name, "rb"):
                return False
        except PermissionError:
            return True


@pytest.fixture
def file_permissions() -> Iterator[None]:
    """File permissions apply to this test, also as root: the DAC override capabilities are
    dropped from this thread's effective set (threads it starts inherit that) and restored
    after. Skips where neither holds."""
    dropped = os.geteuid() == 0 and _set_dac_caps(False)
    try:
        if not _permissions_enforced():
            pytest.skip("this process reads any file and cannot drop CAP_DAC_OVERRIDE")
        yield
    finally:
        if dropped:
            _set_dac_caps(True)
