"""openat2 under root: the answers syncd.local.fs relies on when the kernel has it."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest

from syncd.local import beneath
from syncd.local import fs as localfs


@pytest.mark.skipif(not beneath.available(), reason="this kernel or sandbox has no openat2")
def test_openat2_refuses_links_and_escapes_where_the_walk_would(tmp_path: Path) -> None:
    """open_beneath opens a directory under root; a link as the last name is no directory
    (ENOTDIR), a path through one is refused (ELOOP), one climbing out too (EXDEV): answers fs
    counts as "no eligible file"."""
    root = tmp_path / "root"
    (root / "d").mkdir(parents=True)
    (tmp_path / "out" / "sub").mkdir(parents=True)
    (root / "x").symlink_to(tmp_path / "out")
    top = os.open(root, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.close(beneath.open_beneath(top, b"d", localfs._DIR))
        codes = []
        for path in (b"x", b"x/sub", b"../out", b"d/../../out"):
            with pytest.raises(OSError) as caught:
                beneath.open_beneath(top, path, localfs._DIR)
            codes.append(caught.value.errno)
    finally:
        os.close(top)
    assert [errno.ENOTDIR, errno.ELOOP, errno.EXDEV, errno.EXDEV] == codes
    assert all(code in localfs._NOT_THERE for code in codes)
