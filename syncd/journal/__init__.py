"""The journal: what syncd knows about each path and what it owes the remote, in SQLite.

One row per local path maps it to the remote file that holds its content (``Synced``) and to the
latest failure for its current version (``Failure``). Beside the rows: upload intents, written
before an upload starts so that reconcile can adopt or delete what a crash left behind, and
tombstones, remote files this journal created and still has to delete.

The database runs in WAL mode so ``syncd status`` can read while the daemon writes; one daemon
per journal is enforced with ``flock`` on ``<journal>.lock``. Every public write is one
transaction. The journal and its lock are private (0600) whatever the umask.

The parts, one concern each:

- ``core``: ``Journal``, opening it (for writing, or read-only beside a daemon)
- ``store``: the one connection behind a mutex, transactions, sqlite3 errors translated
- ``schema``: the tables, migrations (``user_version``), refusing another program's database
- ``rows``, ``intents``, ``tombstones``: the three tables of what syncd knows and owes
- ``meta``: the key/value table and binding a journal to one root and one remote
- ``counts``: status totals kept by temporary triggers
- ``lock``, ``permissions``: the lock file, and 0600 for the journal and its side files
"""

from syncd.journal.core import Journal
from syncd.journal.lock import LOCK_SUFFIX, lock_holder
from syncd.journal.permissions import PRIVATE, SIDE_FILES
from syncd.journal.rows import CHUNK_ROWS, SCAN_CHUNK_ROWS, ScanRow
from syncd.journal.schema import MIGRATIONS, NOT_A_JOURNAL, SCHEMA_VERSION
from syncd.journal.store import BUSY_TIMEOUT_MS

__all__ = [
    "BUSY_TIMEOUT_MS",
    "CHUNK_ROWS",
    "LOCK_SUFFIX",
    "MIGRATIONS",
    "NOT_A_JOURNAL",
    "PRIVATE",
    "SCAN_CHUNK_ROWS",
    "SCHEMA_VERSION",
    "SIDE_FILES",
    "Journal",
    "ScanRow",
    "lock_holder",
]
