"""Configuration: one pydantic-settings object from a TOML file and ``SYNCD_*`` variables.

Precedence, highest first: ``SYNCD_*`` environment variables (nested with ``__``, e.g.
``SYNCD_SYNC__WORKERS=8``), then the TOML file. The API key is never part of this object: it
comes from ``ANTHROPIC_API_KEY``, else ``[remote] api_key_file``, else the systemd credential
``anthropic_api_key`` (see :mod:`syncd.credentials`).

Values that pass validation must also work: each section's own rules are in
:mod:`syncd.sections`; the rules across sections and folders are here.

``[remote] requests_per_minute`` left unset is a ``DefaultRate`` (90): pacing may follow the
limit the service announces. Any value the user gives, even 90, is a plain float and a cap
(``syncd.remote.ratelimit`` has the rules).
"""

from __future__ import annotations

import hashlib
import os
import tomllib
from contextvars import ContextVar
from pathlib import Path
from typing import Any

from pydantic import PrivateAttr, ValidationError, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from syncd.errors import ConfigError
from syncd.sections import (
    FolderSettings,
    LogSettings,
    MetricsSettings,
    RemoteSettings,
    Root,
    StateSettings,
    SyncSettings,
)

MAX_CONFIG_FILE = 1 << 20
_SECTIONS = ("remote", "sync", "state", "log", "metrics", "folder")
_toml_path: ContextVar[Path | None] = ContextVar("syncd_toml_path", default=None)


class Settings(BaseSettings):
    """Everything syncd can be told. See config.example.toml for each key."""

    model_config = SettingsConfigDict(
        env_prefix="SYNCD_", env_nested_delimiter="__", extra="forbid", frozen=True
    )

    root: Root | None = None  # one folder; or [[folder]] tables for several
    remote: RemoteSettings = RemoteSettings()
    sync: SyncSettings = SyncSettings()
    state: StateSettings = StateSettings()
    log: LogSettings = LogSettings()
    metrics: MetricsSettings = MetricsSettings()
    folder: tuple[FolderSettings, ...] = ()
    _folders: int = PrivateAttr(default=1)  # a folder's settings: how many the config has

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
