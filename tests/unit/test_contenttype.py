"""Content types: the built-in extension table, then sniffing the first bytes."""

from __future__ import annotations

import pytest

from syncd.local.contenttype import HEAD_BYTES, content_type

_OOXML = "application/vnd.openxmlformats-officedocument."


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("a.pdf", "application/pdf"),
        ("docs/REPORT.PDF", "application/pdf"),
        ("notes.txt", "text/plain"),
        ("README.md", "text/plain"),
        ("main.py", "text/plain"),
        ("app.ts", "text/plain"),
        ("conf.yaml", "text/plain"),
        ("page.html", "text/plain"),
        ("feed.xml", "text/plain"),
        ("data.csv", "text/csv"),
        ("data.json", "application/json"),
        ("photo.JPG", "image/jpeg"),
        ("photo.jpeg", "image/jpeg"),
        ("icon.png", "image/png"),
        ("anim.gif", "image/gif"),
        ("pic.webp", "image/webp"),
        ("letter.docx", _OOXML + "wordprocessingml.document"),
        ("budget.xlsx", _OOXML + "spreadsheetml.sheet"),
        ("deck.pptx", _OOXML + "presentationml.presentation"),
        ("backup.zip", "application/zip"),
        ("dir.v2/archive.tar.gz", "application/gzip"),
    ],
)
def test_extension_table(path: str, expected: str) -> None:
    """A known extension decides the type, in any case, whatever the content."""
    assert expected == content_type(path, b"\x00\xff binary-looking head")


@pytest.mark.parametrize(
    ("head", "expected"),
    [
        (b"%PDF-1.7\n%\xe2\xe3\xcf\xd3", "application/pdf"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "image/png"),
        (b"\xff\xd8\xff\xe0\x00\x10JFIF", "image/jpeg"),
        (b"GIF89a\x01\x00", "image/gif"),
        (b"RIFF\x24\x00\x00\x00WEBPVP8 ", "image/webp"),
        (b"plain words\nand lines\n", "text/plain"),
        ("naïve café 😀".encode(), "text/plain"),
        (b"", "text/plain"),
        (b"\x00\x01\x02\x03", "application/octet-stream"),
        (b"caf\xe9 latin-1", "application/octet-stream"),
        (b"text with a NUL\x00", "application/octet-stream"),
    ],
)
def test_sniffing_unknown_extension(head: bytes, expected: str) -> None:
    """Without a known extension, magic numbers, then UTF-8 without NUL, decide the type."""
    assert expected == content_type("docs/Makefile", head)


def test_utf8_cut_mid_character_is_text() -> None:
    """A head that ends inside a multibyte character still counts as text."""
    head = ("a" * (HEAD_BYTES - 1) + "😀").encode()[:HEAD_BYTES]
    expected = "text/plain"
    assert expected == content_type("notes.unknownext", head)


def test_dot_file_is_sniffed() -> None:
    """A dot file such as .bashrc has no extension, so its content decides."""
    expected = "text/plain"
    assert expected == content_type(".bashrc", b"export A=1\n")
