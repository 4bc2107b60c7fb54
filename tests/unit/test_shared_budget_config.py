"""`[remote] shared_budget`, `expected_hosts` and the Redis password: what the config accepts,
the one-line errors, and where the password comes from."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from syncd.config import load_settings
from syncd.credentials import BUDGET_CREDENTIAL, resolve_shared_budget_password
from syncd.errors import ConfigError
from syncd.logs import redact_url


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("SYNCD_"):
            monkeypatch.delenv(name)
    monkeypatch.delenv("CREDENTIALS_DIRECTORY", raising=False)


def remote(**values: object) -> dict[str, object]:
    return {"root": Path("/srv/docs"), "remote": values}


@pytest.mark.parametrize("url", ["redis://cache:6379/0", "rediss://:pw@cache.example:6380/2",
                                 "redis://user:pw@10.0.0.5"])
def test_redis_and_rediss_urls_are_accepted(url: str) -> None:
    """redis:// and rediss:// (TLS), with or without a user, password, port or database."""
    assert url == load_settings(None, **remote(shared_budget=url)).remote.shared_budget


def test_without_a_shared_budget_one_host_is_expected() -> None:
    """Unset: no shared budget, no password file, one host."""
    settings = load_settings(None, root=Path("/srv/docs")).remote
    assert (None, None, 1) == (settings.shared_budget, settings.shared_budget_password_file,
                               settings.expected_hosts)


@pytest.mark.parametrize("url", ["http://:hunter2@cache:6379/0", "cache:6379", "unix:///run/r.sock",
                                 "redis://:hunter2@/0", "redis://cache:99999/0",
                                 "redis://cache:6379/zero"])
def test_a_bad_redis_url_is_one_line_that_hides_the_password(url: str) -> None:
    """A bad scheme, no host, a bad port or database: one line naming the key and an example,
    never quoting the URL (it may hold the password)."""
    with pytest.raises(ConfigError) as info:
        load_settings(None, **remote(shared_budget=url))
    message = str(info.value)
    assert (1, True, True, False) == (len(message.splitlines()), "[remote] shared_budget" in
                                      message, "redis://HOST:6379/0" in message,
                                      "hunter2" in message)


def test_expected_hosts_below_one_is_refused() -> None:
    """expected_hosts divides the rate while Redis is down: it is at least 1."""
    with pytest.raises(ConfigError, match=r"\[remote\] expected_hosts"):
        load_settings(None, **remote(expected_hosts=0))


def test_password_from_the_file_without_its_newline(tmp_path: Path) -> None:
    """The password file's one line, less the trailing newline."""
    path = tmp_path / "redis-password"
    path.write_text("s3cret-pw\n")
    path.chmod(0o600)
    settings = load_settings(None, **remote(shared_budget="redis://cache/0",
                                            shared_budget_password_file=path))
    assert "s3cret-pw" == resolve_shared_budget_password(settings)


def test_password_from_the_systemd_credential(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without a file, the systemd credential shared_budget_password; without both, None."""
    settings = load_settings(None, **remote(shared_budget="redis://cache/0"))
    assert resolve_shared_budget_password(settings) is None
    (tmp_path / BUDGET_CREDENTIAL).write_text("from-credential")
    (tmp_path / BUDGET_CREDENTIAL).chmod(0o600)
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(tmp_path))
    assert "from-credential" == resolve_shared_budget_password(settings)


@pytest.mark.parametrize("content", [None, "", "two\nlines\n"])
def test_an_unusable_password_file_is_a_config_error(tmp_path: Path, content: str | None) -> None:
    """A password file that cannot be read (here: missing), is empty or holds two lines."""
    path = tmp_path / "redis-password"
    if content is not None:
        path.write_text(content)
    settings = load_settings(None, **remote(shared_budget="redis://cache/0",
                                            shared_budget_password_file=path))
    with pytest.raises(ConfigError, match=r"\[remote\] shared_budget_password_file"):
        resolve_shared_budget_password(settings)


def test_urls_in_logs_have_their_password_masked() -> None:
    """redact_url masks the password and keeps the rest; a URL without one is unchanged."""
    assert ["rediss://user:***@cache:6380/0", "redis://cache/0"] == [
        redact_url("rediss://user:pw@cache:6380/0"), redact_url("redis://cache/0")]
