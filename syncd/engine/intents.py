"""Lost uploads found again: which remote files are copies of open upload intents. Pure.

An upload whose answer was lost (a crash, a timeout, a retried POST) leaves an intent. A listed
file the journal does not track is that upload's copy when it has the intent's remote name and
size and was created after the intent started, give or take :func:`slack` (``CLOCK_SKEW``, plus
however far the service's clock is learnt to lag ours). Per path the newest copy is adopted
when no later upload has been committed; every other copy is an orphan, to delete.

The newest pages are enough to find every copy (:class:`Window`): a copy is created after the
oldest intent's start less the slack, so once the listing, newest first, reaches a page that
ends older than that, no later page can hold one. The order is not documented (CONTRACT.md),
so the window checks it on every file it reads: one ``created_at`` newer than the file before
it and the window says so; the caller then pages on to the end (a full pass). What the window
did not read is unknown, so only what it found counts (:func:`window_matches`): an intent whose
copy it did not find stays open for the next complete listing, which alone proves a copy
absent (invariant 9); nothing else (copies missing, foreign files) is decided from it.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from syncd.model import FileRow, Intent
from syncd.remote.files import RemoteFile

CLOCK_SKEW = 60.0  # seconds our clock may run ahead of the service's created_at
# A learnt skew widens the window by at most this: a service claiming a date years back must not
# make every same-named, same-sized foreign file match an intent.
MAX_SKEW = 3600.0
INTENT_GRACE = 30.0  # seconds an upload must be old before a listing without its copy ends it
# The newest pages hold their File objects whole (~0.85 KB each): deeper than this, the pass
# goes on as a full one, whose listing is compact.
WINDOW_MAX_PAGES = 20

Pair = tuple[Intent, RemoteFile]


def slack(clock_skew: float) -> float:
    """Seconds before an intent's start its copy may be stamped, given ``clock_skew`` (the
    service's clock minus ours): CLOCK_SKEW, plus how far the service lags (at most MAX_SKEW)."""
    return CLOCK_SKEW + min(max(0.0, -clock_skew), MAX_SKEW)


@dataclass(frozen=True)
class Matches:
    """Lost uploads paired with their intents."""

    adopt: tuple[Pair, ...] = ()
    orphans: tuple[Pair, ...] = ()  # our lost uploads, to delete
    spent: tuple[Intent, ...] = ()  # intents resolved: their copies found (or proven absent)


def match_intents(
    unknown: Sequence[RemoteFile], intents: Iterable[Intent], rows: Mapping[str, FileRow],
    listed_since: float, held: Collection[str], slack: float, complete: bool = True,
) -> Matches:
    """Pair lost uploads with their intents, per path: adopt at most one, delete the rest.

    ``unknown``: listed files the journal does not account for. ``complete``: the listing is
    proven complete, so an intent with no copy in it (and INTENT_GRACE old) is spent too;
    otherwise such an intent stays open.
    """
    adopt: list[Pair] = []
    orphans: list[Pair] = []
    spent: list[Intent] = []
    taken: set[str] = set()
    by_path: dict[str, list[Intent]] = {}
    for intent in intents:
        if intent.path not in held and intent.started_at < listed_since:
            by_path.setdefault(intent.path, []).append(intent)
    for path, mine in by_path.items():
        matches: list[Pair] = []
        # Newest intent first: each copy pairs with the latest upload it can be from, so the
        # copy adopted is checked against the version that was actually sent.
        for intent in sorted(mine, key=lambda i: i.started_at, reverse=True):
            for f in unknown:
                if f.id not in taken and _matches(intent, f, slack):
                    taken.add(f.id)
                    matches.append((intent, f))
        if not matches:
            # A listing can lie "complete and empty" (found by the simulation: a restart during
            # such a spell dropped the intents, and their copies stayed forever as if foreign).
            # No copy found is trusted only once the upload is INTENT_GRACE old at listing time.
            if complete:
                spent.extend(i for i in mine if i.started_at < listed_since - INTENT_GRACE)
            continue
        spent.extend(mine)
        matches.sort(key=lambda m: m[1].created_at)
        newest = matches[-1]
        if _adoptable(newest[0], rows.get(path)):
            adopt.append(newest)
            matches = matches[:-1]
        orphans.extend(matches)
    return Matches(tuple(adopt), tuple(orphans), tuple(spent))


def _matches(intent: Intent, remote: RemoteFile, slack: float) -> bool:
    """Same name, same size, created after the intent started (``slack`` seconds of doubt)."""
    created = remote.created_at.timestamp()
    return (
        remote.filename == intent.remote_name
        and remote.size_bytes == intent.size
        and created >= intent.started_at - slack
    )


def _adoptable(intent: Intent, row: FileRow | None) -> bool:
    """A lost upload can stand in for the path only if no later upload has been committed."""
    return row is None or row.synced is None or row.synced.synced_at < intent.started_at


@dataclass
class Window:
    """The newest pages of a listing, read until they hold every copy the intents can have.

    ``oldest_intent``: the start of the oldest open intent. Feed each page to :meth:`read`
    with the slack of the moment (the clock skew is learnt as answers arrive); it answers True
    once the pages read are enough. ``ordered`` turns False at the first ``created_at`` newer
    than the one before it (across pages too): the listing is not newest first, and no number
    of its pages is enough.
    """

    oldest_intent: float
    slack: float = CLOCK_SKEW  # the slack the last page was judged with
    oldest: float = math.inf  # created_at of the last file read
    ordered: bool = True
    pages: int = 0
    files: list[RemoteFile] = field(default_factory=list)

    @classmethod
    def of(cls, intents: Iterable[Intent]) -> Window:
        """A window for ``intents`` (at least one)."""
        return cls(min(i.started_at for i in intents))

    @property
    def since(self) -> float:
        """No copy of an intent was created before this."""
        return self.oldest_intent - self.slack

    def read(self, page: Sequence[RemoteFile], slack: float) -> bool:
        """Take one page; True once every later page is older than :attr:`since`."""
        self.pages += 1
        self.slack = slack
        for f in page:
            created = f.created_at.timestamp()
            if created > self.oldest:
                self.ordered = False
            self.oldest = created
        self.files.extend(page)
        return self.ordered and self.oldest < self.since


def window_matches(
    window: Window, ours: Collection[str], intents: Iterable[Intent],
    rows: Mapping[str, FileRow], listed_since: float, held: Collection[str],
) -> Matches:
    """The intents resolved by a window that was enough (:meth:`Window.read` said so).

    ``ours``: ids of the window's files the journal accounts for (its copies, its tombstones,
    deletions just sent). Session outputs are never ours. Intents without a copy in the
    window stay open: the window is not a complete listing.
    """
    unknown = [f for f in window.files if f.id not in ours and not f.scoped]
    return match_intents(unknown, intents, rows, listed_since, held, window.slack,
                         complete=False)
