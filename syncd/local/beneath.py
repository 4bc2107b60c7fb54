"""``openat2(2)`` with ``RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS``: a relative path opened under a
directory fd in ONE system call, the kernel refusing any symlink on the way and any escape from
that directory, even while the tree is renamed under it.

:mod:`syncd.local.fs` uses it to reach a file's directory instead of opening each directory in
turn (two system calls per level). Where the kernel (Linux before 5.6) or a seccomp filter
refuses it, :func:`available` is False and fs walks one component at a time as before; both
give the same answers.
"""

from __future__ import annotations

import ctypes
import errno
import os
import sys
from collections.abc import Callable

_SYS_OPENAT2 = 437  # the same number on every Linux architecture (a syscall added after 5.1)
_RESOLVE_NO_MAGICLINKS = 0x02
_RESOLVE_NO_SYMLINKS = 0x04
_RESOLVE_BENEATH = 0x08
_RESOLVE = _RESOLVE_BENEATH | _RESOLVE_NO_SYMLINKS | _RESOLVE_NO_MAGICLINKS
# The kernel or a sandbox without openat2, or a race the kernel would not resolve safely.
FALL_BACK = frozenset({errno.ENOSYS, errno.EPERM, errno.EAGAIN, errno.EINVAL, errno.E2BIG})


class _OpenHow(ctypes.Structure):
    _fields_ = [("flags", ctypes.c_uint64), ("mode", ctypes.c_uint64),
                ("resolve", ctypes.c_uint64)]


def _load() -> Callable[[int, bytes, int], int] | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        syscall = ctypes.CDLL(None, use_errno=True).syscall
    except (OSError, AttributeError):
        return None
    syscall.restype = ctypes.c_long
    syscall.argtypes = [ctypes.c_long, ctypes.c_int, ctypes.c_char_p, ctypes.c_void_p,
                        ctypes.c_size_t]
    size = ctypes.sizeof(_OpenHow)

    def openat2(dir_fd: int, path: bytes, flags: int) -> int:
        how = _OpenHow(flags, 0, _RESOLVE)
        fd = int(syscall(_SYS_OPENAT2, dir_fd, path, ctypes.byref(how), size))
        if fd < 0:
            code = ctypes.get_errno()
            raise OSError(code, os.strerror(code))
        return fd

    return openat2


def _probe(openat2: Callable[[int, bytes, int], int] | None) -> bool:
    """True when ``openat2`` works here (the syscall exists and no filter refuses it)."""
    if openat2 is None:
        return False
    top = os.open("/", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.close(openat2(top, b".", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC))
    except OSError:
        return False
    finally:
        os.close(top)
    return True


_openat2 = _load()
_available = _probe(_openat2)


def available() -> bool:
    """True when :func:`open_beneath` can be used on this system."""
    return _available


def open_beneath(dir_fd: int, path: bytes, flags: int) -> int:
    """Open ``path`` relative to ``dir_fd``, never through a symlink or out of ``dir_fd``.

    Raises OSError as ``openat`` would (ELOOP for a symlink on the way, EXDEV for an escape);
    an errno in FALL_BACK means "walk instead". Only when :func:`available`.
    """
    if _openat2 is None:
        raise OSError(errno.ENOSYS, "openat2 is not available")
    return _openat2(dir_fd, path, flags)
