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


class _Families:
    """The metric families of one registry, each labelled by folder (one process may mirror
    several folders; see :meth:`Metrics.for_folder`)."""

    def __init__(self) -> None:
        self.registry = r = CollectorRegistry()
        f = ["folder"]
        self.files = Counter("syncd_files_synced", "Files uploaded", f, registry=r)
        self.bytes = Counter("syncd_bytes_uploaded", "Bytes uploaded", f, registry=r)
        self.deleted = Counter("syncd_files_deleted", "Remote copies deleted", f, registry=r)
        self.errors = Counter("syncd_errors", "Sync failures", [*f, "kind"], registry=r)
        self.requests = Counter(
            "syncd_requests", "Files API requests", [*f, "endpoint", "status"], registry=r
        )
        self.limited = Counter("syncd_rate_limited", "429 answers", f, registry=r)
        self.waits = Counter("syncd_retry_wait_seconds", "Seconds waited to retry", f,
                             registry=r)
        self.queue = Gauge("syncd_queue_depth", "Paths waiting in the queue", f, registry=r)
        self.in_flight = Gauge("syncd_in_flight", "Paths being worked on", f, registry=r)
        self.upload_time = Histogram(
            "syncd_upload_duration_seconds", "Upload duration", f,
            buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300), registry=r,
        )
        self.reconciled = Gauge(
            "syncd_last_reconcile_timestamp_seconds", "Unix time of the last reconcile", f,
            registry=r,
        )


class Metrics:
    """Thread-safe tallies of one folder plus a Prometheus registry (shared by the folders of
    one process: :meth:`for_folder`)."""

    def __init__(self, folder: str = "", families: _Families | None = None) -> None:
        self.folder = folder
        self._families = f = families or _Families()
        self.registry = f.registry
        self._files = f.files.labels(folder)
        self._bytes = f.bytes.labels(folder)
        self._deleted = f.deleted.labels(folder)
        self._limited = f.limited.labels(folder)
        self._waits = f.waits.labels(folder)
        self._queue = f.queue.labels(folder)
        self._in_flight = f.in_flight.labels(folder)
        self._upload_time = f.upload_time.labels(folder)
        self._reconciled = f.reconciled.labels(folder)
        self._lock = threading.Lock()
        self._requests: dict[tuple[str, int | None], Any] = {}  # labelled once per op and status
        self.files_done = 0
        self.bytes_done = 0
        self.changes = 0  # bumps whenever the path -> file_id map changes (manifest trigger)
        self._server: Any = None

    def for_folder(self, folder: str) -> Metrics:
        """The tallies of another folder of this process, on the same registry (and server)."""
        return Metrics(folder, self._families)

    def request(self, op: str, status: int | None, _duration: float) -> None:
        """One request answered (status None: no HTTP answer)."""
        counter = self._requests.get((op, status))
        if counter is None:  # labels() costs more than the count: look each pair up once
            label = str(status) if status is not None else "none"
            counter = self._families.requests.labels(self.folder, op, label)
            self._requests[(op, status)] = counter
        counter.inc()
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
        self._families.errors.labels(self.folder, kind).inc()

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
