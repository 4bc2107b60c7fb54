"""How a mirrored file is used by an application: a Messages content block or an agent resource.

Pure functions, no I/O. The shapes follow the official SDK (``anthropic`` 2.14.0):

- ``document``: ``DocumentBlockParam`` with a ``FileDocumentSourceParam`` source, for PDF and
  plain text, the only document types the Messages API reads;
- ``image``: ``ImageBlockParam`` with a ``FileImageSourceParam`` source, for JPEG, PNG, GIF, WebP;
- ``container_upload``: ``ContainerUploadBlockParam``, for everything else (the code execution
  tool's container receives the file);
- a Managed Agents session resource: ``BetaManagedAgentsFileResourceParams``.
"""

from __future__ import annotations

from typing import Any

DOCUMENT = "document"
IMAGE = "image"
CONTAINER_UPLOAD = "container_upload"

DOCUMENT_TYPES = frozenset({"application/pdf", "text/plain"})
IMAGE_TYPES = frozenset({"image/jpeg", "image/png", "image/gif", "image/webp"})


def bare_type(mime_type: str) -> str:
    """The media type alone, lower case: ``Text/Plain; charset=utf-8`` -> ``text/plain``."""
    return mime_type.split(";", 1)[0].strip().lower()


def block_type(mime_type: str) -> str:
    """The Messages content block type a file of this MIME type can be used as."""
    bare = bare_type(mime_type)
    if bare in DOCUMENT_TYPES:
        return DOCUMENT
    if bare in IMAGE_TYPES:
        return IMAGE
    return CONTAINER_UPLOAD


def content_block(file_id: str, mime_type: str, path: str) -> dict[str, Any]:
    """A ready-to-send Messages content block referencing ``file_id``.

    A document carries its relative ``path`` as ``title``; a path that is not valid UTF-8 (lone
    surrogates from ``os.fsdecode``) is given with its undecodable bytes as ``\\xNN`` escapes,
    so the block is always valid JSON text. Images and container uploads have no title field.
    """
    kind = block_type(mime_type)
    if kind == CONTAINER_UPLOAD:
        return {"type": CONTAINER_UPLOAD, "file_id": file_id}
    block: dict[str, Any] = {"type": kind, "source": {"type": "file", "file_id": file_id}}
    if kind == DOCUMENT:
        block["title"] = printable_utf8(path)
    return block


def resource(file_id: str, path: str, mount_name: str) -> dict[str, str]:
    """A Managed Agents ``file`` resource mounting ``file_id`` at ``/mnt/<mount_name>/<path>``.

    Raises ValueError when ``mount_name`` is not usable (see :func:`mount_name_problem`) or when
    ``path`` cannot be represented (not valid UTF-8, or not a plain relative path): such a file
    cannot be mounted under its own name, and callers skip it.
    """
    problem = mount_name_problem(mount_name)
    if problem:
        raise ValueError(f"mount name {mount_name!r} {problem}")
    if not is_utf8(path):
        raise ValueError(f"path {printable_utf8(path)!r} is not valid UTF-8")
    if any(part in ("", ".", "..") for part in path.split("/")):
        raise ValueError(f"path {path!r} is not a plain relative path")
    return {"type": "file", "file_id": file_id, "mount_path": f"/mnt/{mount_name}/{path}"}


def mount_name_problem(name: str) -> str | None:
    """Why ``name`` cannot be the folder under ``/mnt``, as a phrase (None when it can)."""
    if not name:
        return "is empty"
    if name in (".", ".."):
        return "cannot be '.' or '..'"
    if "/" in name:
        return "contains '/'"
    if any(ord(ch) < 0x20 or 0x7F <= ord(ch) < 0xA0 for ch in name):
        return "contains control characters"
    if not is_utf8(name):
        return "is not valid UTF-8"
    return None


def is_utf8(text: str) -> bool:
    """True unless ``text`` holds lone surrogates (a file name's bytes that are not UTF-8)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def printable_utf8(text: str) -> str:
    """``text`` with undecodable bytes (lone surrogates) written as ``\\xNN``."""
    if is_utf8(text):
        return text
    try:
        raw = text.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:  # a surrogate that no file name's bytes decode to
        return text.encode("utf-8", "backslashreplace").decode("utf-8")
    return raw.decode("utf-8", "backslashreplace")
