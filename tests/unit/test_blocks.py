"""Content blocks and agent resources: the pure functions, and `syncd ls --format` on a journal."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from syncd.cli.main import main
from syncd.engine.manifest import manifest_data
from syncd.journal import Journal
from syncd.model import Synced
from syncd.remote.blocks import block_type, content_block, resource
from syncd.remote.names import encode_name

NON_UTF8 = os.fsdecode(b"caf\xe9.txt")


# -- the pure functions ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("mime_type", "expected"),
    [
        ("application/pdf", "document"),
        ("text/plain", "document"),
        ("text/plain; charset=utf-8", "document"),
        ("TEXT/PLAIN;charset=UTF-8", "document"),
        ("Application/PDF", "document"),
        (" text/plain ", "document"),
        ("image/jpeg", "image"),
        ("image/png", "image"),
        ("image/gif", "image"),
        ("image/webp", "image"),
        ("IMAGE/PNG", "image"),
        ("image/jpeg; q=0.9", "image"),
        ("image/svg+xml", "container_upload"),
        ("image/tiff", "container_upload"),
        ("text/csv", "container_upload"),
        ("text/html", "container_upload"),
        ("application/json", "container_upload"),
        ("application/octet-stream", "container_upload"),
        ("application/pdfx", "container_upload"),
        ("", "container_upload"),
    ],
)
def test_block_type_by_mime_family(mime_type: str, expected: str) -> None:
    """PDF/plain text are documents, JPEG/PNG/GIF/WebP images, the rest container uploads."""
    assert expected == block_type(mime_type)


def test_document_block_has_a_file_source_and_the_path_as_title() -> None:
    """A PDF or text file becomes a DocumentBlockParam with a FileDocumentSourceParam source."""
    expected = {"type": "document", "source": {"type": "file", "file_id": "file_1"},
                "title": "docs/a.pdf"}
    assert expected == content_block("file_1", "application/pdf", "docs/a.pdf")


def test_text_with_charset_is_a_document_block() -> None:
    """text/plain with a charset parameter is still a document."""
    expected = {"type": "document", "source": {"type": "file", "file_id": "file_2"},
                "title": "n.md"}
    assert expected == content_block("file_2", "text/plain; charset=utf-8", "n.md")


def test_image_block_has_a_file_source_and_no_title() -> None:
    """An image becomes an ImageBlockParam with a FileImageSourceParam source (no title field)."""
    expected = {"type": "image", "source": {"type": "file", "file_id": "file_3"}}
    assert expected == content_block("file_3", "IMAGE/WEBP", "p/x.webp")


def test_other_types_are_container_uploads() -> None:
    """Anything else becomes a ContainerUploadBlockParam: type and file_id only."""
    expected = {"type": "container_upload", "file_id": "file_4"}
    assert expected == content_block("file_4", "text/csv", "data.csv")


def test_document_title_escapes_bytes_that_are_not_utf8() -> None:
    """A non-UTF-8 name gives a title with \\xNN escapes, which JSON can carry as UTF-8."""
    block = content_block("file_5", "text/plain", "d/" + NON_UTF8)
    assert "d/caf\\xe9.txt" == block["title"]
    assert '"d/caf\\\\xe9.txt"' == json.dumps(block["title"])


def test_resource_mounts_the_relative_path_under_mnt_name() -> None:
    """A resource is a BetaManagedAgentsFileResourceParams at /mnt/<name>/<path>, / kept."""
    expected = {"type": "file", "file_id": "file_6", "mount_path": "/mnt/docs/a/b c/é.pdf"}
    assert expected == resource("file_6", "a/b c/é.pdf", "docs")


@pytest.mark.parametrize("name", ["", ".", "..", "a/b", "/", "tab\there", "nl\n", "del\x7f",
                                  os.fsdecode(b"\xff")])
def test_resource_refuses_unusable_mount_names(name: str) -> None:
    """Empty, '.', '..', a '/', control characters or non-UTF-8: ValueError."""
    with pytest.raises(ValueError, match="mount name"):
        resource("file_7", "a.txt", name)


def test_resource_refuses_a_path_that_is_not_utf8() -> None:
    """A path with undecodable bytes cannot be a mount path: ValueError (ls skips the file)."""
    with pytest.raises(ValueError, match="not valid UTF-8"):
        resource("file_8", "d/" + NON_UTF8, "docs")


# -- syncd ls on a real journal ---------------------------------------------------------------


@dataclass
class Listed:
    """A config whose journal holds a few synced files."""

    config: Path
    root: Path
    journal: Path


FILES = [  # path, file_id, mime type
    ("data.csv", "file_csv", "text/csv"),
    ("docs/a.pdf", "file_pdf", "application/pdf"),
    ("docs/notes.md", "file_md", "text/plain; charset=utf-8"),
    ("docs/sub/p.png", "file_png", "image/png"),
    ("pics/x.JPG", "file_jpg", "image/jpeg"),
]


def make_journal(tmp_path: Path, files: list[tuple[str, str, str]]) -> Listed:
    """A journal with ``files`` synced, and a config pointing at it (root folder 'library')."""
    root = tmp_path / "library"
    root.mkdir()
    journal_path = tmp_path / "state" / "j.db"
    journal_path.parent.mkdir()
    with Journal.open(journal_path, str(root), "http://127.0.0.1:1") as journal:
        for n, (path, file_id, mime) in enumerate(files):
            synced = Synced(file_id=file_id, remote_name=encode_name(path), sha256=f"{n:064x}",
                            size=10 + n, mtime_ns=1, ino=n + 1, mime_type=mime,
                            synced_at=1_780_000_000.0)
            journal.commit_upload(path, synced, None)
    config = tmp_path / "c.toml"
    config.write_text(f'root = "{root}"\n[state]\njournal = "{journal_path}"\n')
    return Listed(config, root, journal_path)


@pytest.fixture
def listed(tmp_path: Path) -> Iterator[Listed]:
    yield make_journal(tmp_path, FILES)


def ls(listed: Listed, *args: str) -> int:
    return main(["ls", "--config", str(listed.config), *args])


def test_ls_blocks_under_a_prefix(listed: Listed, capsys: pytest.CaptureFixture[str]) -> None:
    """`ls --format blocks docs/` prints the content blocks of the files under docs/ only."""
    code = ls(listed, "--format", "blocks", "docs/")
    expected = [
        {"type": "document", "source": {"type": "file", "file_id": "file_pdf"},
         "title": "docs/a.pdf"},
        {"type": "document", "source": {"type": "file", "file_id": "file_md"},
         "title": "docs/notes.md"},
        {"type": "image", "source": {"type": "file", "file_id": "file_png"}},
    ]
    assert (0, expected) == (code, json.loads(capsys.readouterr().out))


def test_ls_blocks_includes_container_uploads(
    listed: Listed, capsys: pytest.CaptureFixture[str]
) -> None:
    """Without a prefix every file is listed; a CSV is a container_upload block."""
    assert 0 == ls(listed, "--format", "blocks")
    blocks = json.loads(capsys.readouterr().out)
    assert {"type": "container_upload", "file_id": "file_csv"} == blocks[0]
    assert ["container_upload", "document", "document", "image", "image"] == [
        b["type"] for b in blocks]


def test_ls_resources_with_a_mount_name(
    listed: Listed, capsys: pytest.CaptureFixture[str]
) -> None:
    """`--format resources --mount-name docs` mounts each file at /mnt/docs/<relative path>."""
    code = ls(listed, "--format", "resources", "--mount-name", "docs")
    expected = [{"type": "file", "file_id": fid, "mount_path": f"/mnt/docs/{path}"}
                for path, fid, _ in FILES]
    assert (0, expected) == (code, json.loads(capsys.readouterr().out))


def test_ls_resources_default_to_the_root_folders_name(
    listed: Listed, capsys: pytest.CaptureFixture[str]
) -> None:
    """Without --mount-name the root's basename is used; a prefix filters as for the others."""
    code = ls(listed, "--format", "resources", "pics/")
    expected = [{"type": "file", "file_id": "file_jpg", "mount_path": "/mnt/library/pics/x.JPG"}]
    assert (0, expected) == (code, json.loads(capsys.readouterr().out))


def test_ls_resources_skip_non_utf8_paths_with_one_warning(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Non-UTF-8 paths are left out of resources; one stderr line gives their count."""
    listed = make_journal(tmp_path, [("a.txt", "file_a", "text/plain"),
                                     (NON_UTF8, "file_b", "text/plain"),
                                     ("d/" + NON_UTF8, "file_c", "text/plain")])
    code = ls(listed, "--format", "resources", "--mount-name", "m")
    out, err = capsys.readouterr()
    expected = [{"type": "file", "file_id": "file_a", "mount_path": "/mnt/m/a.txt"}]
    assert (0, expected) == (code, json.loads(out))
    assert 1 == len(err.strip().splitlines())
    assert "skipped 2 files" in err


def test_ls_blocks_keep_non_utf8_paths_with_an_escaped_title(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """In blocks a non-UTF-8 file keeps its block; the title shows its bytes as \\xNN."""
    listed = make_journal(tmp_path, [(NON_UTF8, "file_b", "text/plain")])
    assert 0 == ls(listed, "--format", "blocks")
    expected = [{"type": "document", "source": {"type": "file", "file_id": "file_b"},
                 "title": "caf\\xe9.txt"}]
    assert expected == json.loads(capsys.readouterr().out)


@pytest.mark.parametrize("name", ["", "..", "a/b", "x\ny"])
def test_bad_mount_name_is_one_line_exit_2(
    listed: Listed, capsys: pytest.CaptureFixture[str], name: str
) -> None:
    """An unusable --mount-name: exit 2, one line on stderr, nothing on stdout."""
    code = ls(listed, "--format", "resources", "--mount-name", name)
    out, err = capsys.readouterr()
    assert (2, "", 1) == (code, out, len(err.strip().splitlines()))
    assert err.startswith("syncd: --mount-name ")


def test_root_whose_name_cannot_be_a_mount_name_needs_one(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A root named with a control character asks for --mount-name: exit 2, one line."""
    listed = make_journal(tmp_path, FILES[:1])
    odd = tmp_path / "odd\tname"
    odd.mkdir()
    listed.config.write_text(f'root = "{odd}"\n[state]\njournal = "{listed.journal}"\n'
                             .replace("\t", "\\t"))
    code = ls(listed, "--format", "resources")
    err = capsys.readouterr().err
    assert (2, 1) == (code, len(err.strip().splitlines()))
    assert "--mount-name NAME" in err


def test_json_entries_carry_the_block_type(
    listed: Listed, capsys: pytest.CaptureFixture[str]
) -> None:
    """`ls --json` keeps its objects and adds "block"; `--json --format json` is the same."""
    assert 0 == ls(listed, "--json")
    entries = json.loads(capsys.readouterr().out)
    assert 0 == ls(listed, "--json", "--format", "json")
    again = json.loads(capsys.readouterr().out)
    expected = ["container_upload", "document", "document", "image", "image"]
    assert (expected, entries) == ([e["block"] for e in entries], again)
    assert {"path", "file_id", "remote_name", "size", "sha256", "mime_type", "block",
            "synced_at"} == set(entries[0])


@pytest.mark.parametrize(
    "args",
    [("--json", "--format", "blocks"), ("--format", "resources", "--json"),
     ("--json", "--format", "text"), ("--mount-name", "docs"),
     ("--format", "blocks", "--mount-name", "docs")],
)
def test_conflicting_options_are_usage_errors(
    listed: Listed, capsys: pytest.CaptureFixture[str], args: tuple[str, ...]
) -> None:
    """--json with another --format, or --mount-name without resources: argparse error, 2."""
    with pytest.raises(SystemExit) as info:
        ls(listed, *args)
    err = capsys.readouterr().err
    assert 2 == info.value.code
    assert "syncd ls: error: argument --" in err


def test_text_escapes_control_characters_in_paths(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A newline, tab or backslash in a name is printed escaped: one line per file."""
    listed = make_journal(tmp_path, [("a\nb.txt", "file_n", "text/plain"),
                                     ("t\tx\\y\x1b.txt", "file_t", "text/plain")])
    assert 0 == ls(listed)
    expected = ["file_n            10  a\\nb.txt", "file_t            11  t\\tx\\\\y\\x1b.txt"]
    assert expected == capsys.readouterr().out.splitlines()


def test_manifest_entries_carry_the_block_type(listed: Listed) -> None:
    """The manifest (still version 1) gives each file its block type."""
    with Journal.open_readonly(listed.journal) as journal:
        data = manifest_data(journal, str(listed.root), now=0)
    expected = {"data.csv": "container_upload", "docs/a.pdf": "document",
                "docs/notes.md": "document", "docs/sub/p.png": "image", "pics/x.JPG": "image"}
    assert (1, expected) == (data["version"],
                             {path: e["block"] for path, e in data["files"].items()})
