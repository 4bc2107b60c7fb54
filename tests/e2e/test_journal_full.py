"""A journal that cannot be written (read-only): the daemon pauses, loses nothing, resumes."""

from __future__ import annotations

from pathlib import Path

import pytest

from syncd.journal import Journal
from tests.syncenv import bench, wait_until

pytestmark = pytest.mark.timeout(120)


def set_read_only(journal: Journal, on: bool) -> None:
    """SQLite's query_only: every write then fails with SQLITE_READONLY, as on a read-only disk."""
    with journal._mutex:
        assert journal._conn is not None
        journal._conn.execute(f"PRAGMA query_only = {int(on)}")


def test_unwritable_journal_pauses_then_resumes_without_loss(tmp_path: Path) -> None:
    """While the journal cannot be written nothing is uploaded; once it can, everything syncs."""
    with bench(tmp_path) as b:
        b.write("before.txt", b"synced before the disk filled")
        b.sync_once()
        with b.running() as daemon:
            set_read_only(daemon.journal, True)
            for i in range(5):
                b.write(f"during-{i}.txt", b"written while the disk was full %d" % i)
            wait_until(lambda: daemon.suspended is not None, what="daemon paused")
            assert "read-only" in (daemon.suspended or "")
            uploads_while_full = b.emu.stats()["upload"]
            set_read_only(daemon.journal, False)
            wait_until(b.converged, what="resumed and converged")
        assert 1 == uploads_while_full  # only the earlier sync's upload
        b.assert_converged()
