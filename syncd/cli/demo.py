"""``syncd demo``: mirror a folder to a throw-away emulator, with nothing to set up.

The emulator runs in-process on a free loopback port with a temporary data directory; the
journal lives there too, so the demo leaves nothing behind.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from syncd import logs
from syncd.config import load_settings
from syncd.emulator.app import EmulatorConfig, run_emulator
from syncd.engine import oneshot
from syncd.engine.mirror import Mirror
from syncd.journal import Journal
from syncd.remote.client import FilesClient
from syncd.remote.pacer import Pacer
from syncd.service.signals import run_until_signal

DEMO_KEY = "sk-ant-demo-emulator-key"


def sample_pdf(text: str) -> bytes:
    """A minimal, valid one-page PDF showing ``text``."""
    stream = f"BT /F1 18 Tf 72 720 Td ({text}) Tj ET".encode()
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R"
        b" /Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length %d >>\nstream\n%s\nendstream" % (len(stream), stream),
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n%s\nendobj\n" % (number, body)
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (
        len(objects) + 1, xref)
    return bytes(out)


def make_sample(folder: Path) -> Path:
    """A small folder: a text file, a CSV, a PDF and a nested directory."""
    (folder / "notes" / "2026").mkdir(parents=True, exist_ok=True)
    (folder / "README.txt").write_text("This folder is mirrored to the Files API by syncd.\n")
    (folder / "prices.csv").write_text("item,price\napple,1.20\npear,0.95\n")
    (folder / "report.pdf").write_bytes(sample_pdf("Quarterly report"))
    (folder / "notes" / "2026" / "ideas.md").write_text("# Ideas\n\n- mirror everything\n")
    return folder


def run_demo(folder: Path | None, once: bool) -> int:
    """Mirror ``folder`` (or a fresh sample) to an in-process emulator; print the map."""
    logs.configure("info", "auto")
    with tempfile.TemporaryDirectory(prefix="syncd-demo-") as tmp:
        base = Path(tmp)
        root = folder.expanduser().absolute() if folder else make_sample(base / "sample")
        with run_emulator(EmulatorConfig(data_dir=base / "emulator", api_key=DEMO_KEY)) as emu:
            print(f"emulator on {emu.base_url}; mirroring {root}", flush=True)
            settings = load_settings(
                None, root=root,
                remote={"base_url": emu.base_url, "requests_per_minute": 600, "burst": 20},
                state={"journal": base / "journal.db"},
                sync={"settle_seconds": 0.3, "reconcile_interval_seconds": 30},
            )
            client = FilesClient(DEMO_KEY, emu.base_url, pacer=Pacer(600, burst=20))
            with Mirror(settings, client=client) as daemon:
                code = oneshot.sync_once(daemon)
                print_table(daemon.journal)
                if once:
                    return code
                print(f"\nwatching {root}: edit, add or delete files; Ctrl-C to stop", flush=True)
                return run_until_signal(daemon)


def print_table(journal: Journal) -> None:
    """The path -> file_id map, as applications would use it."""
    rows = [r for r in journal.iter_rows() if r.synced is not None]
    width = max((len(r.path) for r in rows), default=4)
    print(f"\n{'path':<{width}}  {'file_id':<34}  {'mime_type':<16}  bytes")
    for row in rows:
        assert row.synced is not None
        s = row.synced
        print(f"{row.path:<{width}}  {s.file_id:<34}  {s.mime_type:<16}  {s.size}")
