"""``GET /v1/files`` in both API versions.

- 2023-06-01: ``limit`` / ``after_id`` / ``before_id``; answers
  ``{"data", "first_id", "last_id", "has_more"}``.
- 2026-10-21: ``limit`` / ``page``, or ``ids[]`` (also ``ids``) alone; answers
  ``{"data", "next_page"}``. ``after_id`` / ``before_id`` are refused there, so a client that
  mixes the versions' paging learns it at once instead of looping on the first page.

A page cursor is ``page_`` + base64url(8-byte sequence number of the page's last file +
10-byte HMAC of it and the workspace, keyed by a secret kept in the data dir). The sequence
number is the file's place in creation order, and rows are never removed, so a cursor stays
valid, and means the same place, however many files are deleted meanwhile; a cursor that was
garbled, forged, or issued in another workspace is a 400. Both versions list newest first and
never return more than the server's page cap (``EmulatorConfig.page_max``) at once.

With the ``short_list_rate`` fault (``syncd.emulator.faults``) a page listing in either version
is cut short: ``empty`` answers no files with the end marker (a listing that claims to be
complete), ``unmarked`` answers the real page without its end marker. Each cut is counted as
``fault:short_list_<mode>``. Look-ups by ids are never cut.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from collections.abc import Callable, Mapping

from starlette.datastructures import QueryParams
from starlette.responses import JSONResponse, Response

from syncd.emulator.api import bad
from syncd.emulator.faults import FaultDice
from syncd.emulator.store import FileStore, UnknownCursor

MAX_IDS = 100
_PAGE_PREFIX = "page_"
_SEQ_BYTES = 8
_MAC_BYTES = 10
# 18 bytes are exactly 24 base64 characters, so a cursor never needs padding.
_CURSOR_RE = re.compile(re.escape(_PAGE_PREFIX) + r"([A-Za-z0-9_-]{24})")
# What an `empty` short listing says in each version: no files, and that this is the end.
_EMPTY_GA: dict[str, object] = {"data": [], "next_page": None}
_EMPTY_BETA: dict[str, object] = {"data": [], "first_id": None, "last_id": None,
                                  "has_more": False}
Count = Callable[[str], None]


class PageCursors:
    """Makes and checks the opaque ``page_...`` cursors of 2026-10-21 listings."""

    def __init__(self, secret: bytes) -> None:
        self._secret = secret

    def encode(self, workspace: str, seq: int) -> str:
        """The cursor for "files ordered before ``seq``" in ``workspace``."""
        body = seq.to_bytes(_SEQ_BYTES, "big")
        raw = body + self._mac(workspace, body)
        return _PAGE_PREFIX + base64.urlsafe_b64encode(raw).rstrip(b"=").decode()

    def decode(self, workspace: str, cursor: str) -> int:
        """The sequence number in ``cursor``; ValueError if this server did not issue it."""
        match = _CURSOR_RE.fullmatch(cursor)
        if match is None:
            raise ValueError(cursor)
        raw = base64.urlsafe_b64decode(match.group(1))
        body, mac = raw[:_SEQ_BYTES], raw[_SEQ_BYTES:]
        if not hmac.compare_digest(mac, self._mac(workspace, body)):
            raise ValueError(cursor)
        return int.from_bytes(body, "big")

    def _mac(self, workspace: str, body: bytes) -> bytes:
        message = workspace.encode() + b"\0" + body
        return hmac.new(self._secret, message, hashlib.sha256).digest()[:_MAC_BYTES]


def parse_limit(raw: str | None, page_max: int | None) -> int:
    """``limit`` checked against the documented 1..1000, then capped at the server's page cap."""
    if raw is None:
        limit = 20
    elif not re.fullmatch(r"-?[0-9]{1,9}", raw):
        raise bad("limit: Input should be a valid integer")
    else:
        limit = int(raw)
    if limit < 1:
        raise bad("limit: Input should be greater than or equal to 1")
    if limit > 1000:
        raise bad("limit: Input should be less than or equal to 1000")
    return limit if page_max is None else min(limit, page_max)


def _answer(body: Mapping[str, object], marker: str, empty: Mapping[str, object],
            dice: FaultDice | None, count: Count | None) -> Response:
    """``body``, or with the short-listing fault a cut-short version of it."""
    mode = None if dice is None else dice.short_listing()
    if mode is None:
        return JSONResponse(dict(body))
    if count is not None:
        count(f"fault:short_list_{mode}")
    if mode == "empty":
        return JSONResponse(dict(empty))
    return JSONResponse({k: v for k, v in body.items() if k != marker})


def list_beta(query: QueryParams, store: FileStore, workspace: str,
              page_max: int | None, dice: FaultDice | None = None,
              count: Count | None = None) -> Response:
    """The 2023-06-01 listing (``dice`` and ``count``: the short-listing fault, see above)."""
    limit = parse_limit(query.get("limit"), page_max)
    # An empty cursor is taken as no cursor.
    after_id, before_id = query.get("after_id") or None, query.get("before_id") or None
    if after_id is not None and before_id is not None:
        raise bad("after_id and before_id cannot be given together")
    try:
        page = store.page(workspace, limit, after_id, before_id)
    except UnknownCursor as exc:
        name = "after_id" if after_id is not None else "before_id"
        raise bad(f"{name}: no file with id `{exc.args[0]}`") from exc
    data = [f.api_object() for f in page.files]
    body = {
        "data": data,
        "first_id": data[0]["id"] if data else None,
        "last_id": data[-1]["id"] if data else None,
        "has_more": page.has_more,
    }
    return _answer(body, "has_more", _EMPTY_BETA, dice, count)


def list_ga(query: QueryParams, store: FileStore, workspace: str,
            page_max: int | None, dice: FaultDice | None = None,
            count: Count | None = None) -> Response:
    """The 2026-10-21 listing: a page after a cursor, or a lookup by ids (``dice`` and
    ``count``: the short-listing fault, see above; it never cuts a look-up by ids)."""
    for old in ("after_id", "before_id"):
        if old in query:
            raise bad(f"{old}: not supported by anthropic-version 2026-10-21; "
                      "page with `page` and the previous answer's `next_page`")
    scope_id = query.get("scope_id") or None
    ids = query.getlist("ids[]") + query.getlist("ids")
    if ids:
        return _by_ids(query, store, workspace, ids, scope_id)
    limit = parse_limit(query.get("limit"), page_max)
    cursors = PageCursors(store.cursor_secret)
    cursor = query.get("page") or None  # an empty cursor is taken as no cursor
    try:
        seq = None if cursor is None else cursors.decode(workspace, cursor)
    except ValueError as exc:
        raise bad("page: not a page cursor this server issued (use the `next_page` "
                  "of a previous answer)") from exc
    page = store.page_before_seq(workspace, limit, seq, scope_id)
    next_page = None
    if page.has_more and page.last_seq is not None:
        next_page = cursors.encode(workspace, page.last_seq)
    body = {"data": [f.ga_object() for f in page.files], "next_page": next_page}
    return _answer(body, "next_page", _EMPTY_GA, dice, count)


def _by_ids(query: QueryParams, store: FileStore, workspace: str, ids: list[str],
            scope_id: str | None) -> Response:
    if query.get("page") or "limit" in query:
        raise bad("ids: cannot be combined with page or limit")
    unique = list(dict.fromkeys(ids))
    if len(unique) > MAX_IDS:
        raise bad(f"ids: at most {MAX_IDS} distinct ids are allowed (got {len(unique)})")
    found = store.by_ids(workspace, unique, scope_id)
    return JSONResponse({"data": [f.ga_object() for f in found], "next_page": None})
