"""Local hardening (issue 10, items 2, 5, 18, 19, 22): the key, file modes, what root and the
journal may be, config values that used to pass validation and then crash, log tracebacks."""

from __future__ import annotations

import contextlib
import io
import json
import os
import sqlite3
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import structlog
from structlog.testing import capture_logs

from syncd import logs
from syncd.cli.main import main
from syncd.cli.rebuild import _rules, rebuild
from syncd.config import Settings, load_settings
from syncd.credentials import resolve_api_key
from syncd.engine.manifest import write_manifest
from syncd.engine.mirror import Mirror
from syncd.errors import ConfigError, JournalError
from syncd.journal import Journal
from syncd.remote.client import FilesClient

KEY = "sk-ant-api03-secret-0123456789"
SECOND = "second-line-XYZ"


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    """No SYNCD_* or key variables from outside; logging config and secrets restored after."""
    for name in list(os.environ):
        if name.startswith("SYNCD_"):
            monkeypatch.delenv(name)
    for name in ["ANTHROPIC_API_KEY", "CREDENTIALS_DIRECTORY", "STATE_DIRECTORY"]:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "xdg-state"))
    monkeypatch.setattr(logs, "_secrets", [])
    saved = structlog.get_config()
    yield
    structlog.configure(**saved)


@contextlib.contextmanager
def umask(mask: int) -> Iterator[None]:
    old = os.umask(mask)
    try:
        yield
    finally:
        os.umask(old)


def settings_for(tmp_path: Path, **remote: Any) -> Settings:
    root = tmp_path / "root"
    root.mkdir(exist_ok=True)
    return load_settings(None, root=root, remote=remote)


def forms(secret: str) -> list[str]:
    """The ways a secret can be spelt in text: raw, repr, JSON-escaped, and each line alone."""
    return [secret, repr(secret), repr(secret)[1:-1], json.dumps(secret)[1:-1],
            *secret.splitlines()]


def mode(path: Path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


# -- item 2: a key with a newline or other bad characters ---------------------------------


@pytest.mark.parametrize(("content", "problem"), [
    (f"{KEY}\n{SECOND}\n", "more than one line"),
    (f"{KEY}\r\n\r\n", "more than one line"),
    (f"{KEY} {SECOND}", "whitespace"),
    (f"\t{KEY}", "whitespace"),
    (f"{KEY}\x00", "control character"),
    (f"{KEY}\x1b", "control character"),
    (f"{KEY}\u00e9", "non-ASCII character"),
    (f"\ufeff{KEY}", "non-ASCII character"),
])
def test_bad_key_file_is_one_line_without_the_key(
    tmp_path: Path, content: str, problem: str
) -> None:
    """A key file with a second line, whitespace, a control or non-ASCII character is refused,
    naming the problem and the file, never the key."""
    key_file = tmp_path / "key"
    key_file.write_bytes(content.encode())
    key_file.chmod(0o600)
    with pytest.raises(ConfigError) as info:
        resolve_api_key(settings_for(tmp_path, api_key_file=key_file))
    text = str(info.value)
    expected = (True, True, False, 1)
    assert expected == (problem in text, str(key_file) in text,
                        any(f in text for f in forms(content.strip()) if f), len(text.splitlines()))


@pytest.mark.parametrize("value", [f"{KEY}\n{SECOND}", f"{KEY}\r{SECOND}", f"{KEY} x"])
def test_bad_key_in_environment_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    """ANTHROPIC_API_KEY holding a newline or a space is refused, naming the variable only."""
    monkeypatch.setenv("ANTHROPIC_API_KEY", value)
    with pytest.raises(ConfigError) as info:
        resolve_api_key(settings_for(tmp_path))
    text = str(info.value)
    expected = (True, False)
    assert expected == ("ANTHROPIC_API_KEY" in text, KEY in text or SECOND in text)


@pytest.mark.parametrize("ending", ["\n", "\r\n"])
def test_one_trailing_newline_is_stripped(tmp_path: Path, ending: str) -> None:
    """A key file ending in one newline (Unix or Windows) gives the key without it."""
    key_file = tmp_path / "key"
    key_file.write_bytes(f"{KEY}{ending}".encode())
    key_file.chmod(0o600)
    assert KEY == resolve_api_key(settings_for(tmp_path, api_key_file=key_file))[0]


def _online_config(tmp_path: Path, base_url: str, key_file: Path) -> Path:
    root = tmp_path / "root"
    root.mkdir(exist_ok=True)
    config = tmp_path / "syncd.toml"
    config.write_text(
        f"root = {json.dumps(str(root))}\n[remote]\nbase_url = {json.dumps(base_url)}\n"
        f"api_key_file = {json.dumps(str(key_file))}\nmax_retries = 0\n"
        f"[state]\njournal = {json.dumps(str(tmp_path / 'state' / 'j.db'))}\n"
        "[log]\nformat = \"json\"\n"
    )
    return config


def test_config_check_online_never_shows_a_two_line_key(
    tmp_path: Path, emulator: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    """`config check --online` with a two-line key file fails in one line per check and shows
    the key in no form (raw, repr, escaped, either line) on stdout or stderr."""
    secret = f"{emulator.api_key}\n{SECOND}"
    key_file = tmp_path / "key"
    key_file.write_text(secret + "\n")
    key_file.chmod(0o600)
    code = main(["config", "check", "--config", str(_online_config(tmp_path, emulator.base_url,
                                                                   key_file)), "--online"])
    out, err = capsys.readouterr()
    leaked = [f for f in forms(secret) if f in out + err]
    key_line = next(line for line in out.splitlines() if "API key" in line)
    expected = (2, [], True)
    assert expected == (code, leaked, key_line.startswith("FAIL") and "more than one line"
                        in key_line)


def test_sync_with_a_two_line_env_key_never_shows_it(
    tmp_path: Path, emulator: Any, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str]
) -> None:
    """`syncd sync` with ANTHROPIC_API_KEY holding a newline exits 2 with one line, and the key
    appears in no form in its output or logs."""
    secret = f"{emulator.api_key}\n{SECOND}"
    monkeypatch.setenv("ANTHROPIC_API_KEY", secret)
    config = _online_config(tmp_path, emulator.base_url, tmp_path / "no-such-key")
    code = main(["sync", "--config", str(config)])
    out, err = capsys.readouterr()
    leaked = [f for f in forms(secret) if f in out + err]
    expected = (2, [], 1)
    assert expected == (code, leaked, len(err.splitlines()))


def test_redactor_masks_repr_and_escaped_forms(tmp_path: Path) -> None:
    """A secret holding characters that repr/JSON escape is masked in those forms too, in JSON
    and console output, in messages and exception text."""
    secret = 'sk-ant-"quoted"\\back\nLINE2-QQQ'
    logs.add_secret(secret)
    for fmt in ("json", "console"):
        out = io.StringIO()
        logs.configure("info", fmt, stream=out)
        log = structlog.get_logger("t")
        log.warning("attempt", error=f"Illegal header value {secret!r}", body=json.dumps(secret),
                    raw=secret, exc=ValueError(repr(secret)))
        try:
            raise RuntimeError(f"header {secret.encode()!r}")
        except RuntimeError:
            log.exception("failed")
        text = out.getvalue()
        expected: tuple[str, list[str]] = (fmt, [])
        assert expected == (fmt, [f for f in [*forms(secret), repr(secret.encode())[2:-1]]
                                  if f in text])


def test_console_exception_shows_no_locals(tmp_path: Path) -> None:
    """A console-format log of an exception prints the traceback without any frame's locals."""
    out = io.StringIO()
    logs.configure("info", "console", stream=out)

    def failing() -> None:
        local_value = "LOCAL-VALUE-4242"
        raise RuntimeError("boom " + local_value[:5])

    try:
        failing()
    except RuntimeError:
        structlog.get_logger("t").exception("failed")
    text = out.getvalue()
    expected = (True, True, False)
    assert expected == ("failing" in text, "RuntimeError" in text, "LOCAL-VALUE-4242" in text)


# -- item 5: file modes ------------------------------------------------------------------------


def test_journal_files_are_private_whatever_the_umask(tmp_path: Path) -> None:
    """With umask 000 the journal, its -wal and -shm and its .lock are created 0600."""
    db = tmp_path / "state" / "j.db"
    with umask(0), Journal.open(db, "/srv", "https://api.anthropic.com") as journal:
        journal.set_meta("x", "y")
        found = {p.name: mode(p) for p in db.parent.iterdir()}
    expected = {"j.db": 0o600, "j.db-wal": 0o600, "j.db-shm": 0o600, "j.db.lock": 0o600}
    assert expected == {name: m for name, m in found.items() if name in expected} and set(
        found) >= set(expected)


def test_existing_journal_is_made_private(tmp_path: Path) -> None:
    """A journal an older syncd left 0644 is 0600 once opened."""
    db = tmp_path / "j.db"
    Journal.open(db, "/srv", "https://api.anthropic.com").close()
    for path in (db, db.with_name("j.db.lock")):
        path.chmod(0o644)
    Journal.open(db, "/srv", "https://api.anthropic.com").close()
    assert (0o600, 0o600) == (mode(db), mode(db.with_name("j.db.lock")))


def test_manifest_is_private_whatever_the_umask(tmp_path: Path) -> None:
    """With umask 000 a new manifest is created 0600."""
    path = tmp_path / "m" / "manifest.json"
    with umask(0):
        write_manifest(path, {"version": 1})
    assert 0o600 == mode(path)


def test_manifest_keeps_the_group_read_bit_set_by_the_admin(tmp_path: Path) -> None:
    """After `chmod 640` (or 666) on the manifest, rewrites keep group read and drop the rest."""
    path = tmp_path / "manifest.json"
    write_manifest(path, {"version": 1})
    path.chmod(0o666)
    write_manifest(path, {"version": 2})
    expected = (0o640, os.stat(tmp_path).st_gid, {"version": 2})
    assert expected == (mode(path), os.stat(path).st_gid, json.loads(path.read_text()))


def test_shared_key_file_warns_once(tmp_path: Path) -> None:
    """A key file readable by group or others gets one warning naming the file and the fix."""
    key_file = tmp_path / "key"
    key_file.write_text(KEY + "\n")
    key_file.chmod(0o644)
    settings = settings_for(tmp_path, api_key_file=key_file)
    with capture_logs() as captured:
        resolve_api_key(settings)
        resolve_api_key(settings)
    warnings = [e for e in captured if e["log_level"] == "warning"]
    expected = (1, True, True)
    assert expected == (len(warnings), str(key_file) in json.dumps(warnings),
                        f"chmod 600 {key_file}" in json.dumps(warnings))


def test_private_key_file_gives_no_warning(tmp_path: Path) -> None:
    """A 0600 key file is read without any warning."""
    key_file = tmp_path / "key"
    key_file.write_text(KEY + "\n")
    key_file.chmod(0o600)
    with capture_logs() as captured:
        resolve_api_key(settings_for(tmp_path, api_key_file=key_file))
    assert [] == captured


# -- item 18: what root and the journal may be ---------------------------------------------------


@pytest.mark.parametrize("root", ["/", "//", "/proc", "/proc/self", "/sys", "/sys/kernel",
                                  "/dev", "/dev/shm", "/tmp/../"])
def test_system_roots_are_refused(root: str) -> None:
    """`root` = "/" or /proc, /sys, /dev (or below them) is refused with one line."""
    with pytest.raises(ConfigError) as info:
        load_settings(None, root=Path(root))
    text = str(info.value)
    assert (True, 1) == ("root" in text, len(text.splitlines()))


def test_a_link_to_slash_is_refused_as_root(tmp_path: Path) -> None:
    """A root that is a symlink to / is refused like / itself."""
    os.symlink("/", tmp_path / "everything")
    with pytest.raises(ConfigError, match="root"):
        load_settings(None, root=tmp_path / "everything")


def test_config_check_refuses_slash_with_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`syncd config check` on root = "/" exits 2 with one line on stderr."""
    config = tmp_path / "syncd.toml"
    config.write_text('root = "/"\n')
    code = main(["config", "check", "--config", str(config)])
    err = capsys.readouterr().err
    assert (2, 1, True) == (code, len(err.splitlines()), "root" in err)


def test_journal_inside_root_is_allowed(tmp_path: Path) -> None:
    """A journal inside root is a valid config (its files are ignored by name)."""
    settings = load_settings(None, root=tmp_path, state={"journal": tmp_path / ".syncd" / "j.db"})
    assert tmp_path / ".syncd" / "j.db" == settings.journal_path


def _foreign_db(path: Path, version: int, schema: str) -> bytes:
    with contextlib.closing(sqlite3.connect(path, isolation_level=None)) as conn:
        conn.executescript(f"{schema}; PRAGMA user_version = {version};")
    return path.read_bytes()


FOREIGN_SCHEMAS = [
    (0, "CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT)"),
    (1, "CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT)"),
    (2, "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT); INSERT INTO meta VALUES ('a','b')"),
    (2, "CREATE TABLE meta (name TEXT, value TEXT)"),
]


@pytest.mark.parametrize(("version", "schema"), FOREIGN_SCHEMAS)
def test_foreign_sqlite_file_is_refused_and_left_alone(
    tmp_path: Path, version: int, schema: str
) -> None:
    """`[state] journal` naming another program's SQLite database is refused in one line, and
    the file is left byte for byte as it was (no tables added, no WAL switch)."""
    db = tmp_path / "app.db"
    before = _foreign_db(db, version, schema)
    with pytest.raises(JournalError) as info:
        Journal.open(db, "/srv", "https://api.anthropic.com")
    text = str(info.value)
    expected = (True, 1, before)
    assert expected == ("not a syncd journal" in text, len(text.splitlines()), db.read_bytes())


def test_foreign_sqlite_file_is_refused_by_readers(tmp_path: Path) -> None:
    """`status` (a read-only open) says a foreign database is not a syncd journal."""
    db = tmp_path / "app.db"
    _foreign_db(db, 0, FOREIGN_SCHEMAS[0][1])
    with pytest.raises(JournalError, match="not a syncd journal"):
        Journal.open_readonly(db)


def test_rebuild_force_does_not_move_a_foreign_database(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`rebuild --force` refuses a journal path holding another program's database and
    neither moves nor changes it."""
    monkeypatch.setenv("ANTHROPIC_API_KEY", KEY)
    db = tmp_path / "app.db"
    before = _foreign_db(db, 0, FOREIGN_SCHEMAS[0][1])
    (tmp_path / "root").mkdir()
    settings = load_settings(None, root=tmp_path / "root", state={"journal": db},
                             remote={"base_url": "http://127.0.0.1:9"})
    with pytest.raises(JournalError, match="not a syncd journal"):
        rebuild(settings, force=True)
    expected = (before, ["app.db", "app.db.lock", "root"])
    assert expected == (db.read_bytes(), sorted(p.name for p in tmp_path.iterdir()))


OWN = ["data", "data-wal", "data-shm", "data-journal", "data.lock",
       "data.broken-20261124T000000.000000Z", "data.broken-20261124T000000.000000Z-wal"]
USER = ["data.csv", "data-notes.txt", "database.db", "data.lockfile", "sub/data"]


def test_journal_named_data_hides_only_its_own_files(tmp_path: Path) -> None:
    """A journal inside root named `data` ignores its exact files (and the copies rebuild sets
    aside), not the user's data.csv, in both the daemon's and rebuild's rules."""
    root = tmp_path / "root"
    root.mkdir()
    settings = load_settings(None, root=root, state={"journal": root / "data"},
                             remote={"base_url": "http://127.0.0.1:9"})
    client = FilesClient(KEY, "http://127.0.0.1:9")
    with Mirror(settings, client=client) as daemon:
        daemon_rules = daemon.ctx.rules
    rebuild_rules = _rules(settings, root)
    expected = {**dict.fromkeys(OWN, True), **dict.fromkeys(USER, False)}
    assert expected == {p: daemon_rules.ignored(p) for p in OWN + USER}
    assert expected == {p: rebuild_rules.ignored(p) for p in OWN + USER}


def test_manifest_temp_file_is_ignored(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The temp file write_manifest renames into place is ignored by the daemon's rules."""
    root = tmp_path / "root"
    root.mkdir()
    manifest = root / "out" / "manifest.json"
    settings = load_settings(None, root=root, state={"journal": tmp_path / "j.db",
                                                     "manifest": manifest},
                             remote={"base_url": "http://127.0.0.1:9"})
    temps: list[str] = []
    real_replace = os.replace

    def recording_replace(src: Any, dst: Any) -> None:
        temps.append(Path(src).relative_to(root).as_posix())
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", recording_replace)
    write_manifest(manifest, {"version": 1})
    monkeypatch.setattr(os, "replace", real_replace)
    with Mirror(settings, client=FilesClient(KEY, "http://127.0.0.1:9")) as daemon:
        rules = daemon.ctx.rules
    expected = {temps[0]: True, "out/manifest.json": True, "out/other.json": False}
    assert expected == {p: rules.ignored(p) for p in expected}


# -- item 19: values that pass validation and then crash -------------------------------------------


@pytest.mark.parametrize(("section", "line"), [
    ("remote", "timeout_seconds = inf"),
    ("remote", "timeout_seconds = 1e12"),
    ("remote", "timeout_seconds = nan"),
    ("remote", "requests_per_minute = inf"),
    ("remote", "requests_per_minute = 1e9"),
    ("remote", "burst = 1000000000"),
    ("remote", "max_retries = true"),
    ("sync", "shutdown_timeout_seconds = inf"),
    ("sync", "settle_seconds = inf"),
    ("sync", "settle_seconds = 1e9"),
    ("sync", "settle_max_seconds = inf"),
    ("sync", "reconcile_interval_seconds = inf"),
    ("sync", "rescan_interval_seconds = 1e12"),
    ("sync", "workers = true"),
    ("sync", "follow_symlinks = 1"),
    ("sync", "max_delete_fraction = nan"),
    ("sync", "max_missing_fraction = true"),
])
def test_unbounded_or_mistyped_values_are_refused(tmp_path: Path, section: str, line: str) -> None:
    """Infinite, NaN, absurdly large and wrongly typed (true for a number, 1 for a flag) values
    are refused at load, naming the key."""
    config = tmp_path / "syncd.toml"
    config.write_text(f'root = "{tmp_path}"\n[{section}]\n{line}\n')
    with pytest.raises(ConfigError) as info:
        load_settings(config)
    key = line.split(" = ")[0]
    assert (True, 1) == (f"[{section}] {key}" in str(info.value), len(str(info.value).splitlines()))


def test_environment_strings_still_work(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """SYNCD_* variables (always strings) still set numbers and flags."""
    monkeypatch.setenv("SYNCD_SYNC__WORKERS", "8")
    monkeypatch.setenv("SYNCD_SYNC__FOLLOW_SYMLINKS", "true")
    monkeypatch.setenv("SYNCD_REMOTE__TIMEOUT_SECONDS", "30")
    settings = load_settings(None, root=tmp_path)
    expected = (8, True, 30.0)
    assert expected == (settings.sync.workers, settings.sync.follow_symlinks,
                        settings.remote.timeout_seconds)


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-le", "utf-8-sig", "latin-1"])
def test_non_utf8_config_is_one_line_exit_2(
    tmp_path: Path, encoding: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """A config saved as UTF-16, with a BOM, or in Latin-1 exits 2 with one line naming the
    file, not a traceback."""
    config = tmp_path / "syncd.toml"
    config.write_bytes(f'# caf\u00e9\nroot = "{tmp_path}"\n'.encode(encoding))
    code = main(["config", "check", "--config", str(config)])
    err = capsys.readouterr().err
    expected = (2, [f"syncd: config file {config} is not UTF-8 TOML"])
    assert expected == (code, [line.partition(" TOML")[0] + " TOML" for line in err.splitlines()])


def test_key_file_fifo_is_refused_without_blocking(tmp_path: Path) -> None:
    """api_key_file naming a FIFO (no writer) is refused at once, not read forever."""
    fifo = tmp_path / "key"
    os.mkfifo(fifo, 0o600)
    with pytest.raises(ConfigError, match="not a regular file"):
        resolve_api_key(settings_for(tmp_path, api_key_file=fifo))


def test_key_file_dev_zero_is_refused() -> None:
    """api_key_file = /dev/zero is refused (not a regular file), not read without end."""
    settings = load_settings(None, root=Path("/srv/docs"),
                             remote={"api_key_file": Path("/dev/zero")})
    with pytest.raises(ConfigError, match="not a regular file"):
        resolve_api_key(settings)


def test_huge_key_file_is_refused(tmp_path: Path) -> None:
    """A key file over 4 KiB is refused without reading it all and without quoting it."""
    key_file = tmp_path / "key"
    key_file.write_bytes(b"k" * 10_000)
    key_file.chmod(0o600)
    with pytest.raises(ConfigError) as info:
        resolve_api_key(settings_for(tmp_path, api_key_file=key_file))
    assert (True, False) == ("4 KiB" in str(info.value), "kkkk" in str(info.value))


def test_a_log_line_is_one_write_with_its_newline() -> None:
    """Each line reaches the stream in one write (journald and pipes see whole lines, and an
    unbuffered stderr makes one system call of it, not two)."""
    calls: list[str] = []

    class Writes(io.StringIO):
        def write(self, text: str) -> int:
            calls.append(text)
            return super().write(text)

    logs.configure("info", "json", stream=Writes())
    structlog.get_logger("t").info("uploaded", path="a.txt")
    assert (1, True, "a.txt") == (
        len(calls), calls[0].endswith("\n"), json.loads(calls[0])["path"])
