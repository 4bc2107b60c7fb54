"""The systemd units in deploy/: `systemd-analyze verify` is clean, the offline security review
scores an overall exposure of at most 2.0, and the API key only ever arrives as a credential."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from syncd.credentials import CREDENTIAL_NAME
from syncd.sections import SyncSettings

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
README = DEPLOY / "README.md"
SINGLE = DEPLOY / "syncd.service"
TEMPLATE = DEPLOY / "syncd@.service"
INSTALLED_SYNCD = "/usr/local/bin/syncd"
DOCUMENTED_SYNCD = "/opt/syncd/bin/syncd"  # the venv install in deploy/README.md
MAX_EXPOSURE = 2.0
TIMEOUT = 120

# (unit file in deploy/, the name it is checked under: the template as an instance)
UNITS = [(SINGLE, "syncd.service"), (TEMPLATE, "syncd@docs.service")]
UNIT_IDS = ["syncd.service", "syncd@.service"]

INI_BLOCK = re.compile(r"^ *```ini\n(.*?)^ *```", re.M | re.S)
EXPOSURE_LINE = re.compile(r"Overall exposure level for (\S+): (\d+(?:\.\d+)?)")
# The settings that carry the instance name, and what the single unit has in their place.
INSTANCE_SETTINGS = {
    "Description": (
        "syncd: mirror a folder to Anthropic's Files API",
        "syncd: mirror a folder to Anthropic's Files API (%i)",
    ),
    "ExecStart": (
        f"{INSTALLED_SYNCD} run --config /etc/syncd/config.toml",
        f"{INSTALLED_SYNCD} run --config /etc/syncd/%i.toml",
    ),
    "StateDirectory": ("syncd", "syncd/%i"),
    "LoadCredential": (
        "anthropic_api_key:/etc/syncd/api-key",
        "anthropic_api_key:/etc/syncd/%i.key",
    ),
}


def directives(path: Path) -> list[tuple[str, str, str]]:
    """(section, key, value) for every setting in a unit file, comments and blanks skipped."""
    section = ""
    found = []
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("[") and line.endswith("]"):
            section = line[1:-1]
            continue
        key, sep, value = line.partition("=")
        assert "=" == sep, f"{path.name}: not a setting: {raw!r}"
        found.append((section, key.strip(), value.strip()))
    return found


def values(path: Path, key: str) -> list[str]:
    """Every value of ``key`` in ``path``, in order."""
    return [value for _, k, value in directives(path) if k == key]


def systemd_analyze() -> str:
    """The systemd-analyze binary, or skip the test when this machine has none."""
    binary = shutil.which("systemd-analyze")
    if binary is None:
        pytest.skip("systemd-analyze is not installed (it comes with the systemd package)")
    return binary


def stand_in_syncd() -> str:
    """An executable that exists here, to stand in for /usr/local/bin/syncd in `verify`."""
    script = Path(sys.executable).parent / "syncd"
    return str(script) if os.access(script, os.X_OK) else sys.executable


def unit_copy(source: Path, name: str, tmp_path: Path) -> Path:
    """The unit copied to ``tmp_path/name`` with binaries that are not on this machine swapped
    for one that is (`verify` checks that every Exec*= binary exists)."""
    unit = tmp_path / name
    unit.write_text(runnable_here(source.read_text(encoding="utf-8")), encoding="utf-8")
    return unit


def runnable_here(text: str) -> str:
    """Unit text with the syncd (and, where missing, kill) binaries pointed at real ones."""
    stand_in = stand_in_syncd()
    if any(ch.isspace() for ch in stand_in):
        stand_in = f'"{stand_in}"'
    for syncd in (INSTALLED_SYNCD, DOCUMENTED_SYNCD):
        text = text.replace(f"={syncd} ", f"={stand_in} ")
    if not os.access("/bin/kill", os.X_OK):  # slim images without procps
        text = text.replace("=/bin/kill ", f"={stand_in} ")
    return text


def documented_drop_ins() -> list[str]:
    """The ```ini drop-ins shown in deploy/README.md, dedented."""
    return [textwrap.dedent(block) for block in INI_BLOCK.findall(README.read_text("utf-8"))]


def exposure(binary: str, unit: Path) -> tuple[float, subprocess.CompletedProcess[str]]:
    """The overall exposure `security --offline=true` gives the unit, and the run itself."""
    threshold = f"--threshold={round(MAX_EXPOSURE * 10)}"  # in tenths
    result = run(
        [binary, "security", "--offline=true", threshold, "--no-pager", unit.name], unit.parent
    )
    scores = EXPOSURE_LINE.findall(result.stdout)
    assert 1 == len(scores), result.stdout + result.stderr
    assert unit.name == scores[0][0]
    return float(scores[0][1]), result


def verify(binary: str, unit: Path) -> None:
    """Assert `systemd-analyze verify` has nothing to say about the unit or its drop-ins."""
    result = run(
        [binary, "verify", "--recursive-errors=no", "--man=no", unit.name], unit.parent
    )
    about_unit = [line for line in result.stderr.splitlines() if unit.name in line]
    assert [] == about_unit, result.stderr
    assert 0 == result.returncode, result.stderr


def run(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    """Run systemd-analyze without a pager or colours, capturing text output."""
    env = {**os.environ, "SYSTEMD_PAGER": "", "SYSTEMD_COLORS": "0", "LC_ALL": "C.UTF-8"}
    return subprocess.run(
        args, cwd=cwd, env=env, capture_output=True, text=True, encoding="utf-8",
        errors="replace", timeout=TIMEOUT, check=False,
    )


@pytest.mark.parametrize(("source", "name"), UNITS, ids=UNIT_IDS)
def test_verify_is_clean(source: Path, name: str, tmp_path: Path) -> None:
    """`systemd-analyze verify` accepts the unit with no warning about it."""
    binary = systemd_analyze()
    verify(binary, unit_copy(source, name, tmp_path))


@pytest.mark.parametrize(("source", "name"), UNITS, ids=UNIT_IDS)
def test_security_exposure_at_most_two(source: Path, name: str, tmp_path: Path) -> None:
    """`systemd-analyze security --offline=true` rates the unit's overall exposure <= 2.0."""
    binary = systemd_analyze()
    level, result = exposure(binary, unit_copy(source, name, tmp_path))
    assert level <= MAX_EXPOSURE, result.stdout
    assert 0 == result.returncode, result.stdout + result.stderr


@pytest.mark.parametrize(("source", "name"), UNITS, ids=UNIT_IDS)
def test_documented_drop_ins_keep_units_clean(source: Path, name: str, tmp_path: Path) -> None:
    """Each drop-in deploy/README.md shows verifies cleanly and keeps exposure <= 2.0."""
    binary = systemd_analyze()
    drop_ins = documented_drop_ins()
    assert 3 == len(drop_ins)
    for index, drop_in in enumerate(drop_ins):
        conf = tmp_path / str(index) / f"{name}.d" / "override.conf"
        conf.parent.mkdir(parents=True)
        conf.write_text(runnable_here(drop_in), encoding="utf-8")
        unit = unit_copy(source, name, tmp_path / str(index))
        verify(binary, unit)
        level, result = exposure(binary, unit)
        assert level <= MAX_EXPOSURE, drop_in + result.stdout


@pytest.mark.parametrize("source", [SINGLE, TEMPLATE], ids=UNIT_IDS)
def test_key_arrives_only_as_credential(source: Path) -> None:
    """The key comes in through LoadCredential=anthropic_api_key, never the environment."""
    assert [] == [v for v in values(source, "Environment") if re.search(r"key|anthropic", v, re.I)]
    assert [] == values(source, "EnvironmentFile")
    assert [] == values(source, "SetCredential")
    assert [] == values(source, "PassEnvironment")
    assert "sk-ant" not in source.read_text(encoding="utf-8")
    credentials = values(source, "LoadCredential")
    assert 1 == len(credentials)
    name, _, key_file = credentials[0].partition(":")
    assert CREDENTIAL_NAME == name
    assert key_file.startswith("/etc/syncd/")


@pytest.mark.parametrize("source", [SINGLE, TEMPLATE], ids=UNIT_IDS)
def test_lifecycle_matches_the_daemon(source: Path) -> None:
    """Notify with a watchdog, HUP to reload, and a stop timeout above syncd's drain time."""
    assert ["notify"] == values(source, "Type")
    assert ["main"] == values(source, "NotifyAccess")
    assert ["60"] == values(source, "WatchdogSec")
    assert ["on-failure"] == values(source, "Restart")
    assert ["/bin/kill -HUP $MAINPID"] == values(source, "ExecReload")
    drain = SyncSettings().shutdown_timeout_seconds
    stop = values(source, "TimeoutStopSec")
    assert 1 == len(stop)
    assert float(stop[0]) > drain


def test_template_differs_only_by_instance() -> None:
    """syncd@.service is syncd.service with %i in the config, state, key and description."""
    single = [(s, k, v) for s, k, v in directives(SINGLE) if k not in INSTANCE_SETTINGS]
    template = [(s, k, v) for s, k, v in directives(TEMPLATE) if k not in INSTANCE_SETTINGS]
    assert single == template
    for key, (expected_single, expected_template) in INSTANCE_SETTINGS.items():
        assert [expected_single] == values(SINGLE, key)
        assert [expected_template] == values(TEMPLATE, key)
