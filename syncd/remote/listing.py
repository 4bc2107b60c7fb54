"""A complete remote listing held compactly: what reconcile needs of a million files.

Reconcile compares the whole listing with the journal. Most listed files are ours, and of those
it needs only two facts: that each is listed, and when it expires. Held as a File object each
(about 0.85 KB with its strings and datetimes), the listing made start-up memory grow with the
workspace. So a :class:`Listing` keeps, per file, its id (bytes in one shared buffer), its slot
in an open-addressing table over the ids, its expiry (one array of floats) and a "listed" byte:
some 60 bytes. The ids the journal knows are entered before the listing begins ("expected");
only the files listed that were not expected (foreign files, our lost uploads) keep their whole
:class:`~syncd.remote.files.RemoteFile`, for intent matching and adoption.

An expected file that turns out not to be ours after all (its row went away while the listing
was paged) has no details, so reconcile counts it as foreign: it is never touched
(invariant 1).
"""

from __future__ import annotations

import math
from array import array
from collections.abc import Iterable, Iterator

from syncd.remote.files import RemoteFile

_MIN_SLOTS = 16


class Listing:
    """Every file of a listing by id, compactly; a file listed twice counts once (the last
    sighting wins, as in a dict). Build it with :meth:`add` or :meth:`of`.

    ``expected``: the ids the journal knows before the listing begins. They are entered first
    (indices ``0 .. len(expected) - 1``) and stay "not listed" until a page shows them; files
    listed among them keep no details.
    """

    def __init__(self, expected: Iterable[str] = ()) -> None:
        self._ids = bytearray()  # every id, back to back
        self._ends = array("I")  # where id i ends in _ids
        self._hashes = array("q")  # id i's hash (to grow the table without rehashing)
        self._expires = array("d")  # id i's expiry (NaN: never)
        self._listed = bytearray()  # 1 once id i was listed
        self._slots = array("I", bytes(4 * _MIN_SLOTS))  # index + 1 (0: empty)
        self._details: dict[int, RemoteFile] = {}  # index -> file, for files not expected
        self.sightings = 0  # files listed, duplicates included
        for file_id in expected:
            self._entry(file_id)
        self._expected = len(self._ends)

    @classmethod
    def of(cls, files: Iterable[RemoteFile], expected: Iterable[str] = ()) -> Listing:
        """A listing of ``files`` (consumed once, as they come)."""
        listing = cls(expected)
        for f in files:
            listing.add(f)
        return listing

    def __len__(self) -> int:
        """Entries, listed or only expected (the size of a mark per entry, see :meth:`marks`)."""
        return len(self._ends)

    def add(self, f: RemoteFile) -> None:
        """Record one listed file."""
        self.sightings += 1
        index = self._entry(f.id)
        self._listed[index] = 1
        self._expires[index] = math.nan if f.expires_at is None else f.expires_at.timestamp()
        if index >= self._expected:
            self._details[index] = f

    def marks(self, unlisted: int) -> bytearray:
        """A byte per entry: 0 for each listed file, ``unlisted`` for each expected one that
        was not listed."""
        return self._listed.translate(bytes([unlisted, 0]) + bytes(254))

    def index(self, file_id: str) -> int:
        """The index of ``file_id`` in this listing, or -1 if it is not listed."""
        index = self._find(file_id)[1]
        return index if index >= 0 and self._listed[index] else -1

    def expires_at(self, index: int) -> float | None:
        """When the file at ``index`` expires (None: never)."""
        value = self._expires[index]
        return None if math.isnan(value) else value

    def details(self) -> Iterator[tuple[int, RemoteFile]]:
        """(index, file) of the files kept whole, in the order first listed."""
        return iter(self._details.items())

    def _entry(self, file_id: str) -> int:
        """The index of ``file_id``, entered (not listed) if new."""
        slot, index = self._find(file_id)
        if index >= 0:
            return index
        index = len(self._ends)
        self._ids += file_id.encode()
        self._ends.append(len(self._ids))
        self._hashes.append(hash(file_id) or 1)
        self._expires.append(math.nan)
        self._listed.append(0)
        self._slots[slot] = index + 1
        if 2 * len(self._ends) > len(self._slots):
            self._grow()
        return index

    def _find(self, file_id: str) -> tuple[int, int]:
        """(slot, index) of ``file_id``; index -1 and the free slot where it would go if absent.

        Linear probing; a slot whose hash matches is confirmed against the id's bytes."""
        h = hash(file_id) or 1  # 0 marks an empty slot
        slots, hashes = self._slots, self._hashes
        mask = len(slots) - 1
        i = h & mask
        while v := slots[i]:
            if hashes[v - 1] == h:
                ends = self._ends
                start = ends[v - 2] if v > 1 else 0
                if self._ids[start:ends[v - 1]] == file_id.encode():
                    return i, v - 1
            i = (i + 1) & mask
        return i, -1

    def _grow(self) -> None:
        slots = array("I", bytes(8 * len(self._slots)))
        mask = len(slots) - 1
        for index, h in enumerate(self._hashes):
            i = h & mask
            while slots[i] != 0:
                i = (i + 1) & mask
            slots[i] = index + 1
        self._slots = slots
