"""The daemon under a service manager: SIGTERM and SIGINT stop it, SIGHUP reloads."""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable, Sequence

import structlog

from syncd.config import Settings
from syncd.engine.mirror import Mirror
from syncd.service.loop import run_daemon
from syncd.service.notify import Notifier

log = structlog.get_logger("syncd.cli")


def run_until_signal(
    mirrors: Mirror | Sequence[Mirror],
    on_ready: Callable[[], None] | None = None,
    reload: Callable[[], Settings] | None = None,
) -> int:
    """Run the daemon: SIGTERM/SIGINT stop it, SIGHUP reloads the config (ignore rules, log);
    each folder takes its own part of the reloaded config."""
    group = [mirrors] if isinstance(mirrors, Mirror) else list(mirrors)
    stop = threading.Event()

    def on_stop(signum: int, _frame: object) -> None:
        log.info("stopping", signal=signal.Signals(signum).name)
        stop.set()

    def on_hup(*_: object) -> None:
        for mirror in group:
            mirror.request_reload(_part(mirror, reload))

    signal.signal(signal.SIGTERM, on_stop)
    signal.signal(signal.SIGINT, on_stop)
    signal.signal(signal.SIGHUP, on_hup)
    return run_daemon(group, stop, on_ready=on_ready, notifier=Notifier())


def _part(mirror: Mirror, reload: Callable[[], Settings] | None) -> Callable[[], Settings]:
    """The reloaded settings of ``mirror``'s folder (its current ones without ``reload``)."""
    if reload is None:
        return lambda: mirror.settings
    return lambda: reload().folder_named(mirror.name)
