"""sd_notify: tell systemd we are ready, alive, what we are doing, and that we are stopping.

Without ``NOTIFY_SOCKET`` (not started by systemd with Type=notify) every call is a no-op.
The watchdog is pinged from the daemon's own loop, so a wedged loop gets the service restarted.
Sending never blocks that loop: when the socket is full (systemd slow to read) the message is
dropped and counted.
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Callable

import structlog

log = structlog.get_logger("syncd.notify")


class Notifier:
    """Datagrams to $NOTIFY_SOCKET; silent when it is not set."""

    def __init__(
        self,
        environ: dict[str, str] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        env = os.environ if environ is None else environ
        address = env.get("NOTIFY_SOCKET", "")
        # A leading "@" names a socket in the abstract namespace.
        self._address = "\0" + address[1:] if address.startswith("@") else address
        usec = env.get("WATCHDOG_USEC", "")
        pid = env.get("WATCHDOG_PID", "")
        watched = usec.isdigit() and (not pid or pid == str(os.getpid()))
        # Ping at half the interval systemd allows, as sd_watchdog_enabled(3) advises.
        self.watchdog_interval = int(usec) / 2e6 if watched else None
        self._clock = clock
        self._last_ping = float("-inf")
        self._last_status = ""
        self._sock: socket.socket | None = None
        self.dropped = 0  # messages dropped because the socket was full

    @property
    def enabled(self) -> bool:
        """True when systemd listens."""
        return bool(self._address)

    def send(self, message: str) -> None:
        """Send one notification without blocking; a full socket drops it, and other errors
        are ignored (systemd may be gone during shutdown)."""
        if not self._address:
            return
        try:
            if self._sock is None:
                self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
                # A blocking send to a full socket would stall the loop that pings the watchdog.
                self._sock.setblocking(False)
            self._sock.sendto(message.encode(), self._address)
        except BlockingIOError:
            self.dropped += 1
            if self.dropped == 1:  # one line, not one a tick while systemd lags
                log.debug("notify socket full: dropping notifications", message=message)
        except OSError:
            pass

    def ready(self, status: str = "") -> None:
        """READY=1 (with a status line)."""
        self.send("READY=1" + (f"\nSTATUS={status}" if status else ""))
        self._last_status = status

    def status(self, text: str) -> None:
        """STATUS=..., only when it changed."""
        if text != self._last_status:
            self._last_status = text
            self.send(f"STATUS={text}")

    def ping(self) -> None:
        """WATCHDOG=1, at most every half watchdog interval."""
        if self.watchdog_interval is None:
            return
        now = self._clock()
        if now - self._last_ping >= self.watchdog_interval:
            self._last_ping = now
            self.send("WATCHDOG=1")

    def stopping(self) -> None:
        """STOPPING=1."""
        self.send("STOPPING=1")

    def close(self) -> None:
        """Close the socket."""
        if self._sock is not None:
            self._sock.close()
            self._sock = None
