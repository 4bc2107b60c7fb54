"""Streaming an upload's multipart/form-data body into the emulator's store, per API version.

Both versions take one part named ``file``: its filename becomes ``filename`` and its
Content-Type becomes ``mime_type``. They differ in the rest:

- 2023-06-01: the filename must be acceptable as it is (``a/b.txt`` is a 400); every other
  form field is ignored.
- 2026-10-21: only the filename's final ``/``-separated component is kept, and an absent or
  empty one becomes ``unnamed`` plus the extension of the part's type; the optional field
  ``expires_in_seconds`` (3600 to 7,776,000) sets ``expires_at``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from python_multipart.exceptions import FormParserError
from python_multipart.multipart import MultipartParser

from syncd.emulator.store import FileStore, NewFile, StoredFile, UploadSink
from syncd.remote.names import filename_problem

if TYPE_CHECKING:
    from python_multipart.multipart import MultipartCallbacks

EXPIRES_FIELD = "expires_in_seconds"
MIN_EXPIRES_IN = 3600
MAX_EXPIRES_IN = 7_776_000
_MAX_FIELD_BYTES = 64
_EXTENSIONS = {
    "application/pdf": ".pdf", "text/plain": ".txt", "text/csv": ".csv",
    "text/markdown": ".md", "text/html": ".html", "application/json": ".json",
    "image/jpeg": ".jpg", "image/png": ".png", "image/gif": ".gif", "image/webp": ".webp",
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document": ".docx",
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": ".xlsx",
}
_PARAM_RE = re.compile(rb';\s*([^\s=;]+)\s*=\s*("(?:[^"\\]|\\.)*"|[^;]*)')


class BadUpload(ValueError):
    """The body is not an acceptable upload; the message is meant for the client."""


class UploadTooLarge(Exception):
    """The file part grew past the size limit."""


@dataclass(frozen=True)
class UploadRules:
    """How one request's upload is read: by which version, into which workspace."""

    ga: bool
    workspace: str
    max_bytes: int
    quota_bytes: int | None = None


def _disposition_params(value: bytes) -> dict[bytes, str]:
    """Parameters of a Content-Disposition header, unquoted and decoded as UTF-8."""
    params: dict[bytes, str] = {}
    for key, raw in _PARAM_RE.findall(value):
        if len(raw) >= 2 and raw[:1] == b'"' and raw[-1:] == b'"':
            raw = re.sub(rb"\\(.)", rb"\1", raw[1:-1])
        # surrogateescape turns bad UTF-8 into lone surrogates, which filename_problem refuses.
        params.setdefault(key.lower(), raw.strip().decode("utf-8", "surrogateescape"))
    return params


def ga_filename(sent: str | None, mime_type: str) -> str:
    """The name a 2026-10-21 upload is stored under: the final path component, or unnamed."""
    name = (sent or "").rsplit("/", 1)[-1]
    if name:
        return name
    return "unnamed" + _EXTENSIONS.get(mime_type.split(";")[0].strip().lower(), "")


def expires_in(raw: bytes | None) -> int | None:
    """The ``expires_in_seconds`` field's value, checked (raises BadUpload)."""
    if raw is None:
        return None
    text = raw.decode("latin-1").strip()
    if not re.fullmatch(r"-?[0-9]{1,12}", text):
        raise BadUpload(f"{EXPIRES_FIELD}: Input should be a valid integer")
    seconds = int(text)
    if seconds < MIN_EXPIRES_IN:
        raise BadUpload(f"{EXPIRES_FIELD}: Input should be greater than or equal to "
                        f"{MIN_EXPIRES_IN}")
    if seconds > MAX_EXPIRES_IN:
        raise BadUpload(f"{EXPIRES_FIELD}: Input should be less than or equal to {MAX_EXPIRES_IN}")
    return seconds


class MultipartIngest:
    """Streams the one ``file`` part of a multipart/form-data body into the store.

    Memory stays flat whatever the file size: each chunk goes to a temp file and the hash.
    Feed it the body chunk by chunk, then ``commit()``; ``abort()`` in a ``finally``.
    """

    def __init__(self, store: FileStore, boundary: bytes, rules: UploadRules) -> None:
        self._store = store
        self._rules = rules
        self._parser = MultipartParser(boundary, self._callbacks())
        self._sink: UploadSink | None = None
        self._filename = ""
        self._mime_type = ""
        self._in_file = False
        self._field_value: bytearray | None = None  # the expires field, while reading it
        self._expires_raw: bytes | None = None
        self._ended = False
        self._headers: dict[bytes, bytes] = {}
        self._field = b""
        self._value = b""

    def feed(self, chunk: bytes) -> None:
        """Parse the next chunk of the body (raises BadUpload or UploadTooLarge)."""
        try:
            self._parser.write(chunk)
        except FormParserError as exc:
            raise BadUpload("Invalid multipart/form-data body") from exc

    def commit(self) -> StoredFile:
        """Check the body was complete and held a file, then store it.

        Raises BadUpload, or QuotaExceeded when the organization's storage is full.
        """
        try:
            self._parser.finalize()
        except FormParserError as exc:
            raise BadUpload("Invalid multipart/form-data body") from exc
        if self._sink is None:
            raise BadUpload("file: Field required")
        if not self._ended or self._in_file or self._field_value is not None:
            raise BadUpload("Invalid multipart/form-data body: it ends before the closing boundary")
        new = NewFile(self._filename, self._mime_type, self._rules.workspace,
                      expires_in=expires_in(self._expires_raw))
        return self._store.commit(self._sink, new, self._rules.quota_bytes)

    def abort(self) -> None:
        """Remove whatever was not committed (a no-op after ``commit``)."""
        if self._sink is not None:
            self._sink.abort()

    def _callbacks(self) -> MultipartCallbacks:
        return {
            "on_part_begin": self._part_begin, "on_header_field": self._header_field,
            "on_header_value": self._header_value, "on_header_end": self._header_end,
            "on_headers_finished": self._headers_finished, "on_part_data": self._part_data,
            "on_part_end": self._part_end, "on_end": self._end,
        }

    def _part_begin(self) -> None:
        self._headers = {}

    def _header_field(self, data: bytes, start: int, end: int) -> None:
        self._field += data[start:end]

    def _header_value(self, data: bytes, start: int, end: int) -> None:
        self._value += data[start:end]

    def _header_end(self) -> None:
        self._headers[self._field.strip().lower()] = self._value.strip()
        self._field, self._value = b"", b""

    def _headers_finished(self) -> None:
        params = _disposition_params(self._headers.get(b"content-disposition", b""))
        name = params.get(b"name")
        if name == "file":
            self._start_file(params.get(b"filename"))
        elif name == EXPIRES_FIELD and self._rules.ga:
            if self._expires_raw is not None:
                raise BadUpload(f"{EXPIRES_FIELD}: exactly one value is allowed")
            self._field_value = bytearray()
        # Other form fields are ignored.

    def _start_file(self, sent_name: str | None) -> None:
        if self._sink is not None:
            raise BadUpload("file: exactly one part named `file` is allowed")
        mime_type = self._headers.get(b"content-type", b"").decode("latin-1").strip()
        if len(mime_type) > 255:
            raise BadUpload("file: the part's Content-Type is longer than 255 characters")
        mime_type = mime_type or "application/octet-stream"
        if self._rules.ga:
            filename = ga_filename(sent_name, mime_type)
        elif sent_name is None:
            raise BadUpload("file: the part must be a file (Content-Disposition needs a filename)")
        else:
            filename = sent_name
        problem = filename_problem(filename)
        if problem is not None:
            raise BadUpload(problem)
        self._filename, self._mime_type = filename, mime_type
        self._sink = self._store.new_sink()
        self._in_file = True

    def _part_data(self, data: bytes, start: int, end: int) -> None:
        if self._in_file and self._sink is not None:
            self._sink.write(data[start:end])
            if self._sink.size > self._rules.max_bytes:
                raise UploadTooLarge()
        elif self._field_value is not None:
            self._field_value += data[start:end]
            if len(self._field_value) > _MAX_FIELD_BYTES:
                raise BadUpload(f"{EXPIRES_FIELD}: Input should be a valid integer")

    def _part_end(self) -> None:
        self._in_file = False
        if self._field_value is not None:
            self._expires_raw = bytes(self._field_value)
            self._field_value = None

    def _end(self) -> None:
        self._ended = True
