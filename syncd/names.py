"""Remote filenames: the service's rules, and the reversible encoding of relative paths."""

from __future__ import annotations

MAX_NAME_CHARS = 255
FORBIDDEN_CHARS = frozenset('<>:"|?*\\/')


def filename_problem(name: str) -> str | None:
    """Why the service would refuse ``name`` as a filename, or None if it is acceptable."""
    if not name:
        return "filename must not be empty"
    if len(name) > MAX_NAME_CHARS:
        return f"filename is {len(name)} characters; the limit is {MAX_NAME_CHARS}"
    for ch in name:
        if ch in FORBIDDEN_CHARS:
            return f"filename must not contain {ch!r}"
        if ord(ch) < 32:
            return f"filename must not contain control character U+{ord(ch):04X}"
        if 0xD800 <= ord(ch) <= 0xDFFF:
            return "filename must be valid Unicode (it holds an unpaired surrogate)"
    return None
