"""The Files API's fixed facts: versions, headers, limits, and what an id from the server may
hold. Imported by the settings and the client alike (no HTTP here)."""

from __future__ import annotations

import re
from typing import Literal

from syncd.errors import BadAnswer

DEFAULT_BASE_URL = "https://api.anthropic.com"
ApiVersion = Literal["2026-10-21", "2023-06-01"]
GA_VERSION: ApiVersion = "2026-10-21"  # what the official SDK (anthropic 2.14.0) sends
BETA_VERSION: ApiVersion = "2023-06-01"  # the 2025 beta, with the files-api beta header
API_VERSIONS: tuple[ApiVersion, ...] = (GA_VERSION, BETA_VERSION)
FILES_BETA = "files-api-2025-04-14"
WORKSPACE_HEADER = "anthropic-workspace-id"
MAX_UPLOAD_BYTES = 500 * 10**6  # the contract leaves 10^6 vs 2^20 open: take the smaller
LIST_LIMIT = 1000


class DefaultRate(float):
    """A request rate the user did not choose: syncd may pace above it when the service
    announces its limit (:mod:`syncd.remote.ratelimit`). A plain float is the user's, a cap."""

    def __repr__(self) -> str:
        return f"DefaultRate({float(self)!r})"


DEFAULT_REQUESTS_PER_MINUTE = DefaultRate(90)  # the beta documented about 100 a minute

# Ids from the server go into URLs: only these characters, never `/` or `..`.
_ID = re.compile(r"[A-Za-z0-9_-]{1,256}")


def valid_id(value: object, what: str = "file id") -> str:
    """``value`` if it is a safe identifier from the server, else BadAnswer."""
    if isinstance(value, str) and _ID.fullmatch(value):
        return value
    raise BadAnswer(f"the service sent an invalid {what} ({short_repr(value)})")


def short_repr(value: object) -> str:
    """``repr(value)``, cut to 40 characters."""
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."
