"""Logging: structlog to stderr, JSON lines off a terminal (journald, containers), readable on one.

One redaction step runs last before rendering: whatever a caller passes, a value that contains
the API key is masked, so the key cannot reach a log line by accident.
"""

from __future__ import annotations

import logging
import sys
from typing import Any, TextIO

import structlog
from structlog.typing import EventDict, WrappedLogger

LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING,
          "error": logging.ERROR}
_secrets: list[str] = []


def add_secret(value: str) -> None:
    """Never let ``value`` appear in a log line."""
    if value and value not in _secrets:
        _secrets.append(value)


def _redact(_logger: WrappedLogger, _name: str, event: EventDict) -> EventDict:
    if not _secrets:
        return event
    for key, value in event.items():
        text = value if isinstance(value, str) else None
        if text is None and isinstance(value, BaseException):
            text = str(value)
        if text is not None and any(s in text for s in _secrets):
            for secret in _secrets:
                text = text.replace(secret, "<redacted>")
            event[key] = text
    return event


def configure(level: str = "info", fmt: str = "auto", stream: TextIO | None = None) -> None:
    """Set up structlog for the whole process."""
    out = stream or sys.stderr
    json_lines = fmt == "json" or (fmt == "auto" and not out.isatty())
    renderer: Any = (
        structlog.processors.JSONRenderer()
        if json_lines
        else structlog.dev.ConsoleRenderer(colors=out.isatty())
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info if json_lines else _identity,
            _redact,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(LEVELS.get(level, logging.INFO)),
        logger_factory=structlog.PrintLoggerFactory(out),
        cache_logger_on_first_use=False,
    )


def _identity(_logger: WrappedLogger, _name: str, event: EventDict) -> EventDict:
    return event
