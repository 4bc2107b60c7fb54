"""The secrets syncd reads but never keeps in its settings: the API key and the shared budget's
Redis password.

The key comes from ``ANTHROPIC_API_KEY``, else ``[remote] api_key_file``, else the systemd
credential ``anthropic_api_key``; the password from ``[remote] shared_budget_password_file``,
else the systemd credential ``shared_budget_password``. A file is read defensively (a regular
file only, at most MAX_KEY_FILE bytes, never blocking on a FIFO), a file others may read is
warned about once, and no error ever quotes a secret.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

import structlog

from syncd.config import Settings
from syncd.errors import ConfigError

log = structlog.get_logger("syncd.config")
CREDENTIAL_NAME = "anthropic_api_key"
BUDGET_CREDENTIAL = "shared_budget_password"
MAX_KEY_FILE = 4096  # bytes: a key file is one short line
_warned_key_files: set[str] = set()


def resolve_api_key(settings: Settings) -> tuple[str, str]:
    """The API key and where it came from (never log the first item).

    Order: ANTHROPIC_API_KEY, then ``[remote] api_key_file``, then the systemd credential.
    A blank variable counts as unset. Whatever the source, one trailing newline is dropped and
    any other whitespace, control or non-ASCII character is refused: such a key cannot go into
    a header, and the error saying so would quote it.
    """
    env_key = os.environ.get("ANTHROPIC_API_KEY", "")
    if env_key.strip():
        where = "environment variable ANTHROPIC_API_KEY"
        return _valid_key(env_key, where), where
    key_file = settings.remote.api_key_file
    if key_file is not None:
        return _read_key(key_file.expanduser(), "[remote] api_key_file"), f"file {key_file}"
    creds = os.environ.get("CREDENTIALS_DIRECTORY")
    if creds and (Path(creds) / CREDENTIAL_NAME).exists():
        path = Path(creds) / CREDENTIAL_NAME
        return _read_key(path, "systemd credential"), f"systemd credential {CREDENTIAL_NAME}"
    raise ConfigError(
        "no API key: set ANTHROPIC_API_KEY, or [remote] api_key_file in the config, "
        f"or the systemd credential {CREDENTIAL_NAME} (LoadCredential=)"
    )


def resolve_shared_budget_password(settings: Settings) -> str | None:
    """The Redis password for ``[remote] shared_budget`` (never log it): from
    ``[remote] shared_budget_password_file``, else the systemd credential
    ``shared_budget_password``, else None (the URL may hold one). One trailing newline is
    dropped. A file that cannot be read is a ConfigError."""
    path = settings.remote.shared_budget_password_file
    what = "[remote] shared_budget_password_file"
    creds = os.environ.get("CREDENTIALS_DIRECTORY")
    if path is None and creds and (Path(creds) / BUDGET_CREDENTIAL).exists():
        path, what = Path(creds) / BUDGET_CREDENTIAL, "systemd credential"
    if path is None:
        return None
    path = path.expanduser()
    data = _read_key_file(path, what, secret="Redis password")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise ConfigError(f"{what} {path} is not UTF-8 text; put the password in it") from None
    password = text[:-2] if text.endswith("\r\n") else text.removesuffix("\n")
    if not password.strip() or "\n" in password or "\r" in password:
        raise ConfigError(f"{what} {path} must hold the password alone on one line")
    return password


def _read_key(path: Path, what: str) -> str:
    data = _read_key_file(path, what)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        # Its repr holds the file's bytes, so it must not escape.
        raise ConfigError(f"{what} {path} is not UTF-8 text; put the API key in it") from None
    if not text.strip():
        raise ConfigError(f"{what} {path} is empty; put the API key in it")
    return _valid_key(text, f"{what} {path}")


def _read_key_file(path: Path, what: str, secret: str = "API key") -> bytes:
    """At most MAX_KEY_FILE bytes of a regular file: a FIFO or a device never blocks or floods."""
    unreadable = f"{what} {path} cannot be read"
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC)
    except OSError as exc:
        raise ConfigError(f"{unreadable} ({exc.strerror}); check the path and its permissions"
                          ) from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise ConfigError(f"{unreadable}: it is not a regular file; point it at a file"
                              f" holding the {secret}")
        chunks: list[bytes] = []
        size = 0
        while size <= MAX_KEY_FILE and (chunk := os.read(fd, MAX_KEY_FILE + 1 - size)):
            chunks.append(chunk)
            size += len(chunk)
    except OSError as exc:
        raise ConfigError(f"{unreadable} ({exc.strerror}); check the path and its permissions"
                          ) from None
    finally:
        os.close(fd)
    if size > MAX_KEY_FILE:
        raise ConfigError(f"{what} {path} is over {MAX_KEY_FILE // 1024} KiB; it must hold"
                          f" the {secret} only")
    _warn_if_shared(path, info, secret)
    return b"".join(chunks)


def _warn_if_shared(path: Path, info: os.stat_result, secret: str = "API key") -> None:
    """One warning per file (per process) when group or others may read or write the secret."""
    if info.st_mode & 0o066 and str(path) not in _warned_key_files:
        _warned_key_files.add(str(path))
        log.warning(f"{secret} file is readable or writable by group or others",
                    file=str(path), mode=f"{stat.S_IMODE(info.st_mode):04o}",
                    fix=f"chmod 600 {path}")


def _valid_key(raw: str, source: str) -> str:
    """``raw`` less one trailing newline, if it can go into a header; never quotes the key."""
    key = raw[:-2] if raw.endswith("\r\n") else raw.removesuffix("\n")
    for index, char in enumerate(key, 1):
        if char in "\r\n":
            problem = "has more than one line"
        elif char in " \t":
            problem = "contains whitespace"
        elif not char.isascii():
            problem = "contains a non-ASCII character"
        elif not char.isprintable():
            problem = "contains a control character"
        else:
            continue
        raise ConfigError(f"the API key in {source} {problem} (character {index}); it must be"
                          " the key alone on one line (one trailing newline is fine)")
    return key
