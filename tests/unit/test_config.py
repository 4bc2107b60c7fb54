"""Configuration: the example file, validation messages, environment overrides, the API key."""

from __future__ import annotations

import os
import re
import tomllib
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

from syncd.config import Settings, load_settings
from syncd.credentials import CREDENTIAL_NAME, resolve_api_key
from syncd.errors import ConfigError
from syncd.sections import FolderSettings, MetricsSettings

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "config.example.toml"
KEY = "sk-ant-api03-secret-0123456789"


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No SYNCD_* or key variables leak in from the environment running the tests."""
    for name in list(os.environ):
        if name.startswith("SYNCD_"):
            monkeypatch.delenv(name)
    for name in ["ANTHROPIC_API_KEY", "CREDENTIALS_DIRECTORY", "STATE_DIRECTORY"]:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "xdg-state"))


def write_config(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "syncd.toml"
    path.write_text(text, encoding="utf-8")
    return path


def config_error(path: Path | None, **overrides: Any) -> str:
    with pytest.raises(ConfigError) as info:
        load_settings(path, **overrides)
    return str(info.value)


def model_keys(model: type[BaseModel], prefix: str = "") -> set[str]:
    """Every leaf key of a settings model, dotted by section."""
    keys: set[str] = set()
    for name, field in model.model_fields.items():
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            keys |= model_keys(annotation, f"{prefix}{name}.")
        else:
            keys.add(prefix + name)
    return keys


def toml_keys(data: dict[str, Any], prefix: str = "") -> set[str]:
    keys: set[str] = set()
    for name, value in data.items():
        if isinstance(value, dict):
            keys |= toml_keys(value, f"{prefix}{name}.")
        else:
            keys.add(prefix + name)
    return keys


def test_example_config_loads_with_every_default() -> None:
    """config.example.toml loads, and every value it sets is the model's default."""
    expected = load_settings(None, root=Path("/srv/docs")).model_dump()
    assert expected == load_settings(EXAMPLE).model_dump()


def test_example_config_documents_every_key() -> None:
    """Every key of the model appears in the example (commented-out ones count), and no other."""
    text = EXAMPLE.read_text(encoding="utf-8")
    uncommented = re.sub(r"(?m)^# (\w+ = )", r"\1", text)
    expected = model_keys(Settings) - {"folder"}
    block = re.sub(r"(?m)^#   ", "", text.split("# [[folder]]\n", 1)[1])
    folder = set(tomllib.loads(block.split("\n\n", 1)[0]))
    assert (expected, set(FolderSettings.model_fields)) == (
        toml_keys(tomllib.loads(uncommented)), folder)


def test_unknown_key_is_named(tmp_path: Path) -> None:
    """A misspelt key is refused with its section and name."""
    path = write_config(tmp_path, 'root = "/srv"\n[sync]\nworker = 3\n')
    message = config_error(path)
    expected = (True, True)
    assert expected == ("unknown config key" in message, "[sync] worker" in message)


def test_unknown_top_level_key_is_named(tmp_path: Path) -> None:
    """An unknown key outside any section is named too."""
    path = write_config(tmp_path, 'root = "/srv"\nroots = "/x"\n')
    expected = True
    assert expected == ("unknown config key roots" in config_error(path))


@pytest.mark.parametrize("value", ['"many"', "0", "65"])
def test_bad_value_names_the_key(tmp_path: Path, value: str) -> None:
    """A value of the wrong type or out of range names `[sync] workers` and the file."""
    path = write_config(tmp_path, f'root = "/srv"\n[sync]\nworkers = {value}\n')
    message = config_error(path)
    expected = (True, True)
    assert expected == ("[sync] workers" in message, str(path) in message)


def test_missing_root_is_named(tmp_path: Path) -> None:
    """A config without root says root is required."""
    path = write_config(tmp_path, "[sync]\nworkers = 2\n")
    expected = True
    assert expected == ("config key root is required" in config_error(path))


def test_invalid_toml_is_reported(tmp_path: Path) -> None:
    """A file that is not TOML is named as such."""
    path = write_config(tmp_path, "root = \n[sync\n")
    message = config_error(path)
    expected = (True, True)
    assert expected == ("is not valid TOML" in message, str(path) in message)


def test_missing_file_is_reported(tmp_path: Path) -> None:
    """A config path that does not exist says so and how to fix it."""
    message = config_error(tmp_path / "nope.toml")
    expected = (True, True)
    assert expected == ("does not exist" in message, "--config" in message)


def test_environment_overrides_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """SYNCD_SYNC__WORKERS wins over the file; the file's other keys in [sync] stay."""
    path = write_config(tmp_path, 'root = "/srv"\n[sync]\nworkers = 2\nsettle_seconds = 5.0\n')
    monkeypatch.setenv("SYNCD_SYNC__WORKERS", "8")
    settings = load_settings(path)
    expected = (8, 5.0)
    assert expected == (settings.sync.workers, settings.sync.settle_seconds)


def test_environment_can_set_root(monkeypatch: pytest.MonkeyPatch) -> None:
    """SYNCD_ROOT alone is a complete configuration."""
    monkeypatch.setenv("SYNCD_ROOT", "/data")
    expected = Path("/data")
    assert expected == load_settings(None).root


def settings_with(tmp_path: Path, **remote: Any) -> Settings:
    return load_settings(None, root=tmp_path, remote=remote)


def test_api_key_from_environment_first(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """ANTHROPIC_API_KEY wins over the key file and the credential."""
    key_file = tmp_path / "key"
    key_file.write_text("from-file\n")
    monkeypatch.setenv("ANTHROPIC_API_KEY", f"{KEY}\n")
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(tmp_path))
    expected = (KEY, "environment variable ANTHROPIC_API_KEY")
    assert expected == resolve_api_key(settings_with(tmp_path, api_key_file=key_file))


def test_api_key_from_file_second(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Without the variable, [remote] api_key_file is read (stripped)."""
    key_file = tmp_path / "key"
    key_file.write_text(f"{KEY}\n")
    (tmp_path / CREDENTIAL_NAME).write_text("from-credential")
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(tmp_path))
    expected = (KEY, f"file {key_file}")
    assert expected == resolve_api_key(settings_with(tmp_path, api_key_file=key_file))


def test_api_key_from_systemd_credential_last(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without variable or file, $CREDENTIALS_DIRECTORY/anthropic_api_key is used."""
    (tmp_path / CREDENTIAL_NAME).write_text(KEY)
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(tmp_path))
    expected = (KEY, f"systemd credential {CREDENTIAL_NAME}")
    assert expected == resolve_api_key(settings_with(tmp_path))


def test_missing_api_key_names_the_variable(tmp_path: Path) -> None:
    """No key anywhere: the error says how to provide one."""
    with pytest.raises(ConfigError, match="ANTHROPIC_API_KEY"):
        resolve_api_key(settings_with(tmp_path))


def test_empty_key_file_is_reported(tmp_path: Path) -> None:
    """An empty key file is named as empty."""
    key_file = tmp_path / "key"
    key_file.write_text("  \n")
    with pytest.raises(ConfigError, match="is empty"):
        resolve_api_key(settings_with(tmp_path, api_key_file=key_file))


def test_unreadable_key_file_is_reported(tmp_path: Path) -> None:
    """A key file that cannot be read (here: a directory) gives a fixable message."""
    key_dir = tmp_path / "keydir"
    key_dir.mkdir()
    with pytest.raises(ConfigError, match="cannot be read"):
        resolve_api_key(settings_with(tmp_path, api_key_file=key_dir))


def test_non_utf8_key_file_is_reported_without_the_key(tmp_path: Path) -> None:
    """A key file that is not UTF-8 is a ConfigError that does not quote its content."""
    key_file = tmp_path / "key"
    key_file.write_bytes(KEY.encode() + b"\xff\n")
    with pytest.raises(ConfigError) as info:
        resolve_api_key(settings_with(tmp_path, api_key_file=key_file))
    expected = (False, True)
    assert expected == (KEY in str(info.value), str(key_file) in str(info.value))


def test_journal_path_uses_state_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Under systemd the journal goes in the first STATE_DIRECTORY."""
    monkeypatch.setenv("STATE_DIRECTORY", f"{tmp_path}/state:{tmp_path}/other")
    path = load_settings(None, root=tmp_path / "docs").journal_path
    named = re.fullmatch(r"journal-[0-9a-f]{12}\.db", path.name) is not None
    expected = (tmp_path / "state", True)
    assert expected == (path.parent, named)


def test_journal_path_without_state_directory(tmp_path: Path) -> None:
    """Outside systemd the journal goes under XDG_STATE_HOME/syncd, named after the root."""
    one = load_settings(None, root=tmp_path / "docs").journal_path
    two = load_settings(None, root=tmp_path / "other").journal_path
    expected = (tmp_path / "xdg-state" / "syncd", True)
    assert expected == (one.parent, one != two)


def test_journal_path_as_configured(tmp_path: Path) -> None:
    """A configured [state] journal is used as is."""
    expected = tmp_path / "j.db"
    actual = load_settings(None, root=tmp_path, state={"journal": tmp_path / "j.db"}).journal_path
    assert expected == actual


@pytest.mark.parametrize(
    ("listen", "loopback"),
    [
        ("127.0.0.1:9464", True),
        ("[::1]:9464", True),
        ("localhost:9464", True),
        ("0.0.0.0:9464", False),
        ("192.168.1.5:9464", False),
        ("example.com:80", False),
        ("", False),
    ],
)
def test_metrics_listen_accepted(listen: str, loopback: bool) -> None:
    """Valid HOST:PORT endpoints load, and is_loopback tells local-only ones apart."""
    expected = (listen, loopback)
    metrics = MetricsSettings(listen=listen)
    assert expected == (metrics.listen, metrics.is_loopback())


@pytest.mark.parametrize("listen", ["9464", ":9464", "host:0", "host:65536", "host:http"])
def test_metrics_listen_refused(tmp_path: Path, listen: str) -> None:
    """A listen value that is not HOST:PORT is refused naming [metrics] listen."""
    message = config_error(None, root=tmp_path, metrics={"listen": listen})
    expected = True
    assert expected == ("[metrics] listen" in message)


def test_an_unknown_api_version_is_one_line(tmp_path: Path) -> None:
    """An api_version syncd does not speak is refused with the two it does."""
    path = tmp_path / "c.toml"
    path.write_text('root = "/srv"\n[remote]\napi_version = "2025-01-01"\n')
    with pytest.raises(ConfigError) as info:
        load_settings(path)
    assert ("config key [remote] api_version" in str(info.value), "2026-10-21" in str(info.value),
            "\n" in str(info.value)) == (True, True, False)


def test_expiry_needs_the_ga_version(tmp_path: Path) -> None:
    """expires_in_days with the 2025 beta (which has no expiry) is refused, naming the fix."""
    path = tmp_path / "c.toml"
    path.write_text('root = "/srv"\n[remote]\napi_version = "2023-06-01"\nexpires_in_days = 3\n')
    with pytest.raises(ConfigError, match=r"\[remote\].*expires_in_days needs api_version"):
        load_settings(path)
    ok = load_settings(None, root=tmp_path, remote={"expires_in_days": 90})
    assert 90 * 86400 == ok.remote.expires_in_seconds


@pytest.mark.parametrize(("line", "key"), [
    ('backlog_order = "oldest"', "[sync] backlog_order"),
    ("backlog_order = 1", "[sync] backlog_order"),
    ("backlog_share = 0", "[sync] backlog_share"),
    ("backlog_share = 1", "[sync] backlog_share"),
    ("backlog_share = -0.1", "[sync] backlog_share"),
    ("backlog_share = true", "[sync] backlog_share"),
    ("lanes = 1", "[sync] lanes"),
])
def test_lane_settings_out_of_range_are_one_line_naming_the_key(
    tmp_path: Path, line: str, key: str
) -> None:
    """A backlog order that is not "newest" or "path", a share outside (0, 1), a lanes flag
    that is not true/false: refused in one line naming the key and the file."""
    path = write_config(tmp_path, f'root = "/srv"\n[sync]\n{line}\n')
    message = config_error(path)
    expected = (True, True, False)
    assert expected == (key in message, str(path) in message, "\n" in message)


def test_lane_settings_default_to_newest_first_with_a_fifth_for_the_backlog() -> None:
    """Lanes on, newest first, 20% for the backlog unless configured."""
    sync = load_settings(None, root=Path("/srv")).sync
    expected = (True, "newest", 0.2)
    assert expected == (sync.lanes, sync.backlog_order, sync.backlog_share)


@pytest.mark.parametrize("value", ["0", "-0.1", "1.5", "true", "nan", '"5%"'])
def test_a_reconcile_budget_share_out_of_range_is_one_line_naming_the_key(
    tmp_path: Path, value: str
) -> None:
    """The full pass's share of the request budget must be in (0, 1]: anything else is refused
    in one line naming the key and the file."""
    path = write_config(tmp_path, f'root = "/srv"\n[sync]\nreconcile_budget_share = {value}\n')
    message = config_error(path)
    expected = (True, True, False)
    assert expected == ("[sync] reconcile_budget_share" in message, str(path) in message,
                        "\n" in message)


def test_the_reconcile_budget_share_defaults_to_five_percent_and_may_be_all() -> None:
    default = load_settings(None, root=Path("/srv")).sync.reconcile_budget_share
    everything = load_settings(None, root=Path("/srv"),
                               sync={"reconcile_budget_share": 1}).sync.reconcile_budget_share
    assert (0.05, 1.0) == (default, everything)


@pytest.mark.parametrize(("toml", "env", "explicit"), [
    ("", None, False),
    ("[remote]\nburst = 3\n", None, False),
    ("[remote]\nrequests_per_minute = 90\n", None, True),  # the default's value, but chosen
    ("", "120", True),
])
def test_requests_per_minute_set_by_the_user_is_a_cap(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, toml: str, env: str | None, explicit: bool
) -> None:
    """Only a rate the user set (TOML or SYNCD_*) is explicit; the default is a DefaultRate."""
    from syncd.remote.protocol import DefaultRate

    if env is not None:
        monkeypatch.setenv("SYNCD_REMOTE__REQUESTS_PER_MINUTE", env)
    remote = load_settings(write_config(tmp_path, f'root = "/srv/docs"\n{toml}')).remote
    default = isinstance(remote.requests_per_minute, DefaultRate)
    assert (explicit, not explicit) == (remote.requests_per_minute_is_explicit, default)


def folders_config(tmp_path: Path, *tables: str, head: str = "") -> Path:
    """A config of [[folder]] tables over tmp_path/a, tmp_path/b (journals under tmp_path)."""
    for name in ("a", "b"):
        (tmp_path / name).mkdir(exist_ok=True)
    body = "".join(f"\n[[folder]]\n{t}" for t in tables)
    return write_config(tmp_path, head + body)


def folder(tmp_path: Path, name: str, prefix: str, root: str = "", extra: str = "") -> str:
    return (f'name = "{name}"\nroot = "{tmp_path / (root or name)}"\nname_prefix = "{prefix}"\n'
            f'journal = "{tmp_path / (name + ".db")}"\n{extra}')


def test_folders_each_get_their_own_settings(tmp_path: Path) -> None:
    """Two [[folder]] tables: each folder's root, prefix, journal and overrides; the rest of
    the config is shared."""
    path = folders_config(tmp_path, folder(tmp_path, "a", "a/", extra="settle_seconds = 7\n"),
                          folder(tmp_path, "b", "b/"), head="[sync]\nworkers = 3\n")
    got = [(n, s.root, s.remote.name_prefix, s.journal_path.name, s.sync.settle_seconds,
            s.sync.workers) for n, s in load_settings(path).folders()]
    assert got == [("a", tmp_path / "a", "a/", "a.db", 7.0, 3),
                   ("b", tmp_path / "b", "b/", "b.db", 2.0, 3)]


@pytest.mark.parametrize(("a", "b", "fragment"), [
    (("a", "a/", ""), ("a", "b/", "b"), "overlap in name"),
    (("a", "docs/", ""), ("b", "docs/b/", ""), "overlap in name_prefix"),
    (("a", "", ""), ("b", "b/", ""), "overlap in name_prefix"),
    (("a", "a/", ""), ("b", "b/", "a/inner"), "overlap in root"),
])
def test_folders_that_collide_are_one_line(
    tmp_path: Path, a: tuple[str, str, str], b: tuple[str, str, str], fragment: str
) -> None:
    """Names, prefixes (one starting another) or roots (one inside another) that collide: one
    line naming both folders and the key."""
    (tmp_path / "a" / "inner").mkdir(parents=True)
    path = folders_config(tmp_path, folder(tmp_path, *a), folder(tmp_path, *b))
    message = config_error(path)
    assert (True, 1) == (fragment in message and "'a'" in message, len(message.splitlines()))


def test_a_folder_journal_inside_another_folder_is_refused(tmp_path: Path) -> None:
    """One folder's journal inside the other folder's root would be uploaded by it."""
    inside = f'journal = "{tmp_path / "b" / "a.db"}"\n'
    a = folder(tmp_path, "a", "a/").replace(f'journal = "{tmp_path / "a.db"}"\n', inside)
    message = config_error(folders_config(tmp_path, a, folder(tmp_path, "b", "b/")))
    assert "keeps" in message and "inside folder 'b'" in message


def test_root_and_folders_together_are_refused(tmp_path: Path) -> None:
    """Both forms at once: say to choose one."""
    head = f'root = "{tmp_path / "a"}"\n'
    message = config_error(folders_config(tmp_path, folder(tmp_path, "b", "b/"), head=head))
    assert "not both" in message


def test_a_shared_prefix_or_journal_with_folders_is_refused(tmp_path: Path) -> None:
    """[remote] name_prefix or [state] journal beside [[folder]] tables is ambiguous."""
    head = '[remote]\nname_prefix = "x/"\n'
    message = config_error(folders_config(tmp_path, folder(tmp_path, "a", "a/"), head=head))
    assert "in each folder" in message


def test_neither_root_nor_folders_names_both_fixes(tmp_path: Path) -> None:
    message = config_error(write_config(tmp_path, "[sync]\nworkers = 2\n"))
    assert ("root is required" in message, "[[folder]]" in message) == (True, True)
