"""The Files API's answers as values: File objects, list pages and what an upload stored.

Parsed and validated here, once (no I/O): an id that is not a plain token, a timestamp without
a zone or a page that does not say how the listing goes on is a BadAnswer, never a value.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from syncd.errors import BadAnswer, IncompleteListing
from syncd.model import LocalStat
from syncd.remote.protocol import short_repr, valid_id

# Cursors from the server go into URLs: only these characters, never `/` or `..`.
_CURSOR = re.compile(r"[A-Za-z0-9_=.~-]{1,4096}")


def _timestamp(value: object, what: str) -> datetime:
    """An RFC 3339 timestamp from the service, always timezone-aware."""
    try:
        parsed = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError as exc:
        raise BadAnswer(f"the service sent an unparsable {what} ({short_repr(value)})") from exc
    if parsed.tzinfo is None:
        raise BadAnswer(f"the service sent {what} without a timezone ({short_repr(value)})")
    return parsed


@dataclass(frozen=True)
class RemoteFile:
    """A File object as the service describes it (unknown fields are ignored)."""

    id: str
    filename: str
    mime_type: str
    size_bytes: int
    created_at: datetime
    downloadable: bool = False
    expires_at: datetime | None = None  # GA: when the service drops the bytes (None: never)
    scoped: bool = False  # GA: a session's output (``scope`` set): never ours

    @classmethod
    def from_json(cls, data: object) -> RemoteFile:
        """Parse a File object; raise BadAnswer if a required field is missing or malformed."""
        if not isinstance(data, dict):
            raise BadAnswer(f"the service sent a File that is not an object ({short_repr(data)})")
        try:
            expires = data.get("expires_at")
            size = data["size_bytes"]
            if isinstance(size, bool) or not isinstance(size, int) or size < 0:
                raise ValueError(f"size_bytes {short_repr(size)}")
            return cls(
                id=valid_id(data["id"]),
                filename=str(data["filename"]),
                mime_type=str(data.get("mime_type") or "application/octet-stream"),
                size_bytes=size,
                created_at=_timestamp(data["created_at"], "created_at"),
                downloadable=data.get("downloadable") is True,
                expires_at=None if expires is None else _timestamp(expires, "expires_at"),
                scoped=data.get("scope") is not None,
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise BadAnswer(f"malformed File object from the service: {exc}") from exc


Cursor = tuple[Literal["page", "after_id"], str]


@dataclass(frozen=True)
class FilePage:
    """One page of the listing and where the next one starts (None: this was the last)."""

    data: tuple[RemoteFile, ...]
    next: Cursor | None


def parse_page(body: dict[str, Any], limit: int) -> FilePage:
    """Read a list answer in either version's shape; raise BadAnswer unless it says how it ends.

    GA: ``next_page`` (a cursor, or null on the last page). 2025 beta: ``has_more`` and
    ``last_id``. A page with neither marker proves nothing about the rest, so it is refused.
    """
    data = body.get("data")
    if not isinstance(data, list):
        raise BadAnswer("the listing has no `data` list")
    files = tuple(RemoteFile.from_json(item) for item in data)
    if "next_page" in body:
        after = body["next_page"]
        if after is None:
            return FilePage(files, None)
        if not isinstance(after, str) or not _CURSOR.fullmatch(after):
            raise BadAnswer(f"the listing's next_page is not a page cursor ({short_repr(after)})")
        if body.get("has_more") is False:
            raise BadAnswer("the listing says both next_page and has_more false")
        return FilePage(files, ("page", after))
    more = body.get("has_more")
    if more is False:
        return FilePage(files, None)
    if more is True:
        return FilePage(files, ("after_id", valid_id(body.get("last_id"), "last_id")))
    full = " full" if len(files) >= limit else ""
    raise IncompleteListing(
        f"a{full} page of the listing carries neither next_page nor has_more: the listing is not"
        " proven complete"
    )


@dataclass(frozen=True)
class UploadResult:
    """What an upload stored, and the local state it was read from."""

    file: RemoteFile
    sha256: str
    local: LocalStat
    # An earlier attempt got no answer: the service may hold extra copies the caller must find.
    maybe_orphans: bool = False

