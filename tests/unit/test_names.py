"""Remote names: the documented mapping, its round trip, shortening and foreign names."""

from __future__ import annotations

import os
import re

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from syncd.remote.names import (
    MAX_NAME_CHARS,
    decode_name,
    encode_name,
    filename_problem,
    is_shortened,
    prefix_problem,
)

_AWKWARD = [*'<>:"|?*\\/%~.\x00\x01\x1f\x7f é€😀', "%2F", "%~", "%41"]
_pieces = st.one_of(st.sampled_from(_AWKWARD), st.characters(exclude_categories=["Cs"]))
_text_segment = st.lists(_pieces, min_size=1, max_size=12).map("".join)
_byte_segment = st.binary(min_size=1, max_size=12).map(os.fsdecode)
_segment = st.one_of(_text_segment, _byte_segment)
rel_paths = st.lists(_segment, min_size=1, max_size=5).map("/".join)
prefixes = st.one_of(
    st.just(""),
    st.lists(st.text(st.characters(min_codepoint=32), min_size=1, max_size=8), max_size=3)
    .map("/".join)
    .filter(lambda p: prefix_problem(p) is None),
)
# Over-long on purpose: 256+ plain characters, with awkward ones before or after them.
long_paths = st.builds(
    lambda body, pad, body_first: (body + pad if body_first else pad + body) + "a.pdf",
    st.one_of(rel_paths, st.binary(max_size=40).map(os.fsdecode)),
    st.integers(MAX_NAME_CHARS + 1, 300).map("x".__mul__),
    st.booleans(),
)


@given(rel_paths, prefixes)
def test_round_trip(path: str, prefix: str) -> None:
    """Every path comes back from its remote name unless the name had to be shortened."""
    name = encode_name(path, prefix)
    assert None is filename_problem(name)
    expected = None if is_shortened(name) else path
    assert expected == decode_name(name, prefix)


@given(st.lists(_pieces, min_size=1, max_size=20).map("".join), prefixes)
def test_short_paths_are_never_shortened(path: str, prefix: str) -> None:
    """A path whose encoding fits is never shortened, so it always round-trips."""
    assert path == decode_name(encode_name(path, prefix), prefix)


@given(long_paths, prefixes)
def test_long_names_shortened(path: str, prefix: str) -> None:
    """Over-long names fit in 255 characters, are valid, keep prefix and extension, don't decode."""
    name = encode_name(path, prefix)
    assert True is is_shortened(name)
    assert None is filename_problem(name)
    assert name == encode_name(path, prefix)
    assert name.startswith(encode_name("x", prefix)[:-1])
    assert name.endswith(".pdf")
    assert None is decode_name(name, prefix)


@given(long_paths, long_paths)
def test_long_names_distinct(first: str, second: str) -> None:
    """Distinct over-long paths get distinct shortened names."""
    assume(first != second)
    assert encode_name(first) != encode_name(second)


def test_long_names_sharing_a_long_head_are_distinct() -> None:
    """Paths equal in their first 300 characters still get 2,000 distinct names."""
    names = {encode_name("a" * 300 + f"{i}.txt") for i in range(2000)}
    expected = 2000
    assert expected == len(names)


@pytest.mark.parametrize(
    ("path", "head_token"),
    [("/" * 300, "%2F"), ("é" * 300, "é"), ("😀" * 300, "😀"), ("\x7f" * 300, "%7F")],
)
def test_shortening_never_cuts_an_escape_or_character(path: str, head_token: str) -> None:
    """The head of a shortened name is made of whole characters and whole %XX escapes."""
    name = encode_name(path)
    head = name[: name.index("%~")]
    expected = ""
    assert expected == head.replace(head_token, "")
    assert len(name) <= MAX_NAME_CHARS


def test_long_extension_dropped_when_shortened() -> None:
    """An extension over 16 characters is left off a shortened name."""
    name = encode_name("a" * 300 + ".averyveryverylongextension")
    assert re.fullmatch(r"a+%~[0-9a-f]{16}", name) is not None


@pytest.mark.parametrize(
    ("path", "prefix", "expected"),
    [
        ("docs/a.pdf", "", "docs%2Fa.pdf"),
        ("Reports/Q3: résumé.pdf", "team/notes", "team%2Fnotes%2FReports%2FQ3%3A résumé.pdf"),
        (os.fsdecode(b"caf\xe9 100%.txt"), "", "caf%E9 100%25.txt"),
        ("résumé.pdf", "", "résumé.pdf"),
        ('a<b>c:d"e|f?g*h\\i', "", "a%3Cb%3Ec%3Ad%22e%7Cf%3Fg%2Ah%5Ci"),
        ("tab\there\x7f", "", "tab%09here%7F"),
        ("a.pdf", "/team/", "team%2Fa.pdf"),
        (os.fsdecode(b"\xed\xa0\x80.txt"), "", "%ED%A0%80.txt"),
    ],
)
def test_documented_examples(path: str, prefix: str, expected: str) -> None:
    """The mapping matches the examples in the module docstring and the rules it states."""
    assert expected == encode_name(path, prefix)
    assert path == decode_name(expected, prefix)


@pytest.mark.parametrize(
    ("name", "prefix"),
    [
        ("report.pdf", "docs"),
        ("other%2Freport.pdf", "docs"),
        ("docs%2F", "docs"),
        ("", ""),
    ],
)
def test_foreign_names_do_not_decode(name: str, prefix: str) -> None:
    """Names under another prefix, or none, are not ours."""
    assert None is decode_name(name, prefix)


def test_prefix_is_leading_directories() -> None:
    """A prefix names the same remote file as leading directories of the path would."""
    assert encode_name("docs/report.pdf") == encode_name("report.pdf", "docs")


@pytest.mark.parametrize(
    "name",
    ["docs%2freport.pdf", "%61.pdf", "%C3%A9.pdf", "100%.txt", "a%2", "a%zz", "%~1234"],
)
def test_non_canonical_names_do_not_decode(name: str) -> None:
    """Lowercase hex, unneeded escapes and stray percent signs are refused."""
    assert None is decode_name(name)


@pytest.mark.parametrize(
    ("prefix", "ok"),
    [("", True), ("/", True), ("team/notes", True), ("a\x01", False), ("x" * 120, False)],
)
def test_prefix_problem(prefix: str, ok: bool) -> None:
    """Empty and ordinary prefixes are accepted; control characters and long ones are not."""
    assert ok == (prefix_problem(prefix) is None)


def test_bad_prefix_empty_path_and_stray_surrogate_raise() -> None:
    """Encoding refuses an invalid prefix, an empty path, and text no file name can hold."""
    with pytest.raises(ValueError):
        encode_name("a\ud800.txt")
    with pytest.raises(ValueError, match="control"):
        encode_name("a.txt", "bad\nprefix")
    with pytest.raises(ValueError, match="empty"):
        encode_name("")
