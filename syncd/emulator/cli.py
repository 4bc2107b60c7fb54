"""``syncd emulator``: run the Files API emulator in the foreground, from flags."""

from __future__ import annotations

import argparse
import ipaddress
import os
import signal
import sys
import threading
from pathlib import Path
from typing import TYPE_CHECKING

from syncd.emulator.store import DEFAULT_WORKSPACE, ForeignDataDir, claim_data_dir

if TYPE_CHECKING:  # the emulator (starlette, uvicorn) is imported only to run it
    from syncd.emulator.app import EmulatorConfig


def add_emulator_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the emulator's options to ``parser``."""
    add = parser.add_argument
    add("--host", default="127.0.0.1", help="address to listen on (default: %(default)s)")
    add("--port", type=int, default=8765, help="port to listen on (default: %(default)s)")
    add("--data", type=Path, required=True, metavar="DIR", help="directory for files and metadata")
    add("--api-key", default=os.environ.get("SYNCD_EMULATOR_API_KEY", "sk-ant-emulator"),
        help="key clients must send (default: $SYNCD_EMULATOR_API_KEY or sk-ant-emulator)")
    add("--max-file-bytes", type=int, default=500_000_000, help="largest accepted file")
    add("--linger-seconds", type=float, default=2.0,
        help="how long a deleted file stays in listings (default: %(default)s)")
    add("--rate-limit-rpm", type=int, default=None, help="requests per minute before 429")
    add("--rate-limit-burst", type=int, default=None, help="token bucket size (default rpm/10)")
    add("--ratelimit-headers", action="store_true",
        help="announce the rate limit in anthropic-ratelimit-requests-* headers (without it,"
             " --rate-limit-rpm is a limit the client is not told)")
    add("--error-rate", type=float, default=0.0, help="share of requests answered 500/529")
    add("--latency", type=float, default=0.0, help="seconds added before each answer")
    add("--drop-upload-rate", type=float, default=0.0,
        help="share of uploads whose connection is dropped mid-body")
    add("--lose-response-rate", type=float, default=0.0,
        help="share of uploads stored but never answered")
    add("--page-max", type=int, default=None, metavar="N",
        help="never answer more than N files per list page, whatever the limit asked for")
    add("--workspace-id", default=DEFAULT_WORKSPACE, metavar="ID",
        help="the key's workspace, sent back as anthropic-workspace-id (default: %(default)s)")
    add("--quota-bytes", type=int, default=None, metavar="N",
        help="storage quota: refuse uploads that would take the stored files past N bytes")
    add("--seed-foreign", type=int, default=0, metavar="N",
        help="make sure N small foreign text files exist at start")
    add("--seed", type=int, default=0, help="random seed for the faults")


_RATE_FLAGS = {"error_rate": "--error-rate", "drop_upload_rate": "--drop-upload-rate",
               "lose_response_rate": "--lose-response-rate"}


def _cli_problem(args: argparse.Namespace) -> str | None:
    for attr, flag in _RATE_FLAGS.items():
        value = getattr(args, attr)
        if not 0.0 <= value <= 1.0:
            return f"{flag} {value}: must be between 0 and 1 (a share of requests)"
    checks = [
        (args.latency < 0, f"--latency {args.latency}: must be 0 or more seconds"),
        (args.rate_limit_rpm is not None and args.rate_limit_rpm < 1,
         f"--rate-limit-rpm {args.rate_limit_rpm}: must be at least 1 (omit it for no limit)"),
        (args.rate_limit_burst is not None and args.rate_limit_burst < 1,
         f"--rate-limit-burst {args.rate_limit_burst}: must be at least 1"),
        (args.max_file_bytes < 1, f"--max-file-bytes {args.max_file_bytes}: must be positive"),
        (args.linger_seconds < 0, f"--linger-seconds {args.linger_seconds}: must be 0 or more"),
        (not 0 <= args.port <= 65535, f"--port {args.port}: must be between 0 and 65535"),
        (args.seed_foreign < 0, f"--seed-foreign {args.seed_foreign}: must be 0 or more"),
        (not args.api_key, "--api-key: must not be empty (or set SYNCD_EMULATOR_API_KEY)"),
        (args.page_max is not None and args.page_max < 1,
         f"--page-max {args.page_max}: must be at least 1 (omit it for no cap)"),
        (args.quota_bytes is not None and args.quota_bytes < 0,
         f"--quota-bytes {args.quota_bytes}: must be 0 or more (omit it for no quota)"),
        (_workspace_problem(args.workspace_id) is not None,
         f"--workspace-id {args.workspace_id}: must be wrkspc_ and 1 to 100 of [A-Za-z0-9_-]"),
    ]
    return next((message for bad, message in checks if bad), None)


def _data_dir_problem(data: Path) -> str | None:
    try:
        claim_data_dir(data)
    except ForeignDataDir as exc:
        return f"--data {exc}"
    except OSError as exc:
        return f"--data {data}: cannot write there ({exc.strerror}); choose a writable directory"
    return None


def _exposure_warning(host: str) -> str | None:
    """A warning when the emulator listens beyond this machine."""
    try:
        loopback = host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = False
    if loopback:
        return None
    return (f"warning: --host {host} is reachable from other machines; the emulator is a test"
            " server (plain HTTP, one shared key): prefer 127.0.0.1")


def _workspace_problem(workspace_id: str) -> str | None:
    from syncd.emulator.app import workspace_problem

    return workspace_problem(workspace_id)


def _config_from(args: argparse.Namespace) -> EmulatorConfig:
    from syncd.emulator.app import EmulatorConfig
    from syncd.emulator.faults import Faults

    faults = Faults(
        rate_limit_rpm=args.rate_limit_rpm, rate_limit_burst=args.rate_limit_burst,
        error_rate=args.error_rate, latency_seconds=args.latency,
        drop_upload_rate=args.drop_upload_rate, lose_response_rate=args.lose_response_rate,
        quota_bytes=args.quota_bytes,
    )
    return EmulatorConfig(data_dir=args.data, api_key=args.api_key,
                          max_file_bytes=args.max_file_bytes, linger_seconds=args.linger_seconds,
                          faults=faults, seed=args.seed, workspace_id=args.workspace_id,
                          page_max=args.page_max, ratelimit_headers=args.ratelimit_headers)


def run_emulator_cli(args: argparse.Namespace) -> int:
    """Run the emulator in the foreground until SIGINT/SIGTERM; 0 when stopped, 2 on bad input."""
    from syncd.emulator.app import run_emulator

    problem = _cli_problem(args) or _data_dir_problem(args.data)
    if problem is not None:
        print(f"syncd emulator: {problem}", file=sys.stderr)
        return 2
    warning = _exposure_warning(args.host)
    if warning:
        print(f"syncd emulator: {warning}", file=sys.stderr)
    stop = threading.Event()
    previous = {sig: signal.signal(sig, lambda *_: stop.set())
                for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        with run_emulator(_config_from(args), host=args.host, port=args.port) as emu:
            emu.ensure_foreign_files(args.seed_foreign)
            print(f"syncd emulator: listening on {emu.base_url} (data in {args.data})",
                  flush=True)
            while not stop.wait(0.5):
                pass
    except OSError as exc:
        print(f"syncd emulator: --host {args.host} --port {args.port}: cannot listen there "
              f"({exc.strerror}); pick another --port or stop the program using it",
              file=sys.stderr)
        return 2
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return 0
