"""Progress of a full pass: a bar on a terminal, a log line every few seconds elsewhere.

At 100 requests a minute a first sync of many files is slow, and users must see why: the bar
shows files and bytes done, the rate, the ETA, and whether the pacer is holding requests back.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import structlog

from syncd.metrics import Metrics
from syncd.remote.pacer import Pacing

log = structlog.get_logger("syncd.progress")


@dataclass(frozen=True)
class Snapshot:
    """Where a pass stands."""

    files_done: int
    files_total: int
    bytes_done: int
    bytes_total: int
    pacing: str  # "" or why requests are being held back


def pacing_note(pacer: Pacing) -> str:
    """A short explanation when the pacer is what limits speed."""
    paused = pacer.paused_for()
    if paused > 0:
        return f"rate limited by the service: waiting {paused:.0f} s"
    return f"paced at {pacer.requests_per_minute:.0f} requests/min"


class PassProgress:
    """Reports a pass until stopped; ``remaining`` tells how many paths are still queued."""

    def __init__(
        self,
        metrics: Metrics,
        pacer: Pacing,
        remaining: Callable[[], int],
        files_total: int,
        bytes_total: int,
        interactive: bool | None = None,
        interval: float = 5.0,
    ) -> None:
        self._metrics = metrics
        self._pacer = pacer
        self._remaining = remaining
        self._files_total = files_total
        self._bytes_total = bytes_total
        self._files_base = metrics.files_done
        self._bytes_base = metrics.bytes_done
        self._interactive = sys.stdout.isatty() if interactive is None else interactive
        self._interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="syncd-progress", daemon=True)

    def snapshot(self) -> Snapshot:
        """Current numbers."""
        done_files = max(0, self._files_total - self._remaining())
        done_bytes = min(self._bytes_total, self._metrics.bytes_done - self._bytes_base)
        return Snapshot(
            done_files, self._files_total, done_bytes, self._bytes_total,
            pacing_note(self._pacer),
        )

    def start(self) -> PassProgress:
        """Start reporting (nothing to report for an empty pass)."""
        if self._files_total:
            self._thread.start()
        return self

    def stop(self) -> None:
        """Stop and print the final state."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)

    def _run(self) -> None:
        if self._interactive:
            self._run_bar()
        else:
            self._run_lines()

    def _run_lines(self) -> None:
        started = time.monotonic()
        while not self._stop.wait(self._interval):
            snap = self.snapshot()
            elapsed = time.monotonic() - started
            rate = snap.files_done / elapsed if elapsed > 0 else 0.0
            left = snap.files_total - snap.files_done
            log.info(
                "progress", files=snap.files_done, files_total=snap.files_total,
                bytes=snap.bytes_done, bytes_total=snap.bytes_total,
                files_per_min=round(rate * 60, 1),
                eta_s=round(left / rate) if rate > 0 else None, pacing=snap.pacing,
            )

    def _run_bar(self) -> None:
        # rich is imported only for a bar on a terminal: the service never draws one.
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            DownloadColumn,
            Progress,
            TextColumn,
            TimeRemainingColumn,
            TransferSpeedColumn,
        )

        columns = (
            TextColumn("[bold]syncing[/] {task.fields[files]}"), BarColumn(), DownloadColumn(),
            TransferSpeedColumn(), TimeRemainingColumn(), TextColumn("{task.fields[pacing]}"),
        )
        with Progress(*columns, console=Console(stderr=True), transient=False) as bar:
            task = bar.add_task("sync", total=max(1, self._bytes_total), files="", pacing="")
            while not self._stop.wait(0.2):
                snap = self.snapshot()
                bar.update(
                    task, completed=snap.bytes_done, pacing=snap.pacing,
                    files=f"{snap.files_done}/{snap.files_total} files",
                )
            total = f"{self._files_total}/{self._files_total} files"
            bar.update(task, completed=max(1, self._bytes_total), files=total, pacing="")
