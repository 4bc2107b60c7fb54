"""When and how long to retry a request, following the official SDK's rules.

The server's ``x-should-retry`` wins; otherwise transient errors retry. The wait is the server's
``retry-after-ms`` / ``retry-after`` when it lies between 0 and 60 seconds, else exponential
backoff with jitter: ``min(0.5 * 2**n, 8) * (1 - 0.25 * random())``.
"""

from __future__ import annotations

import random
from collections.abc import Callable

from tenacity import RetryCallState

from syncd.errors import ApiError

MAX_SERVER_WAIT = 60.0
INITIAL_BACKOFF = 0.5
MAX_BACKOFF = 8.0


def is_retryable(exc: BaseException) -> bool:
    """True when ``exc`` is an API error worth sending again."""
    if not isinstance(exc, ApiError):
        return False
    if exc.should_retry is not None:
        return exc.should_retry
    return exc.retryable


def retry_delay(exc: BaseException | None, attempt: int, rand: Callable[[], float]) -> float:
    """Seconds to wait before retry number ``attempt`` (1-based) after ``exc``."""
    server: float | None = exc.retry_after if isinstance(exc, ApiError) else None
    if server is not None and 0 <= server <= MAX_SERVER_WAIT:
        return server
    backoff = min(INITIAL_BACKOFF * 2.0 ** (attempt - 1), MAX_BACKOFF)
    return backoff * (1 - 0.25 * rand())


class RetryWait:
    """A tenacity ``wait=`` strategy applying :func:`retry_delay`."""

    def __init__(self, rand: Callable[[], float] = random.random) -> None:
        self._rand = rand

    def __call__(self, state: RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        return retry_delay(exc, state.attempt_number, self._rand)
