"""What every scenario gets: the sizes for this mode, a scratch directory and a logger."""

from __future__ import annotations

import shutil
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path


@dataclass(frozen=True)
class Sizes:
    """How big each scenario is; ``--quick`` shrinks every N."""

    economy_files: int
    restart_files: int
    pacing_files: int
    pacing_rpm: int
    throughput_files: int
    big_bytes: int
    scan_files: int
    latency_files: int
    runs: int
    scale_files: int | None = None  # --scale: the 1M-file rows (scan, memory, READY, idle)

    @classmethod
    def for_mode(cls, quick: bool, scale: bool = False) -> Sizes:
        """The full sizes from the issue, or small ones for a smoke test; ``scale`` adds the
        million-file rows (a quick run with it builds 30,000 files instead)."""
        sizes = cls._base(quick)
        if scale:
            return replace(sizes, scale_files=30_000 if quick else 1_000_000)
        return sizes

    @classmethod
    def _base(cls, quick: bool) -> Sizes:
        if quick:
            return cls(economy_files=20, restart_files=1000, pacing_files=30, pacing_rpm=600,
                       throughput_files=300, big_bytes=20 * 10**6, scan_files=3000,
                       latency_files=5, runs=1)
        return cls(economy_files=200, restart_files=20_000, pacing_files=500, pacing_rpm=600,
                   throughput_files=5000, big_bytes=400 * 10**6, scan_files=100_000,
                   latency_files=50, runs=3)


class Context:
    """Sizes, a scratch directory per scenario, and progress lines on stderr."""

    def __init__(self, quick: bool, scratch: Path, scale: bool = False) -> None:
        self.quick = quick
        self.sizes = Sizes.for_mode(quick, scale)
        self.scratch = scratch
        self._started = time.monotonic()

    def workdir(self, name: str) -> Path:
        """A fresh, empty directory for ``name``."""
        path = self.scratch / name
        shutil.rmtree(path, ignore_errors=True)
        path.mkdir(parents=True)
        return path

    def cleanup(self, name: str) -> None:
        """Remove a scenario's scratch directory."""
        shutil.rmtree(self.scratch / name, ignore_errors=True)

    def log(self, message: str) -> None:
        """A progress line (stderr, so stdout holds only the table)."""
        elapsed = time.monotonic() - self._started
        print(f"[bench {elapsed:6.1f}s] {message}", file=sys.stderr, flush=True)
