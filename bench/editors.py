"""How editors save a file, replayed as the same sequence of file operations.

Each function rewrites ``path`` with ``data`` the way the named program does (the temporaries it
creates, renames and deletes around the real write), so the bench needs none of them installed.
``vim_real`` runs the vim binary itself when there is one.
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path


def _write(path: Path, data: bytes) -> None:
    with open(path, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())


def vim(path: Path, data: bytes) -> None:
    """vim 9 with defaults (backupcopy=auto choosing rename, writebackup): swap file while
    editing, the ``4913`` probe, the original renamed to ``name~``, a new file written, the
    backup removed, the swap file removed on quit."""
    swap = path.with_name(f".{path.name}.swp")
    _write(swap, b"b0VIM 9.0" + bytes(4087))
    probe = path.with_name("4913")
    fd = os.open(probe, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
    os.close(fd)
    probe.unlink()
    backup = path.with_name(path.name + "~")
    os.rename(path, backup)
    _write(path, data)
    backup.unlink()
    swap.unlink()


def emacs(path: Path, data: bytes) -> None:
    """emacs: the lock symlink ``.#name``, a first-save backup ``name~`` by rename, a new file
    written, the lock removed."""
    lock = path.with_name(f".#{path.name}")
    os.symlink(f"user@host.{os.getpid()}:1700000000", lock)
    backup = path.with_name(path.name + "~")
    os.rename(path, backup)
    _write(path, data)
    lock.unlink()


def gedit(path: Path, data: bytes) -> None:
    """GNOME (gedit) atomic save: write ``.goutputstream-XXXXXX``, rename it over the file."""
    tmp = path.with_name(".goutputstream-" + secrets.token_hex(3).upper())
    _write(tmp, data)
    os.rename(tmp, path)


def sed_inplace(path: Path, data: bytes) -> None:
    """``sed -i``: the real sed writes ``sedXXXXXX`` beside the file and renames it over."""
    old = path.read_bytes()
    if shutil.which("sed") is None or b"\n" not in old:
        tmp = path.with_name("sed" + secrets.token_hex(3))
        _write(tmp, data)
        os.rename(tmp, path)
        return
    first = old.split(b"\n", 1)[0].decode()
    new_first = data.split(b"\n", 1)[0].decode()
    # Replace the first line: sed's output is then exactly `data` when only it differs.
    script = f"1s/.*/{new_first}/"
    assert first != new_first and "/" not in new_first
    subprocess.run(["sed", "-i", script, str(path)], check=True, timeout=30)


def libreoffice(path: Path, data: bytes) -> None:
    """LibreOffice: the lock file ``.~lock.name#`` while open; save writes a ``luXXXX.tmp``
    beside the file, copies it over the original (same inode), deletes it; the lock goes on
    close."""
    lock = path.with_name(f".~lock.{path.name}#")
    _write(lock, b",user,host,24.11.2026 07:00,file:///home/user/.config/libreoffice/4;")
    tmp = path.with_name(f"lu{secrets.token_hex(4)}.tmp")
    _write(tmp, data)
    shutil.copyfile(tmp, path)
    tmp.unlink()
    lock.unlink()


def vim_real(path: Path, data: bytes) -> None:
    """The vim binary (``vim -es``) replacing the first line: swap files, then an in-place
    write as this build chooses."""
    new_first = data.split(b"\n", 1)[0].decode()
    subprocess.run(
        ["vim", "-N", "-u", "NONE", "-i", "NONE", "-es", "-c", "set swapfile updatecount=1",
         "-c", f"1s/.*/{new_first}/", "-c", "wq", str(path)],
        check=True, timeout=30, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
    )


EDITORS: dict[str, Callable[[Path, bytes], None]] = {
    "vim (swap, 4913, rename)": vim,
    "emacs (lock, backup)": emacs,
    "gedit (rename over)": gedit,
    "sed -i": sed_inplace,
    "LibreOffice (lock, copy)": libreoffice,
}
if shutil.which("vim"):
    EDITORS["vim binary (-es)"] = vim_real
