"""Remote filenames: the service's rules, and the reversible encoding of relative paths.

The Files API has no folders and refuses ``< > : " | ? * \\ /``, code points 0-31 and names over
255 characters, so every local file gets one flat remote name. The mapping:

1. Take the path relative to the synced folder, ``/``-separated. With a prefix (several folders
   in one workspace), the path is ``PREFIX/PATH``, as if the prefix were leading directories.
2. Take the path's bytes exactly as they are on disk.
3. Write each byte that is ``%``, one of ``< > : " | ? * \\ /``, a control byte (0-31, 127) or part
   of an invalid UTF-8 sequence as ``%XX``: two UPPERCASE hex digits. Every other byte belongs to
   a valid UTF-8 character, written as that character.
4. If the result is over 255 characters, it is shortened: as much of its start as fits (never
   cutting a ``%XX`` or a character), then ``%~``, then the first 16 hex digits of the SHA-256 of
   the full name (as UTF-8), then the file's extension (encoded, from the last dot of the file's
   own name; a dot file such as ``.bashrc`` has none) if that is at most 16 characters.
   A shortened name cannot be decoded; the journal keeps the full path.

Decoding reverses step 3. A name decodes only if encoding the result gives back the same name,
so each path has exactly one remote name and foreign names (uploaded by other programs, or
written with lowercase hex or unneeded escapes) are recognised as not ours. ``%~`` never occurs
in an encoded name, so a shortened name can never be mistaken for an encoded one. Without a
prefix, a foreign file whose name happens to be canonical (``report.pdf``) looks like ours: give
each folder a prefix when the workspace is shared. A prefix may encode to at most 97 characters,
so a shortened name still starts with the whole prefix.

Examples::

    docs/a.pdf                          ->  docs%2Fa.pdf
    Reports/Q3: résumé.pdf  (prefix "team/notes")
                                        ->  team%2Fnotes%2FReports%2FQ3%3A résumé.pdf
    b"caf\\xe9 100%.txt"  (Latin-1 bytes) ->  caf%E9 100%25.txt
"""

from __future__ import annotations

import functools
import hashlib
import os
import posixpath
import re

MAX_NAME_CHARS = 255
FORBIDDEN_CHARS = frozenset('<>:"|?*\\/')


# Any character filename_problem() objects to: names without one skip its loop.
_REFUSED_CHAR = re.compile("[" + re.escape("".join(sorted(FORBIDDEN_CHARS)))
                           + "\x00-\x1f\ud800-\udfff]")


def filename_problem(name: str) -> str | None:
    """Why the service would refuse ``name`` as a filename, or None if it is acceptable."""
    if not name:
        return "filename must not be empty"
    if len(name) > MAX_NAME_CHARS:
        return f"filename is {len(name)} characters; the limit is {MAX_NAME_CHARS}"
    if _REFUSED_CHAR.search(name) is None:
        return None
    for ch in name:
        if ch in FORBIDDEN_CHARS:
            return f"filename must not contain {ch!r}"
        if ord(ch) < 32:
            return f"filename must not contain control character U+{ord(ch):04X}"
        if 0xD800 <= ord(ch) <= 0xDFFF:
            return "filename must be valid Unicode (it holds an unpaired surrogate)"
    return None


MAX_PREFIX_CHARS = 100
SHORT_MARK = "%~"
_HASH_CHARS = 16
_MAX_EXT_CHARS = 16
_ESCAPED_ASCII = frozenset(FORBIDDEN_CHARS | {"%"})
_ESCAPE = re.compile(r"%([0-9A-Fa-f]{2})")
_SHORTENED = re.compile(re.escape(SHORT_MARK) + f"[0-9a-f]{{{_HASH_CHARS}}}")


def encode_name(rel_path: str, prefix: str = "") -> str:
    """The remote filename for ``rel_path`` (as ``os.fsdecode`` gives it) under ``prefix``.

    Raises ValueError for an empty path, a bad prefix, or a string no file name can hold
    (a surrogate that ``os.fsencode`` cannot turn back into a byte).
    """
    if not rel_path:
        raise ValueError("cannot encode an empty path")
    full = _prefix_head(prefix) + _escaped(rel_path)
    if len(full) <= MAX_NAME_CHARS:
        return full
    tokens = _prefix_tokens(prefix) + _tokens(rel_path)
    return _shorten(full, tokens, "".join(_tokens(_extension(rel_path))))


def decode_name(remote_name: str, prefix: str = "") -> str | None:
    """The relative path whose ``encode_name(path, prefix)`` is exactly ``remote_name``, else None.

    None means the name is not ours: another prefix, a foreign upload, a shortened name, or a
    non-canonical spelling. Raises ValueError for a bad prefix.
    """
    head = _prefix_head(prefix)
    if not remote_name.startswith(head):
        return None
    raw = _unescape(remote_name[len(head) :])
    if not raw:
        return None
    path = os.fsdecode(raw)
    # Only the canonical spelling decodes: this keeps the mapping one-to-one.
    return path if encode_name(path, prefix) == remote_name else None


def is_shortened(remote_name: str) -> bool:
    """Whether ``remote_name`` looks like the shortened form of an over-long name."""
    return _SHORTENED.search(remote_name) is not None


def prefix_problem(prefix: str) -> str | None:
    """Why ``prefix`` cannot namespace a folder's remote names, or None if it can (empty can)."""
    stripped = prefix.strip("/")
    if any(0xD800 <= ord(ch) <= 0xDFFF for ch in stripped):
        return "prefix must be valid Unicode (it holds an unpaired surrogate)"
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in stripped):
        return "prefix must not contain control characters"
    size = len("".join(_tokens(stripped))) if stripped else 0
    # Bounded so that a shortened name still starts with the whole prefix.
    if size + 3 > MAX_PREFIX_CHARS:
        return f"prefix encodes to {size} characters; the limit is {MAX_PREFIX_CHARS - 3}"
    return None


# Step 3 as one str.translate: each character to escape (an ASCII one, or an invalid UTF-8 byte
# as surrogateescape spells it) maps to its %XX; every other character stays.
_ESCAPES = {
    **{code: f"%{code:02X}" for code in (*range(32), 127, *map(ord, _ESCAPED_ASCII))},
    **{code: f"%{code - 0xDC00:02X}" for code in range(0xDC80, 0xDD00)},
}


def _escaped(path: str) -> str:
    """``"".join(_tokens(path))``, at C speed."""
    return os.fsencode(path).decode("utf-8", "surrogateescape").translate(_ESCAPES)


def _tokens(path: str) -> list[str]:
    """The encoded pieces of ``path``: one character or one ``%XX`` escape each (what a
    shortened name may be cut between); ``"".join`` of them is :func:`_escaped`."""
    # Invalid UTF-8 bytes come back as U+DC80..U+DCFF, which is how _ESCAPES spots them.
    text = os.fsencode(path).decode("utf-8", "surrogateescape")
    return [_ESCAPES.get(ord(ch), ch) for ch in text]


@functools.lru_cache(maxsize=16)
def _prefix_head(prefix: str) -> str:
    """``"".join(_prefix_tokens(prefix))``, worked out once per prefix."""
    return "".join(_prefix_tokens(prefix))


def _prefix_tokens(prefix: str) -> list[str]:
    """The encoded pieces that start every name under ``prefix``: itself and a ``/``."""
    problem = prefix_problem(prefix)
    if problem is not None:
        raise ValueError(problem)
    stripped = prefix.strip("/")
    return [*_tokens(stripped), "%2F"] if stripped else []


def _unescape(encoded: str) -> bytes | None:
    """The bytes ``encoded`` spells, or None if it holds a ``%`` that starts no escape."""
    if "%" in _ESCAPE.sub("", encoded):
        return None
    out = bytearray()
    pos = 0
    for match in _ESCAPE.finditer(encoded):
        # surrogatepass: a foreign name may hold anything; re-encoding will reject it.
        out += encoded[pos : match.start()].encode("utf-8", "surrogatepass")
        out.append(int(match.group(1), 16))
        pos = match.end()
    out += encoded[pos:].encode("utf-8", "surrogatepass")
    return bytes(out)


def _extension(rel_path: str) -> str:
    """The file's extension, with its dot; ``""`` for none or a dot file like ``.bashrc``."""
    return posixpath.splitext(posixpath.basename(rel_path))[1]


def _shorten(full: str, tokens: list[str], ext: str) -> str:
    """A deterministic name of at most 255 characters standing for the over-long ``full``."""
    digest = hashlib.sha256(full.encode("utf-8")).hexdigest()[:_HASH_CHARS]
    tail = SHORT_MARK + digest + (ext if len(ext) <= _MAX_EXT_CHARS else "")
    budget = MAX_NAME_CHARS - len(tail)
    head: list[str] = []
    for token in tokens:
        budget -= len(token)
        if budget < 0:
            break
        head.append(token)
    return "".join(head) + tail
