"""Logging: structlog to stderr, JSON lines off a terminal (journald, containers), readable on one.

One redaction step runs last before rendering: whatever a caller passes, a value that contains
the API key is masked, so the key cannot reach a log line by accident. It also masks the key's
escaped spellings (repr, JSON, bytes repr, URL-quoted), because an error message quotes a value
that way. Exceptions are formatted to plain text before that step, in both formats, and never
with the frames' local variables (which may hold the key or file content).
"""

from __future__ import annotations

import contextlib
import json
import logging
import sys
import urllib.parse
from typing import Any, TextIO

import structlog
from structlog.typing import EventDict, WrappedLogger

LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING,
          "error": logging.ERROR}
MIN_LINE = 8  # a line of a multi-line secret is masked alone when at least this long
_secrets: list[str] = []  # every spelling, longest first
_PLAIN = (int, float, bool, type(None))


def add_secret(value: str) -> None:
    """Never let ``value`` appear in a log line, as itself or in an escaped spelling."""
    for form in _spellings(value):
        if form and form not in _secrets:
            _secrets.append(form)
    _secrets.sort(key=len, reverse=True)  # a longer spelling goes before a part of it


def _spellings(value: str) -> list[str]:
    if not value:
        return []
    raw = value.encode("utf-8", "surrogateescape")
    lines = value.splitlines()
    return [
        value,
        repr(value)[1:-1],
        ascii(value)[1:-1],
        json.dumps(value)[1:-1],
        repr(raw)[2:-1],
        urllib.parse.quote(value, safe=""),
        *(line for line in lines if len(lines) > 1 and len(line) >= MIN_LINE),
    ]


def redact(text: str) -> str:
    """``text`` with every spelling of every secret replaced by ``<redacted>``."""
    for secret in _secrets:
        if secret in text:
            text = text.replace(secret, "<redacted>")
    return text


def redact_url(url: str) -> str:
    """``url`` with the password of its user part (``scheme://user:PASSWORD@host``) masked,
    for logs and errors; a URL that does not parse is not quoted at all."""
    try:
        parts = urllib.parse.urlsplit(url)
        password = parts.password
    except ValueError:
        return "<a URL that does not parse>"
    if password is None:
        return url
    host = parts.netloc.rpartition("@")[2]
    return urllib.parse.urlunsplit(parts._replace(netloc=f"{parts.username or ''}:***@{host}"))


def _redact(_logger: WrappedLogger, _name: str, event: EventDict) -> EventDict:
    if not _secrets:
        return event
    for key, value in event.items():
        if isinstance(value, _PLAIN):
            continue
        text = value if isinstance(value, str) else str(value)
        masked = redact(text)
        if masked != text:
            event[key] = masked
    return event


class _NeverRaises:
    """A log stream whose failures (stderr closed, a broken pipe, a full disk) drop the line
    instead of raising into the thread that logs: no thread may die of its own log line, least
    of all in the handler that reports another failure."""

    def __init__(self, out: TextIO) -> None:
        self._out = out

    def write(self, text: str) -> int:
        try:
            return self._out.write(text)
        except (OSError, ValueError):  # ValueError: I/O operation on closed file
            return 0

    def flush(self) -> None:
        with contextlib.suppress(OSError, ValueError):
            self._out.flush()


def configure(level: str = "info", fmt: str = "auto", stream: TextIO | None = None) -> None:
    """Set up structlog for the whole process."""
    out = stream or sys.stderr
    json_lines = fmt == "json" or (fmt == "auto" and not out.isatty())
    renderer: Any = (
        structlog.processors.JSONRenderer()
        if json_lines
        # plain_traceback: the default (rich) formatter prints every frame's locals.
        else structlog.dev.ConsoleRenderer(
            colors=out.isatty(), exception_formatter=structlog.dev.plain_traceback
        )
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            # Text before redaction, in both formats: a traceback holds the exception's message.
            structlog.processors.format_exc_info,
            _redact,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(LEVELS.get(level, logging.INFO)),
        # WriteLogger: the line and its newline in one write (print() makes two system calls
        # of them on an unbuffered stream).
        logger_factory=structlog.WriteLoggerFactory(_NeverRaises(out)),  # type: ignore[arg-type]
        cache_logger_on_first_use=False,
    )


STORED_TEXT_MAX = 300  # characters of server text the journal keeps


def stored_text(text: str) -> str:
    """``text`` (often the server's) as it may be stored and printed: the API key redacted,
    control and format characters escaped (no forged lines, no terminal escapes), capped."""
    escaped = "".join(
        c if c.isprintable() else c.encode("unicode_escape").decode("ascii")
        for c in redact(text)
    )
    cleaned = redact(escaped)  # the key may also have come escaped
    if len(cleaned) <= STORED_TEXT_MAX:
        return cleaned
    return cleaned[: STORED_TEXT_MAX - 1] + "\u2026"
