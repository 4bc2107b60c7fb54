"""Configuration: one pydantic-settings object from a TOML file and ``SYNCD_*`` variables.

Precedence, highest first: ``SYNCD_*`` environment variables (nested with ``__``, e.g.
``SYNCD_SYNC__WORKERS=8``), then the TOML file. The API key is never part of this object: it
comes from ``ANTHROPIC_API_KEY``, else ``[remote] api_key_file``, else the systemd credential
``anthropic_api_key`` (see :func:`resolve_api_key`).

Values that pass validation must also work: every number is finite and bounded, a number is
never ``true`` and a flag never ``1`` (the TOML file gives real types; ``SYNCD_*`` strings are
still parsed), and ``root`` is never ``/`` or a kernel tree (/proc, /sys, /dev).

``[remote] requests_per_minute`` left unset is a ``DefaultRate`` (90): pacing may follow the
limit the service announces. Any value the user gives, even 90, is a plain float and a cap
(``syncd.remote.ratelimit`` has the rules).
"""

from __future__ import annotations

import hashlib
import ipaddress
import os
import re
import stat
import tomllib
import urllib.parse
from contextvars import ContextVar
from pathlib import Path
from typing import Annotated, Any, Literal

import structlog
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from syncd.errors import BadAnswer, ConfigError
from syncd.remote.names import prefix_problem
from syncd.remote.protocol import (
    DEFAULT_BASE_URL,
    DEFAULT_REQUESTS_PER_MINUTE,
    GA_VERSION,
    ApiVersion,
    valid_id,
)

log = structlog.get_logger("syncd.config")
CREDENTIAL_NAME = "anthropic_api_key"
BUDGET_CREDENTIAL = "shared_budget_password"
MAX_KEY_FILE = 4096  # bytes: a key file is one short line
MAX_CONFIG_FILE = 1 << 20
HOUR = 3600.0
WEEK = 7 * 86400.0
SYSTEM_TREES = (Path("/proc"), Path("/sys"), Path("/dev"))
_SECTIONS = ("remote", "sync", "state", "log", "metrics", "folder")
_FOLDER_NAME = re.compile(r"[A-Za-z0-9._-]{1,64}")
_toml_path: ContextVar[Path | None] = ContextVar("syncd_toml_path", default=None)
_warned_key_files: set[str] = set()


def _not_bool(value: Any) -> Any:
    # Lax pydantic takes true as 1; TOML's true for a number is a mistake, not a 1.
    if isinstance(value, bool):
        raise ValueError("must be a number, not true or false")
    return value


def _flag(value: Any) -> Any:
    # A flag is true/false in TOML; SYNCD_* variables give it as a string ("true", "0").
    if not isinstance(value, bool | str):
        raise ValueError("must be true or false")
    return value


Int = Annotated[int, BeforeValidator(_not_bool)]
Float = Annotated[float, BeforeValidator(_not_bool)]
Flag = Annotated[bool, BeforeValidator(_flag)]


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class RemoteSettings(_Section):
    """``[remote]``: where the files go and how fast."""

    base_url: str = DEFAULT_BASE_URL
    api_version: ApiVersion = GA_VERSION
    workspace_id: str | None = None
    expires_in_days: Int | None = Field(default=None, ge=1, le=90)
    api_key_file: Path | None = None
    name_prefix: str = ""
    # Unset, the default is a DefaultRate: syncd may pace to the limit the service announces.
    # Set (TOML or SYNCD_REMOTE__REQUESTS_PER_MINUTE, even to 90) it is a plain float: a cap.
    requests_per_minute: Float = Field(default=DEFAULT_REQUESTS_PER_MINUTE, gt=0, le=1_000_000)
    burst: Int = Field(default=5, ge=1, le=10_000)
    max_retries: Int = Field(default=4, ge=0, le=20)
    timeout_seconds: Float = Field(default=60.0, gt=0, le=HOUR)
    # One request budget for several hosts, kept in Redis (syncd.remote.sharedpacer). While
    # Redis is unreachable each host paces alone at requests_per_minute / expected_hosts.
    shared_budget: str | None = None
    shared_budget_password_file: Path | None = None
    expected_hosts: Int = Field(default=1, ge=1, le=10_000)

    @field_validator("shared_budget")
    @classmethod
    def _shared_budget(cls, value: str | None) -> str | None:
        # Never quote the URL back: it may hold the password.
        if value is not None:
            problem = redis_url_problem(value)
            if problem:
                raise ValueError(problem)
        return value

    @field_validator("base_url")
    @classmethod
    def _url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return value.rstrip("/")

    @field_validator("name_prefix")
    @classmethod
    def _prefix(cls, value: str) -> str:
        problem = prefix_problem(value)
        if problem:
            raise ValueError(problem)
        return value

    @field_validator("workspace_id")
    @classmethod
    def _workspace(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                valid_id(value, "workspace id")
            except BadAnswer:
                raise ValueError("must be a workspace id such as wrkspc_01AbC...") from None
        return value

    @model_validator(mode="after")
    def _expiry_needs_ga(self) -> RemoteSettings:
        if self.expires_in_days is not None and self.api_version != GA_VERSION:
            raise ValueError(f"expires_in_days needs api_version = \"{GA_VERSION}\"")
        return self

    @property
    def requests_per_minute_is_explicit(self) -> bool:
        """True when the user set ``requests_per_minute``: pacing never goes above it."""
        return "requests_per_minute" in self.model_fields_set

    @property
    def expires_in_seconds(self) -> int | None:
        """The lifetime uploads ask for, or None (copies never expire)."""
        return None if self.expires_in_days is None else self.expires_in_days * 86400


class SyncSettings(_Section):
    """``[sync]``: how the mirror behaves."""

    workers: Int = Field(default=4, ge=1, le=64)
    settle_seconds: Float = Field(default=2.0, ge=0, le=HOUR)
    settle_max_seconds: Float = Field(default=60.0, ge=0, le=24 * HOUR)
    reconcile_interval_seconds: Float = Field(default=600.0, gt=0, le=WEEK)
    # The periodic full pass waits longer when its list pages would spend more than this share
    # of the request budget (engine/reconcile.py, full_pass_interval).
    reconcile_budget_share: Float = Field(default=0.05, gt=0, le=1)
    rescan_interval_seconds: Float = Field(default=3600.0, gt=0, le=WEEK)
    ignore: tuple[str, ...] = ()
    follow_symlinks: Flag = False
    max_delete_fraction: Float = Field(default=0.5, ge=0, le=1)
    max_missing_fraction: Float = Field(default=0.1, ge=0, le=1)
    shutdown_timeout_seconds: Float = Field(default=20.0, ge=0, le=HOUR)
    # The queue's lanes (engine/lanes.py): live edits before the backlog, which keeps a share
    # of the pops (0 would starve it, 1 the live edits); false: one lane, first in first out.
    lanes: Flag = True
    backlog_order: Literal["newest", "path"] = "newest"
    backlog_share: Float = Field(default=0.2, gt=0, lt=1)


class StateSettings(_Section):
    """``[state]``: where syncd keeps what it knows."""

    journal: Path | None = None
    manifest: Path | None = None


class LogSettings(_Section):
    """``[log]``."""

    level: Literal["debug", "info", "warning", "error"] = "info"
    format: Literal["auto", "json", "console"] = "auto"

    @field_validator("level", mode="before")
    @classmethod
    def _lower(cls, value: Any) -> Any:
        return value.lower() if isinstance(value, str) else value


class MetricsSettings(_Section):
    """``[metrics]``: Prometheus text on ``listen`` (off when empty)."""

    listen: str = ""

    @field_validator("listen")
    @classmethod
    def _listen(cls, value: str) -> str:
        if value:
            host, _, port = value.rpartition(":")
            if not host or not port.isdigit() or not 0 < int(port) < 65536:
                raise ValueError("must be HOST:PORT, e.g. 127.0.0.1:9464")
        return value

    def is_loopback(self) -> bool:
        """True when the endpoint is reachable from this machine only."""
        host = self.listen.rpartition(":")[0].strip("[]")
        try:
            return host == "localhost" or ipaddress.ip_address(host).is_loopback
        except ValueError:
            return False


class FolderSettings(_Section):
    """``[[folder]]``: one of several folders one daemon mirrors, each under its own name
    prefix, with its own journal (and manifest), sharing the process's request budget."""

    name: str  # for `status --folder NAME`, the metrics' folder label and the log
    root: Path
    name_prefix: str
    ignore: tuple[str, ...] | None = None  # None: [sync] ignore
    journal: Path | None = None
    manifest: Path | None = None
    settle_seconds: Float | None = Field(default=None, ge=0, le=HOUR)
    settle_max_seconds: Float | None = Field(default=None, ge=0, le=24 * HOUR)
    reconcile_interval_seconds: Float | None = Field(default=None, gt=0, le=WEEK)

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not _FOLDER_NAME.fullmatch(value):
            raise ValueError("must be 1-64 letters, digits, '.', '_' or '-' (e.g. docs)")
        return value

    @field_validator("root")
    @classmethod
    def _root(cls, value: Path) -> Path:
        problem = root_problem(value)
        if problem:
            raise ValueError(problem)
        return value

    @field_validator("name_prefix")
    @classmethod
    def _prefix(cls, value: str) -> str:
        problem = prefix_problem(value)
        if problem:
            raise ValueError(problem)
        return value

    def sync_overrides(self) -> dict[str, Any]:
        """The [sync] keys this folder sets for itself."""
        keys = ("settle_seconds", "settle_max_seconds", "reconcile_interval_seconds", "ignore")
        return {k: getattr(self, k) for k in keys if getattr(self, k) is not None}


class Settings(BaseSettings):
    """Everything syncd can be told. See config.example.toml for each key."""

    model_config = SettingsConfigDict(
        env_prefix="SYNCD_", env_nested_delimiter="__", extra="forbid", frozen=True
    )

    root: Path | None = None  # one folder; or [[folder]] tables for several
    remote: RemoteSettings = RemoteSettings()
    sync: SyncSettings = SyncSettings()
    state: StateSettings = StateSettings()
    log: LogSettings = LogSettings()
    metrics: MetricsSettings = MetricsSettings()
    folder: tuple[FolderSettings, ...] = ()
    _folders: int = PrivateAttr(default=1)  # a folder's settings: how many the config has

    @field_validator("root")
    @classmethod
    def _root(cls, value: Path | None) -> Path | None:
        problem = None if value is None else root_problem(value)
        if problem:
            raise ValueError(problem)
        return value

    @model_validator(mode="after")
    def _one_form(self) -> Settings:
        if self.root is None and not self.folder:
            raise ValueError('config key root is required; set it (e.g. root = "/srv/docs"),'
                             " or add [[folder]] tables")
        if self.root is not None and self.folder:
            raise ValueError("set root or [[folder]] tables, not both; move root into a"
                             " [[folder]] table")
        problem = folders_problem(self) if self.folder else None
        if problem:
            raise ValueError(problem)
        return self

    @property
    def root_dir(self) -> Path:
        """The one folder's root (a folder's settings always have one; see :meth:`folders`)."""
        if self.root is None:
            raise ConfigError("this command takes one folder: pass --folder NAME")
        return self.root

    def folders(self) -> list[tuple[str, Settings]]:
        """Each folder's name and its own settings (the one-folder form: one, named "")."""
        if not self.folder:
            return [("", self)]
        return [(f.name, self._for(f)) for f in self.folder]

    def folder_named(self, name: str) -> Settings:
        """The settings of the folder ``name`` ("" in the one-folder form); ConfigError when
        the config has no such folder (a reload that dropped it)."""
        for folder_name, one in self.folders():
            if folder_name == name:
                return one
        raise ConfigError(f"the config has no folder {name!r} any more; restart syncd to"
                          " change the folders")

    @property
    def folder_count(self) -> int:
        """How many folders the config this folder's settings came from has (1: one root)."""
        return len(self.folder) or self._folders

    def _for(self, f: FolderSettings) -> Settings:
        one = self.model_copy(update={
            "root": f.root, "folder": (),
            "remote": self.remote.model_copy(update={"name_prefix": f.name_prefix}),
            "sync": self.sync.model_copy(update=f.sync_overrides()),
            "state": StateSettings(journal=f.journal, manifest=f.manifest),
        })
        one._folders = len(self.folder)
        return one

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Init values, then SYNCD_* variables, then the TOML file being loaded."""
        toml = TomlConfigSettingsSource(settings_cls, toml_file=_toml_path.get())
        return (init_settings, env_settings, toml)

    @property
    def journal_path(self) -> Path:
        """The journal: as configured, else in systemd's StateDirectory, else ~/.local/state."""
        if self.state.journal is not None:
            return self.state.journal.expanduser()
        state_dir = os.environ.get("STATE_DIRECTORY", "").split(":")[0]
        digest = hashlib.sha256(os.fsencode(self.root_dir.expanduser().absolute())).hexdigest()[:12]
        if state_dir:
            return Path(state_dir) / f"journal-{digest}.db"
        base = Path(os.environ.get("XDG_STATE_HOME") or Path.home() / ".local" / "state")
        return base / "syncd" / f"journal-{digest}.db"


def folders_problem(settings: Settings) -> str | None:
    """Why several folders cannot share one daemon as configured (names, prefixes, roots,
    journals or manifests that collide), or None."""
    if settings.remote.name_prefix or settings.state.journal or settings.state.manifest:
        return ("with [[folder]] tables, set name_prefix, journal and manifest in each folder,"
                " not in [remote] or [state]")
    folders = settings.folders()
    names = [name for name, _ in folders]
    columns: list[tuple[str, list[Any]]] = [
        ("name", names),
        ("name_prefix", [one.remote.name_prefix for _, one in folders]),
        ("root", [_real(one.root_dir) for _, one in folders]),
        ("journal", [_real(one.journal_path) for _, one in folders]),
    ]
    for what, values in columns:
        for i, a in enumerate(values):
            for j in range(i + 1, len(values)):
                if _overlap(what, a, values[j]):
                    return (f"folders {names[i]!r} and {names[j]!r} overlap in {what}; give each"
                            f" folder its own {what} (none may start with, or lie in, another)")
    return _state_inside_another_root(folders)


def _state_inside_another_root(folders: list[tuple[str, Settings]]) -> str | None:
    for name, one in folders:
        state = [one.journal_path, *([one.state.manifest] if one.state.manifest else [])]
        for other_name, other in folders:
            root = _real(other.root_dir)
            for path in state:
                if other_name != name and _real(path).is_relative_to(root):
                    return (f"folder {name!r} keeps {path} inside folder {other_name!r}; keep"
                            " each folder's journal and manifest outside the other folders")
    return None


def _overlap(what: str, a: Any, b: Any) -> bool:
    if what == "name_prefix":
        return bool(a.startswith(b) or b.startswith(a))
    if what == "root":
        return bool(a.is_relative_to(b) or b.is_relative_to(a))
    return bool(a == b)


def _real(path: Path) -> Path:
    return Path(os.path.realpath(path.expanduser()))


def root_problem(root: Path) -> str | None:
    """Why ``root`` must not be mirrored (``/`` or a kernel tree, links resolved), or None."""
    real = Path(os.path.realpath(root.expanduser()))
    if real == Path("/"):
        return 'must not be "/" (the whole system); name the folder to mirror'
    for tree in SYSTEM_TREES:
        if real.is_relative_to(tree):
            return f"must not be {tree} or below it ({real}): a kernel tree, not files to mirror"
    return None


def redis_url_problem(url: str) -> str | None:
    """Why ``url`` is not a Redis URL syncd can use, without quoting it (it may hold a
    password), or None."""
    example = "e.g. redis://HOST:6379/0, or rediss://HOST:6380/0 for TLS"
    try:
        parts = urllib.parse.urlsplit(url)
        port = parts.port
    except ValueError:
        return f"is not a URL ({example})"
    if parts.scheme not in ("redis", "rediss"):
        return f"must start with redis:// or rediss:// ({example})"
    if not parts.hostname:
        return f"names no host ({example})"
    database = parts.path.strip("/")
    if database and not database.isdigit():
        return f"must end in a database number such as /0 ({example})"
    return None if port is None or port > 0 else f"has port 0 ({example})"


def load_settings(path: Path | None, **overrides: Any) -> Settings:
    """Load and validate the config; raise ConfigError with a one-line, fixable message."""
    if path is not None:
        _check_toml(path)
    token = _toml_path.set(path)
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        raise ConfigError(_describe(exc, path)) from None
    finally:
        _toml_path.reset(token)


def _check_toml(path: Path) -> None:
    try:
        with open(path, "rb") as fh:
            data = fh.read(MAX_CONFIG_FILE + 1)
    except FileNotFoundError:
        raise ConfigError(f"config file {path} does not exist; pass --config FILE") from None
    except OSError as exc:
        raise ConfigError(f"config file {path} cannot be read: {exc.strerror}") from None
    if len(data) > MAX_CONFIG_FILE:
        raise ConfigError(f"config file {path} is over {MAX_CONFIG_FILE >> 20} MiB; is it the"
                          " right file?")
    not_utf8 = f"config file {path} is not UTF-8 TOML"
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{not_utf8} (byte 0x{data[exc.start]:02x} at offset {exc.start});"
                          " save it as UTF-8") from None
    if text.startswith("\ufeff") or "\x00" in text:  # a BOM; NULs: UTF-16 of ASCII text
        raise ConfigError(f"{not_utf8} (it starts with a byte order mark or holds NUL bytes:"
                          " UTF-16?); save it as UTF-8 without BOM")
    try:
        tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {path} is not valid TOML: {exc}") from None


def _describe(exc: ValidationError, path: Path | None) -> str:
    """The first validation problem as one line: which key, what is wrong, where to fix it."""
    err = exc.errors()[0]
    loc = [str(part) for part in err["loc"]]
    if len(loc) > 1:
        key = f"[{loc[0]}] {'.'.join(loc[1:])}"
    elif loc and loc[0] in _SECTIONS:
        key = f"[{loc[0]}]"
    else:
        key = loc[0] if loc else "config"
    where = f" in {path}" if path else ""
    more = f" (and {len(exc.errors()) - 1} more)" if len(exc.errors()) > 1 else ""
    if err["type"] == "extra_forbidden":
        return f"unknown config key {key}{where}; see config.example.toml for the keys{more}"
    if err["type"] == "missing":
        return f"config key {key} is required{where}; set it (e.g. root = \"/srv/docs\"){more}"
    message = str(err["msg"]).removeprefix("Value error, ")
    if not loc:  # a rule across keys: its message names them
        return f"config{where}: {message}{more}"
    return f"config key {key}{where}: {message}{more}"


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
