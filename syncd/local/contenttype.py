"""The content type sent with an upload: from the file's extension, else from its first bytes.

The table is built in, not read from the host's ``/etc/mime.types``, so a file gets the same type
on every machine. The Messages API takes only PDF and plain-text documents (and JPEG, PNG, GIF,
WebP images), so every text format it could read, source code and markup included (``.html``,
``.xml``), is sent as ``text/plain``; only CSV and JSON keep their own text types, as the Files
API documents them.
"""

from __future__ import annotations

import codecs
import posixpath

HEAD_BYTES = 8192
TEXT = "text/plain"
BINARY = "application/octet-stream"

_OOXML = "application/vnd.openxmlformats-officedocument."
_TEXT_EXTENSIONS = (
    ".txt .text .md .markdown .rst .adoc .org .log .tex .bib .srt .vtt .diff .patch "
    ".py .pyi .js .mjs .cjs .jsx .ts .tsx .sh .bash .zsh .fish .ps1 .bat "
    ".c .h .cc .cpp .cxx .hpp .hh .cs .go .rs .java .kt .kts .scala .swift .m .rb .php .pl "
    ".lua .r .jl .hs .ml .ex .exs .erl .clj .dart .sql .graphql .proto "
    ".yaml .yml .toml .ini .cfg .conf .env .properties "
    ".html .htm .xml .xsl .css .scss .less .svg .vue .svelte"
)
_OTHER_TYPES = {
    ".pdf": "application/pdf",
    ".csv": "text/csv",
    ".json": "application/json",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".png": "image/png",
    ".gif": "image/gif",
    ".webp": "image/webp",
    ".docx": _OOXML + "wordprocessingml.document",
    ".xlsx": _OOXML + "spreadsheetml.sheet",
    ".pptx": _OOXML + "presentationml.presentation",
    ".doc": "application/msword",
    ".xls": "application/vnd.ms-excel",
    ".ppt": "application/vnd.ms-powerpoint",
    ".odt": "application/vnd.oasis.opendocument.text",
    ".ods": "application/vnd.oasis.opendocument.spreadsheet",
    ".odp": "application/vnd.oasis.opendocument.presentation",
    ".rtf": "application/rtf",
    ".epub": "application/epub+zip",
    ".zip": "application/zip",
    ".gz": "application/gzip",
    ".tgz": "application/gzip",
    ".tar": "application/x-tar",
    ".7z": "application/x-7z-compressed",
    ".mp3": "audio/mpeg",
    ".wav": "audio/wav",
    ".mp4": "video/mp4",
    ".mov": "video/quicktime",
}
EXTENSION_TYPES: dict[str, str] = {ext: TEXT for ext in _TEXT_EXTENSIONS.split()} | _OTHER_TYPES

_MAGIC: tuple[tuple[bytes, str], ...] = (
    (b"%PDF-", "application/pdf"),
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"GIF87a", "image/gif"),
    (b"GIF89a", "image/gif"),
    (b"PK\x03\x04", "application/zip"),
    (b"\x1f\x8b", "application/gzip"),
)


def content_type(rel_path: str, head: bytes) -> str:
    """The content type for ``rel_path``, whose first (up to HEAD_BYTES) bytes are ``head``."""
    ext = posixpath.splitext(posixpath.basename(rel_path))[1].lower()
    known = EXTENSION_TYPES.get(ext)
    return known if known is not None else sniff(head)


def sniff(head: bytes) -> str:
    """The content type that the first bytes of a file suggest; empty counts as text."""
    for magic, mime in _MAGIC:
        if head.startswith(magic):
            return mime
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image/webp"
    return TEXT if _looks_like_text(head) else BINARY


def _looks_like_text(head: bytes) -> bool:
    """Whether ``head`` is UTF-8 without NUL bytes, allowing a character cut off at its end."""
    if b"\x00" in head:
        return False
    # An incremental decoder buffers a trailing partial character instead of failing on it,
    # which is what a head cut at HEAD_BYTES needs.
    try:
        codecs.getincrementaldecoder("utf-8")().decode(head, final=False)
    except UnicodeDecodeError:
        return False
    return True
