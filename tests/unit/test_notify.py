"""sd_notify over a real unix datagram socket: a socket nobody reads never blocks the sender."""

from __future__ import annotations

import itertools
import secrets
import socket

import pytest
from structlog.testing import capture_logs

from syncd.service.loop import Watchdog
from syncd.service.notify import Notifier


def _queued(receiver: socket.socket) -> int:
    """How many datagrams wait in ``receiver`` (it reads them all)."""
    receiver.setblocking(False)
    count = 0
    while True:
        try:
            receiver.recv(4096)
        except BlockingIOError:
            return count
        count += 1


@pytest.mark.usefixtures("debug_level")
def test_a_full_notify_socket_drops_messages_instead_of_blocking() -> None:
    """Every send to a socket that is never read returns; what did not fit is counted as
    dropped, with one debug line however many are dropped."""
    name = f"syncd-test-notify-{secrets.token_hex(6)}"  # abstract namespace: no path limit
    sends = 2000
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as receiver, capture_logs() as logs:
        receiver.bind("\0" + name)
        notifier = Notifier(environ={"NOTIFY_SOCKET": "@" + name})
        for n in range(sends):
            notifier.send(f"STATUS=syncing: {n} queued")
        notifier.close()
        queued = _queued(receiver)
    lines = [e for e in logs if e["event"].startswith("notify socket full")]
    assert (sends, True, 1) == (queued + notifier.dropped, notifier.dropped > 0, len(lines))


def test_scans_ping_the_watchdog_only_while_the_threads_are_vouched_for() -> None:
    """Watchdog.keepalive (called from inside scans) pings while the last turn found every
    thread alive, and stays silent before the first verdict (the start-up scan, before READY)
    and after a turn that found a dead thread: a scan's progress is no proof the workers live."""
    sent: list[str] = []
    notifier = Notifier({"NOTIFY_SOCKET": "/nonexistent/notify", "WATCHDOG_USEC": "2000000"},
                        clock=itertools.count(0.0, 1000.0).__next__)
    notifier.send = sent.append  # type: ignore[method-assign]
    watchdog = Watchdog(notifier)
    watchdog.keepalive()  # the start-up scan: no verdict yet
    watchdog.vouch(True)
    watchdog.vouch(False)
    watchdog.keepalive()
    watchdog.keepalive()
    watchdog.vouch(True)
    watchdog.keepalive()
    assert ["WATCHDOG=1"] * 3 == sent
