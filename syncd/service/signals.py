"""The daemon under a service manager: SIGTERM and SIGINT stop it, SIGHUP reloads."""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable

import structlog

from syncd.config import Settings
from syncd.engine.mirror import Mirror
from syncd.service.loop import run_daemon
from syncd.service.notify import Notifier

log = structlog.get_logger("syncd.cli")


def run_until_signal(
    daemon: Mirror,
    on_ready: Callable[[], None] | None = None,
    reload: Callable[[], Settings] | None = None,
) -> int:
    """Run the daemon: SIGTERM/SIGINT stop it, SIGHUP reloads the config (ignore rules, log)."""
    stop = threading.Event()

    def on_stop(signum: int, _frame: object) -> None:
        log.info("stopping", signal=signal.Signals(signum).name)
        stop.set()

    signal.signal(signal.SIGTERM, on_stop)
    signal.signal(signal.SIGINT, on_stop)
    signal.signal(signal.SIGHUP, lambda *_: daemon.request_reload(reload or _same(daemon)))
    return run_daemon(daemon, stop, on_ready=on_ready, notifier=Notifier())


def _same(daemon: Mirror) -> Callable[[], Settings]:
    return lambda: daemon.settings
