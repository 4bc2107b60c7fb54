"""Several folders in one process: one Mirror each, on one request budget.

Each folder of a config (``[[folder]]`` tables) gets its own Mirror: its own journal, client,
workspace binding, queue and threads. What they share is the budget, taken in turns
(:mod:`syncd.remote.turns`: live edits first across folders, then the folders round robin),
and one metrics registry with a ``folder`` label. The one-folder form (``root = ...``) is one
Mirror, built as before.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import structlog

from syncd.config import Settings
from syncd.credentials import resolve_api_key
from syncd.engine.mirror import Mirror, Options
from syncd.engine.wiring import make_client, make_pacer
from syncd.metrics import Metrics
from syncd.remote.turns import Turns

log = structlog.get_logger("syncd.daemon")


@contextlib.contextmanager
def open_mirrors(settings: Settings, options: Options | None = None) -> Iterator[list[Mirror]]:
    """One Mirror per folder of the config. Several folders share one pacer (one request
    budget, taken in turns: live edits first, then the folders round robin, see
    :mod:`syncd.remote.turns`), one metrics registry (a ``folder`` label) and the process; each
    has its own journal, client and workspace binding. All are closed on leaving."""
    folders = settings.folders()
    if not settings.folder:
        with Mirror(settings, options) as one:
            yield [one]
        return
    metrics = Metrics()
    pacer = make_pacer(settings, resolve_api_key(settings)[0])
    turns = Turns(pacer)
    with contextlib.ExitStack() as stack:
        stack.callback(pacer.close)  # after every mirror (and its client) closed
        mirrors = []
        for name, folder in folders:
            tally = metrics.for_folder(name)
            client = make_client(folder, tally, turns.folder(name))
            mirrors.append(stack.enter_context(
                Mirror(folder, options, client=client, metrics=tally, name=name)))
            log.info("folder", folder=name, root=str(folder.root_dir),
                     name_prefix=folder.remote.name_prefix)
        yield mirrors
