"""The config file's sections (``[remote]``, ``[sync]``, ``[state]``, ``[log]``, ``[metrics]``,
``[[folder]]``): one frozen pydantic model each, with the rules a value must pass on its own.
:mod:`syncd.config` assembles them into the one ``Settings`` object.

Every number is finite and bounded, a number is never ``true`` and a flag never ``1`` (the TOML
file gives real types; ``SYNCD_*`` strings are still parsed), and ``root`` is never ``/`` or a
kernel tree (/proc, /sys, /dev).
"""

from __future__ import annotations

import ipaddress
import os
import re
import urllib.parse
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    field_validator,
    model_validator,
)

from syncd.errors import BadAnswer
from syncd.remote.names import prefix_problem
from syncd.remote.protocol import (
    DEFAULT_BASE_URL,
    DEFAULT_REQUESTS_PER_MINUTE,
    GA_VERSION,
    ApiVersion,
    valid_id,
)

HOUR = 3600.0
WEEK = 7 * 86400.0
SYSTEM_TREES = (Path("/proc"), Path("/sys"), Path("/dev"))
_FOLDER_NAME = re.compile(r"[A-Za-z0-9._-]{1,64}")


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


def _no_problem(problem: str | None) -> None:
    if problem:
        raise ValueError(problem)


def _prefix_ok(value: str) -> str:
    _no_problem(prefix_problem(value))
    return value


def _root_ok(value: Path) -> Path:
    _no_problem(root_problem(value))
    return value


Prefix = Annotated[str, AfterValidator(_prefix_ok)]  # a name prefix the service can hold
Root = Annotated[Path, AfterValidator(_root_ok)]  # never "/" nor a kernel tree


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class RemoteSettings(_Section):
    """``[remote]``: where the files go and how fast."""

    base_url: str = DEFAULT_BASE_URL
    api_version: ApiVersion = GA_VERSION
    workspace_id: str | None = None
    expires_in_days: Int | None = Field(default=None, ge=1, le=90)
    api_key_file: Path | None = None
    name_prefix: Prefix = ""
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
    root: Root
    name_prefix: Prefix
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

    def sync_overrides(self) -> dict[str, Any]:
        """The [sync] keys this folder sets for itself."""
        keys = ("settle_seconds", "settle_max_seconds", "reconcile_interval_seconds", "ignore")
        return {k: getattr(self, k) for k in keys if getattr(self, k) is not None}



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
