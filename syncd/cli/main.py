"""The ``syncd`` command line.

Exit codes: 0 success (converged), 1 some paths are in error state, 2 bad usage, bad
configuration or a condition that stops syncd from starting (key rejected, journal locked or
bound to another root), 130 interrupted.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

import structlog

from syncd import __version__, logs
from syncd.cli.report import print_errors, print_ls, print_status
from syncd.config import Settings, load_settings
from syncd.credentials import resolve_api_key
from syncd.emulator.cli import add_emulator_arguments, run_emulator_cli
from syncd.engine import oneshot
from syncd.engine.folders import open_mirrors
from syncd.engine.mirror import Mirror, Options
from syncd.errors import AuthenticationFailed, ConfigError, JournalError, SafetyStop, SyncdError
from syncd.service.signals import run_until_signal

log = structlog.get_logger("syncd")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser for every subcommand."""
    parser = argparse.ArgumentParser(prog="syncd", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"syncd {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, help_text: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_text, description=help_text)
        if name not in ("emulator", "demo"):
            p.add_argument("--config", "-c", type=Path, required=True, metavar="FILE",
                           help="the TOML config file")
        return p

    command("run", "mirror the folder continuously (the service's main loop)")
    sync = command("sync", "one full pass: scan, upload, delete, reconcile; then exit")
    sync.add_argument("--dry-run", action="store_true", help="show what would change, send nothing")
    sync.add_argument("--full-reconcile", action="store_true",
                      help="list the whole workspace and repair what it shows, even when the"
                      " periodic full pass ([sync] reconcile_interval_seconds, stretched to"
                      " [sync] reconcile_budget_share of the budget) is not due")
    sync.add_argument("--allow-mass-delete", action="store_true",
                      help="allow deleting more than [sync] max_delete_fraction of the files")
    sync.add_argument("--allow-mass-reupload", action="store_true",
                      help="believe a listing that lacks more than [sync] max_missing_fraction"
                      " of the synced files, and upload them again")
    sync.add_argument("--accept-new-root", action="store_true",
                      help="take the directory now at `root` as the root although it is not the"
                      " one first synced (a new disk, a restored copy), and mirror it")
    status = command("status", "what is synced, pending and failing")
    status.add_argument("--json", action="store_true", help="machine-readable output")
    folder_option(status)
    ls = command("ls", "the path -> file_id map, or ready-to-use content blocks or resources")
    ls.add_argument("--format", choices=("text", "json", "blocks", "resources"),
                    help="text (the default): a table; json: one object per file; blocks:"
                    " Messages content blocks; resources: Managed Agents file resources")
    ls.add_argument("--json", action="store_true", help="same as --format json")
    ls.add_argument("--mount-name", metavar="NAME",
                    help="with --format resources: mount under /mnt/NAME/ (default: the root"
                    " folder's name)")
    ls.add_argument("prefix", nargs="?", default="", metavar="PATH-PREFIX")
    ls.set_defaults(usage_error=ls.error)  # cmd_ls rejects conflicting options as argparse does
    folder_option(ls)
    folder_option(command("errors", "paths in error state, with the reason"))
    rebuild = command("rebuild", "rebuild a lost or corrupt journal from the remote listing"
                      " (lists only: nothing is uploaded or deleted)")
    rebuild.add_argument("--force", action="store_true",
                         help="move an existing, healthy journal aside first")
    config = sub.add_parser("config", help="check a configuration")
    config_sub = config.add_subparsers(dest="config_command", required=True, metavar="ACTION")
    check = config_sub.add_parser("check", help="validate the config, key source, root, journal")
    check.add_argument("--config", "-c", type=Path, required=True, metavar="FILE")
    check.add_argument("--online", action="store_true", help="also make one list call")
    add_emulator_arguments(command("emulator", "run the local Files API emulator"))
    demo = command("demo", "mirror a sample folder to a throw-away emulator")
    demo.add_argument("folder", nargs="?", type=Path, help="folder to mirror (default: a sample)")
    demo.add_argument("--once", action="store_true", help="exit after the first pass")
    return parser


def folder_option(parser: argparse.ArgumentParser) -> None:
    """``--folder NAME``: one of the config's [[folder]] tables (default: all)."""
    parser.add_argument("--folder", metavar="NAME",
                        help="only this [[folder]] of the config (default: every folder)")


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``syncd`` console script."""
    _raw_names()
    args = build_parser().parse_args(argv)
    handler = COMMANDS[args.command]
    try:
        return handler(args)
    except (ConfigError, JournalError) as exc:
        return _fail(str(exc))
    except AuthenticationFailed as exc:
        return _fail(f"the service rejected the API key ({exc}); check ANTHROPIC_API_KEY or "
                     "[remote] api_key_file")
    except SafetyStop as exc:
        return _fail(f"{exc}; create it, mount it, or fix `root` in the config")
    except SyncdError as exc:
        return _fail(str(exc), code=1)
    except KeyboardInterrupt:
        return 130


def _raw_names() -> None:
    """Print a non-UTF-8 file name's bytes as they are on disk (as ls does), instead of
    failing with UnicodeEncodeError where the locale makes stdout strict."""
    for stream in (sys.stdout, sys.stderr):
        reconfigure = getattr(stream, "reconfigure", None)
        if reconfigure is not None:
            reconfigure(errors="surrogateescape")


def _fail(message: str, code: int = 2) -> int:
    print(f"syncd: {logs.redact(message)}", file=sys.stderr)
    return code


def _settings(args: argparse.Namespace) -> Settings:
    settings = load_settings(args.config)
    logs.configure(settings.log.level, settings.log.format)
    key, _ = _key_or_none(settings)
    if key:
        logs.add_secret(key)
    return settings


def _key_or_none(settings: Settings) -> tuple[str | None, str]:
    try:
        return resolve_api_key(settings)
    except ConfigError as exc:
        return None, str(exc)


def cmd_sync(args: argparse.Namespace) -> int:
    """``syncd sync``."""
    settings = _settings(args)
    options = Options(allow_mass_delete=args.allow_mass_delete,
                      allow_mass_reupload=args.allow_mass_reupload,
                      accept_new_root=args.accept_new_root,
                      full_reconcile=args.full_reconcile)
    code = 0
    with open_mirrors(settings, options) as mirrors:
        for daemon in mirrors:  # one folder after the other, on the one request budget
            code = max(code, _sync_one(daemon, dry_run=args.dry_run))
    return code


def _sync_one(daemon: Mirror, dry_run: bool) -> int:
    if dry_run:
        return oneshot.dry_run(daemon, sys.stdout)
    code = oneshot.sync_once(daemon)
    where = f"folder {daemon.name}: " if daemon.name else ""
    problems = daemon.problems()
    for problem in problems:
        print(f"syncd: {where}{problem}", file=sys.stderr)
    if code and not problems:
        print(f"syncd: {where}some paths are not synced; see `syncd errors`", file=sys.stderr)
    return code


def cmd_run(args: argparse.Namespace) -> int:
    """``syncd run``: until SIGTERM or SIGINT."""
    settings = _settings(args)
    with open_mirrors(settings) as mirrors:
        return run_until_signal(mirrors, reload=lambda: _settings(args))


def cmd_status(args: argparse.Namespace) -> int:
    """``syncd status``."""
    return print_status(load_settings(args.config), as_json=args.json, folder=args.folder)


def cmd_ls(args: argparse.Namespace) -> int:
    """``syncd ls``: ``--json`` is ``--format json``; it conflicts with any other format."""
    fmt = args.format or ("json" if args.json else "text")
    if args.json and fmt != "json":
        args.usage_error(f"argument --json: not allowed with --format {fmt}")
    if args.mount_name is not None and fmt != "resources":
        args.usage_error(f"argument --mount-name: only with --format resources, not {fmt}")
    return print_ls(load_settings(args.config), args.prefix, fmt, mount_name=args.mount_name,
                    folder=args.folder)


def cmd_errors(args: argparse.Namespace) -> int:
    """``syncd errors``."""
    return print_errors(load_settings(args.config), folder=args.folder)


def cmd_rebuild(args: argparse.Namespace) -> int:
    """``syncd rebuild``."""
    from syncd.cli.rebuild import run_rebuild

    return run_rebuild(_settings(args), force=args.force, out=sys.stdout)


def cmd_config(args: argparse.Namespace) -> int:
    """``syncd config check``."""
    from syncd.cli.check import run_checks

    return run_checks(load_settings(args.config), args.online, print)


def cmd_emulator(args: argparse.Namespace) -> int:
    """``syncd emulator``."""
    return run_emulator_cli(args)


def cmd_demo(args: argparse.Namespace) -> int:
    """``syncd demo``."""
    from syncd.cli.demo import run_demo

    return run_demo(args.folder, once=args.once)


COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {
    "run": cmd_run,
    "sync": cmd_sync,
    "status": cmd_status,
    "ls": cmd_ls,
    "errors": cmd_errors,
    "rebuild": cmd_rebuild,
    "config": cmd_config,
    "emulator": cmd_emulator,
    "demo": cmd_demo,
}
