"""Counters for progress displays and, when ``[metrics] listen`` is set, Prometheus.

Everything is counted in one place so the progress bar, the STATUS= line and the /metrics page
agree. The Prometheus server is off by default and listens on loopback unless told otherwise.
"""

from __future__ import annotations

import threading
from typing import Any

import structlog
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

from syncd.errors import ConfigError

log = structlog.get_logger("syncd.metrics")


class Metrics:
    """Thread-safe tallies plus a private Prometheus registry."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self._files = Counter("syncd_files_synced", "Files uploaded", registry=r)
        self._bytes = Counter("syncd_bytes_uploaded", "Bytes uploaded", registry=r)
        self._deleted = Counter("syncd_files_deleted", "Remote copies deleted", registry=r)
        self._errors = Counter("syncd_errors", "Sync failures", ["kind"], registry=r)
        self._requests = Counter(
            "syncd_requests", "Files API requests", ["endpoint", "status"], registry=r
        )
        self._limited = Counter("syncd_rate_limited", "429 answers", registry=r)
        self._waits = Counter("syncd_retry_wait_seconds", "Seconds waited to retry", registry=r)
        self._queue = Gauge("syncd_queue_depth", "Paths waiting in the queue", registry=r)
        self._in_flight = Gauge("syncd_in_flight", "Paths being worked on", registry=r)
        self._upload_time = Histogram(
            "syncd_upload_duration_seconds", "Upload duration",
            buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300), registry=r,
        )
        self._reconciled = Gauge(
            "syncd_last_reconcile_timestamp_seconds", "Unix time of the last reconcile",
            registry=r,
        )
        self._lock = threading.Lock()
        self.files_done = 0
        self.bytes_done = 0
        self.changes = 0  # bumps whenever the path -> file_id map changes (manifest trigger)
        self._server: Any = None

    def request(self, op: str, status: int | None, _duration: float) -> None:
        """One request answered (status None: no HTTP answer)."""
        self._requests.labels(op, str(status) if status is not None else "none").inc()
        if status == 429:
            self._limited.inc()

    def retry_wait(self, seconds: float) -> None:
        """Time spent waiting before a retry."""
        self._waits.inc(max(0.0, seconds))

    def uploaded(self, size: int, seconds: float) -> None:
        """A file's new content is stored and committed."""
        self._files.inc()
        self._bytes.inc(size)
        self._upload_time.observe(seconds)
        with self._lock:
            self.files_done += 1
            self.bytes_done += size
            self.changes += 1

    def deleted(self) -> None:
        """A removed file's remote copy is gone."""
        self._deleted.inc()
        self.changed()

    def changed(self) -> None:
        """The map changed some other way (adopted, forgotten)."""
        with self._lock:
            self.changes += 1

    def error(self, kind: str) -> None:
        """A path failed (``transient`` or ``permanent``)."""
        self._errors.labels(kind).inc()

    def queue(self, pending: int, in_flight: int) -> None:
        """Current queue depth and paths being worked on."""
        self._queue.set(pending)
        self._in_flight.set(in_flight)

    def reconciled(self, unix_time: float) -> None:
        """A reconcile finished."""
        self._reconciled.set(unix_time)

    def serve(self, listen: str, loopback: bool) -> None:
        """Serve /metrics on HOST:PORT; ConfigError (exit 2) if the port cannot be bound."""
        host, _, port = listen.rpartition(":")
        try:
            self._server, _thread = start_http_server(
                int(port), addr=host.strip("[]"), registry=self.registry
            )
        except OSError as exc:
            raise ConfigError(
                f"[metrics] listen = {listen!r}: cannot listen there ({exc.strerror}); "
                "choose a free port or leave it empty to turn metrics off"
            ) from None
        if not loopback:
            log.warning("metrics reachable from other hosts", listen=listen)
        log.info("metrics", listen=listen)

    def close(self) -> None:
        """Stop the HTTP server if one runs."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
