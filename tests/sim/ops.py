"""Random trees and random operations on a real folder, all drawn from one seeded generator.

An operation is chosen by looking at the folder as it is now (sorted listings, so a seed always
picks the same targets) and is recorded as a plain :class:`Op` value before it is applied: the
list of ops is what a failing seed prints, and replaying the seed produces it again. Content is
never stored in an op, only the seed and size it is made from.

Most ops act on the folder. The ``REMOTE`` ones (an out-of-band delete, a spell of short
listings) act on the emulator: :class:`World` hands them to its ``remote`` hook, which the
runner sets; without one they are recorded and skipped.
"""

from __future__ import annotations

import ctypes
import errno
import hashlib
import os
import platform
import random
import shutil
import stat as st
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from syncd.local.ignore import IgnoreRules

# Sizes: mostly small, some medium, a few MB now and then; `oversize` makes files over the limit.
SIZE_BANDS = ((0.08, 0, 0), (0.45, 1, 200), (0.80, 200, 16_000), (0.94, 16_000, 300_000),
              (1.00, 300_000, 3_000_000))
WORDS = ("alpha", "beta", "gamma", "report", "draft", "notes", "data", "résumé", "日本", "x")
EXTS = (".txt", ".md", ".py", ".csv", ".json", ".bin", ".pdf", ".dat", "")
SPECIALS = ':*?"<>|\\'
# Content of files outside root that a directory exchange makes reachable through a symlink:
# no upload may ever carry it (invariant 10: syncd never reads outside root).
OUTSIDE_MARK = b"OUTSIDE-ROOT:"
REMOTE = ("remote_delete", "short_listing")


@dataclass(frozen=True)
class Op:
    """One operation on the folder (``path`` and ``dest`` are relative, fsdecoded strings)."""

    kind: str
    path: str = ""
    dest: str = ""
    size: int = 0
    cseed: int = 0
    count: int = 0
    pause: float = 0.0  # seconds to wait after it

    def __str__(self) -> str:
        parts = [self.kind, repr(self.path)]
        if self.dest:
            parts.append(f"-> {self.dest!r}")
        if self.size or self.kind in ("create", "overwrite", "truncate"):
            parts.append(f"size={self.size}")
        if self.count:
            parts.append(f"count={self.count}")
        if self.pause:
            parts.append(f"pause={self.pause:.2f}")
        return " ".join(parts)


def content(cseed: int, size: int) -> bytes:
    """Deterministic content: text half the time, random bytes otherwise."""
    rng = random.Random(cseed)
    if size == 0:
        return b""
    if rng.random() < 0.5:
        line = " ".join(rng.choice(WORDS) for _ in range(12)).encode() + b"\n"
        return (line * (size // len(line) + 1))[:size]
    return rng.randbytes(size)


def sample_size(rng: random.Random) -> int:
    """A file size from the bands above."""
    roll = rng.random()
    for upto, low, high in SIZE_BANDS:
        if roll < upto:
            return rng.randint(low, high)
    return 0


class Names:
    """Fresh file and directory names of every awkward kind, never repeating."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.n = 0

    def _next(self) -> int:
        self.n += 1
        return self.n

    def file(self) -> str:
        """A new file name (a single path component)."""
        rng, n = self.rng, self._next()
        ext = rng.choice(EXTS)
        kind = rng.choices(
            ["plain", "space", "unicode", "special", "percent", "nonutf8", "long", "control",
             "dot", "ignored"],
            [40, 6, 8, 8, 4, 6, 6, 3, 4, 3],
        )[0]
        if kind == "plain":
            return f"{rng.choice(WORDS[:5])}{n}{ext}"
        if kind == "space":
            return f"my file {n}{ext}"
        if kind == "unicode":
            return rng.choice([f"résumé-{n}{ext}", f"日本語-{n}.md", f"emoji-🙂-{n}.txt"])
        if kind == "special":
            chars = "".join(rng.choice(SPECIALS) for _ in range(rng.randint(1, 4)))
            return f"s{n}{chars}x{ext}"
        if kind == "percent":
            return rng.choice([f"100%-{n}.txt", f"%41%2F-{n}.txt", f"%~{n}"])
        if kind == "nonutf8":
            raw = rng.choice([b"caf\xe9-%d.txt", b"\xff\xfe-%d.bin", b"latin-\xe0\xe7-%d"])
            return os.fsdecode(raw % n)
        if kind == "long":
            return self._long(n, ext)
        if kind == "control":
            return rng.choice([f"ctl\x01-{n}.txt", f"new\nline-{n}.txt", f"tab\t{n}"])
        if kind == "dot":
            return f".hidden{n}{ext}"
        return rng.choice([f"dl{n}.part", f"notes{n}.txt~", f".#lock{n}", f"x{n}.crdownload"])

    def _long(self, n: int, ext: str) -> str:
        """A component near NAME_MAX (255 bytes): long in bytes, in characters or once encoded."""
        choice = self.rng.randrange(3)
        tail = f"-{n}{ext}"
        if choice == 0:
            return "L" * (250 - len(tail.encode())) + tail
        if choice == 1:
            return "é" * ((250 - len(tail.encode())) // 2) + tail  # 2 bytes each
        return ":" * self.rng.randint(90, 120) + tail  # 3 characters each once encoded

    def dir(self) -> str:
        """A new directory name."""
        rng, n = self.rng, self._next()
        kind = rng.choices(["plain", "special", "nonutf8", "long", "unicode"], [70, 8, 6, 8, 8])[0]
        if kind == "plain":
            return f"{rng.choice(['dir', 'docs', 'src', 'data', 'sub'])}{n}"
        if kind == "special":
            return f"d{n}{rng.choice(SPECIALS)}"
        if kind == "nonutf8":
            return os.fsdecode(b"dir\xe9-%d" % n)
        if kind == "unicode":
            return f"dossier-é-{n}"
        return "D" * rng.randint(60, 120) + f"-{n}"


@dataclass
class Survey:
    """What is in the folder now, as sorted relative paths."""

    files: list[str] = field(default_factory=list)  # regular files (not links)
    dirs: list[str] = field(default_factory=list)  # real directories (not links)
    links: list[str] = field(default_factory=list)
    specials: list[str] = field(default_factory=list)
    outside: list[str] = field(default_factory=list)  # top-level entries of the outside dir

    def parents(self) -> list[str]:
        """Directories a new entry can go in ("" is the root)."""
        return ["", *self.dirs]


def survey(root: Path, outside: Path) -> Survey:
    """List the folder without following links (unreadable directories are skipped)."""
    found = Survey()
    _survey_dir(root, "", found)
    for bucket in (found.files, found.dirs, found.links, found.specials):
        bucket.sort(key=os.fsencode)
    try:
        found.outside = sorted(os.listdir(outside), key=os.fsencode)
    except OSError:
        found.outside = []
    return found


def _survey_dir(root: Path, prefix: str, found: Survey) -> None:
    try:
        with os.scandir(root / prefix if prefix else root) as it:
            entries = [(e.name, e.stat(follow_symlinks=False).st_mode) for e in it]
    except OSError:
        return
    for name, mode in entries:
        rel = f"{prefix}/{name}" if prefix else name
        if st.S_ISLNK(mode):
            found.links.append(rel)
        elif st.S_ISDIR(mode):
            # Only deep_tree makes one-character directory names: its chain of ~300 would
            # swamp every choice, so only the chain's top is offered to other ops.
            if len(name) > 1:
                found.dirs.append(rel)
            _survey_dir(root, rel, found)
        elif st.S_ISREG(mode):
            found.files.append(rel)
        else:
            found.specials.append(rel)


def join(parent: str, name: str) -> str:
    """``parent/name`` ("" is the root)."""
    return f"{parent}/{name}" if parent else name


class World:
    """The folder under test, a directory outside it, and the file size limit.

    ``scratch`` (beside root, never inside it) holds what the exchange and FIFO ops stage:
    the outside directories a symlink exposes, FIFOs and files before they are renamed in.
    ``outside_shas`` is the sha256 of every outside-marked file made there. ``remote`` applies
    the ``REMOTE`` ops (set by the runner); it returns what happened, like ``apply``.
    ``extra_seed`` seeds the separate stream the ``EXTRA_GENERATORS`` draw from.
    """

    def __init__(self, root: Path, outside: Path, limit: int, tag: str = "",
                 extra_seed: int = 0) -> None:
        self.root = root
        self.outside = outside
        self.limit = limit
        self.tag = tag
        self.scratch = outside.parent / "scratch"
        self.fifos = 0
        self.oversize = 0
        self.deep = 0
        self.short_listings = 0
        self.staged = 0
        self.outside_shas: set[str] = set()
        self.remote: Callable[[Op], str] | None = None
        self.extra = random.Random(extra_seed)  # the stream of the EXTRA_GENERATORS' ops

    def survey(self) -> Survey:
        """What is there now."""
        return survey(self.root, self.outside)

    def apply(self, op: Op) -> str:
        """Apply ``op``; "" if it worked, else why not (the folder moved on: not an error).

        A remote op answers what it did (or why not) in the same string.
        """
        try:
            if op.kind in REMOTE:
                return "no remote to apply it to" if self.remote is None else self.remote(op)
            APPLY[op.kind](self, op)
        except OSError as exc:
            return f"{type(exc).__name__}: {exc.strerror}"
        finally:
            if op.pause:
                time.sleep(op.pause)
        return ""

    def stage(self, what: str) -> Path:
        """A fresh path in the scratch directory (outside root)."""
        self.scratch.mkdir(parents=True, exist_ok=True)
        self.staged += 1
        return self.scratch / f"{what}{self.staged}"

    def path(self, rel: str) -> Path:
        """The absolute path of ``rel`` under root."""
        return self.root / rel


# --- generation ---------------------------------------------------------------------------------

Gen = Callable[[random.Random, Names, Survey, World], "Op | None"]


def initial_tree(rng: random.Random, names: Names, world: World, entries: int) -> list[Op]:
    """Ops that build a random nested tree of about ``entries`` files and directories."""
    ops: list[Op] = []
    dirs = [""]
    for _ in range(entries):
        parent = rng.choice(dirs)
        if rng.random() < 0.2 and parent.count("/") < 4:
            new = join(parent, names.dir())
            dirs.append(new)
            ops.append(Op("mkdir", new))
        else:
            ops.append(Op("create", join(parent, names.file()), size=sample_size(rng),
                          cseed=rng.getrandbits(32)))
    return ops


def next_op(rng: random.Random, names: Names, now: Survey, world: World) -> Op:
    """One random operation that makes sense on the folder as it is now."""
    extra = world.extra
    if extra.random() < EXTRA_SHARE:
        kind = extra.choices(list(EXTRA_GENERATORS), [w for w, _ in EXTRA_GENERATORS.values()])[0]
        op = EXTRA_GENERATORS[kind][1](extra, names, now, world)
        if op is not None:
            return Op(op.kind, op.path, op.dest, op.size, op.cseed, op.count, _pause(extra))
    for _ in range(50):
        kind = rng.choices(list(GENERATORS), [w for w, _ in GENERATORS.values()])[0]
        op = GENERATORS[kind][1](rng, names, now, world)
        if op is not None:
            return Op(op.kind, op.path, op.dest, op.size, op.cseed, op.count, _pause(rng))
    return Op("create", names.file(), size=sample_size(rng), cseed=rng.getrandbits(32))


def _pause(rng: random.Random) -> float:
    roll = rng.random()
    if roll < 0.5:
        return 0.0
    return rng.uniform(0.01, 0.1) if roll < 0.85 else rng.uniform(0.2, 0.6)


def _cseed(rng: random.Random) -> int:
    return rng.getrandbits(32)


def _file(rng: random.Random, now: Survey) -> str | None:
    return rng.choice(now.files) if now.files else None


def gen_create(rng: random.Random, names: Names, now: Survey, world: World) -> Op | None:
    parent = rng.choice(now.parents())
    if rng.random() < 0.15 and parent.count("/") < 5:
        parent = join(parent, names.dir())  # a new directory with the file in it
    return Op("create", join(parent, names.file()), size=sample_size(rng), cseed=_cseed(rng))


def gen_append(rng: random.Random, names: Names, now: Survey, world: World) -> Op | None:
    target = _file(rng, now)
    return target and Op("append", target, size=rng.randint(1, 20_000), cseed=_cseed(rng))


def gen_overwrite(rng: random.Random, names: Names, now: Survey, world: World) -> Op | None:
    target = _file(rng, now)
    if target is None:
        return None
    # A third keep the size: only the hash can tell the edit from a touch.
    size = os.lstat(world.path(target)).st_size if rng.random() < 0.33 else sample_size(rng)
    return Op("overwrite", target, size=min(size, 3_000_000), cseed=_cseed(rng))


def gen_truncate(rng: random.Random, names: Names, now: Survey, world: World) -> Op | None:
    target = _file(rng, now)
    if target is None:
        return None
    size = os.lstat(world.path(target)).st_size
    return Op("truncate", target, size=rng.choice([0, size // 2]))


def gen_touch(rng: random.Random, names: Names, now: Survey, world: World) -> Op | None:
    target = _file(rng, now)
    return target and Op("touch", target)


def gen_delete(rng: random.Random, names: Names, now: Survey, world: World) -> Op | None:
    target = _file(rng, now) if rng.random() < 0.85 or not now.links else rng.choice(now.links)
    return target and Op("delete", target)


def gen_rename(rng: random.Random, names: Names, now: Survey, world: World) -> Op | None:
    target = _file(rng, now)
    if target is None:
        return None
    if rng.random() < 0.25 and len(now.files) > 1:
        dest = rng.choice(now.files)  # onto an existing file
    else:
        dest = join(rng.choice(now.parents()), names.file())
    return None if dest == target else Op("rename", target, dest)


def gen_swap(rng: random.Random, names: Names, now: Survey, world: World) -> Op | None:
    if len(now.files) < 2:
        return None
    a, b = rng.sample(now.files, 2)
    return Op("swap", a, b)


def gen_mkdir(rng: random.Random, names: Names, now: Survey, world: World) -> Op | None:
    parent = rng.choice(now.parents())
    return None if parent.count("/") > 5 else Op("mkdir", join(parent, names.dir()))


def gen_rmtree(rng: random.Random, names: Names, now: Survey, world: World) -> Op | None:
    if not now.dirs:
        return None
    target = rng.choice(now.dirs)
    under = sum(1 for f in now.files if f.startswith(target + "/"))
    return None if under > 12 else Op("rmtree", target)


def gen_rename_dir(rng: random.Random, names: Names, now: Survey, world: World) -> Op | None:
    if not now.dirs:
        return None
    target = rng.choice(now.dirs)
    parents = [p for p in now.parents() if p != target and not p.startswith(target + "/")]
    return Op("rename_dir", target, join(rng.choice(parents), names.dir()))


def gen_move_out(rng: random.Random, names: Names, now: Survey, world: World) -> Op | None:
    if not now.dirs and not now.files:
        return None
    target = rng.choice(now.dirs) if now.dirs and rng.random() < 0.7 else _file(rng, now)
    return target and Op("move_out", target, f"out{names._next()}")


def gen_move_in(rng: random.Random, names: Names, now: Survey, world: World) -> Op | None:
    if not now.outside:
        return None
    name = rng.choice(now.outside)
    # Back where it came from is unknown here; anywhere under root, new name or old.
    dest = join(rng.choice(now.parents()), name if rng.random() < 0.5 else names.dir())
    return Op("move_in", name, dest)


def gen_atomic(rng: random.Random, names: Names, now: Survey, world: World) -> Op | None:
    target = _file(rng, now) if rng.random() < 0.8 else join(rng.choice(now.parents()),
                                                              names.file())
    if target is None:
        return None
    style = rng.choice(["tmp", "rsync", "gedit", "vim", "emacs", "office"])
    return Op("atomic", target, style, size=sample_size(rng), cseed=_cseed(rng))


def gen_burst(rng: random.Random, names: Names, now: Survey, world: World) -> Op | None:
    target = _file(rng, now) or names.file()
    return Op("burst", target, size=rng.randint(0, 50_000), cseed=_cseed(rng),
              count=rng.randint(5, 25))


def gen_grow(rng: random.Random, names: Names, now: Survey, world: World) -> Op | None:
    target = _file(rng, now) if rng.random() < 0.3 else join(rng.choice(now.parents()),
                                                              names.file())
    return target and Op("grow", target, size=rng.randint(1000, 200_000), cseed=_cseed(rng),
                         count=rng.randint(5, 15))


def gen_chmod(rng: random.Random, names: Names, now: Survey, world: World) -> Op | None:
    pool = now.files + now.dirs
    if not pool:
        return None
    return Op("chmod", rng.choice(pool), count=rng.choice([0o000, 0o000, 0o644, 0o755]))


def gen_symlink(rng: random.Random, names: Names, now: Survey, world: World) -> Op | None:
    link = join(rng.choice(now.parents()), names.file())
    kind = rng.choice(["file", "dir", "outside", "dangling", "root"])
    if kind == "file" and now.files:
        target = world.path(rng.choice(now.files))
    elif kind == "dir" and now.dirs:
        target = world.path(rng.choice(now.dirs))
    elif kind == "outside":
        target = world.outside.parent / "elsewhere.txt"
    elif kind == "root":
        target = world.root
    else:
        return Op("symlink", link, "does-not-exist")
    # Relative targets: a replay in another directory makes the same links.
    return Op("symlink", link, os.path.relpath(target, world.path(link).parent))


def gen_fifo(rng: random.Random, names: Names, now: Survey, world: World) -> Op | None:
    if world.fifos >= 2:
        return None
    world.fifos += 1
    return Op("fifo", join(rng.choice(now.parents()), f"pipe{names._next()}"))


def gen_oversize(rng: random.Random, names: Names, now: Survey, world: World) -> Op | None:
    if world.oversize >= 1:
        return None
    world.oversize += 1
    target = _file(rng, now) if rng.random() < 0.3 else join(rng.choice(now.parents()),
                                                              f"huge{names._next()}.bin")
    if target is None:
        return None
    return Op("create", target, size=world.limit + rng.randint(1, 3 * world.limit),
              cseed=_cseed(rng))


def gen_file_to_dir(rng: random.Random, names: Names, now: Survey, world: World) -> Op | None:
    target = _file(rng, now)
    return target and Op("file_to_dir", target, names.file(), size=rng.randint(0, 3000),
                         cseed=_cseed(rng))


def gen_root_away(rng: random.Random, names: Names, now: Survey, world: World) -> Op | None:
    return Op("root_away", count=rng.randint(0, 800))


def gen_dir_exchange(rng: random.Random, names: Names, now: Survey, world: World) -> Op | None:
    """A directory holding 1-12 files, exchanged with a symlink to a directory outside root."""
    pool = [d for d in now.dirs
            if 0 < sum(1 for f in now.files if f.startswith(d + "/")) <= 12]
    if not pool:
        return None
    # dest: where the symlink is made, beside the directory (a writer in root) or outside root.
    return Op("dir_exchange", rng.choice(pool), rng.choice(["beside", "outside"]),
              cseed=_cseed(rng), count=rng.randint(50, 1500))


def gen_fifo_swap(rng: random.Random, names: Names, now: Survey, world: World) -> Op | None:
    """A FIFO renamed over a regular file for a moment, then a regular file again."""
    target = _file(rng, now)
    if target is None:
        return None
    return Op("fifo_swap", target, size=sample_size(rng), cseed=_cseed(rng),
              count=rng.randint(100, 1500))


def gen_deep_tree(rng: random.Random, names: Names, now: Survey, world: World) -> Op | None:
    """A chain of ~300 one-character directories with a file at the bottom (twice at most)."""
    if world.deep >= 2:
        return None
    world.deep += 1
    parent = rng.choice([p for p in now.parents() if p.count("/") < 3])
    # Named by its own counter: a draw of the shared name counter would renumber later names.
    return Op("deep_tree", join(parent, f"deep{world.deep}"), size=rng.randint(0, 20_000),
              cseed=_cseed(rng), count=rng.randint(280, 320))


def gen_remote_delete(rng: random.Random, names: Names, now: Survey, world: World) -> Op | None:
    """Our remote copy of a local file deleted by someone else (REMOTE: the runner applies it)."""
    rules = IgnoreRules.load(world.root)
    pool = [f for f in now.files if not rules.ignored(f, is_dir=False)]
    return Op("remote_delete", rng.choice(pool)) if pool else None


def gen_short_listing(rng: random.Random, names: Names, now: Survey, world: World) -> Op | None:
    """For ``count`` ms (more than one reconcile interval) every page listing is cut short,
    in mode ``dest``, while the operations go on (REMOTE)."""
    if world.short_listings >= 2:
        return None
    world.short_listings += 1
    return Op("short_listing", dest=rng.choice(["empty", "unmarked"]),
              count=rng.randint(3500, 6000))


GENERATORS: dict[str, tuple[float, Gen]] = {
    "create": (14, gen_create),
    "append": (8, gen_append),
    "overwrite": (8, gen_overwrite),
    "truncate": (4, gen_truncate),
    "touch": (3, gen_touch),
    "delete": (7, gen_delete),
    "rename": (7, gen_rename),
    "swap": (1, gen_swap),
    "mkdir": (3, gen_mkdir),
    "rmtree": (2, gen_rmtree),
    "rename_dir": (4, gen_rename_dir),
    "move_out": (2, gen_move_out),
    "move_in": (3, gen_move_in),
    "atomic": (8, gen_atomic),
    "burst": (3, gen_burst),
    "grow": (2, gen_grow),
    "chmod": (2, gen_chmod),
    "symlink": (3, gen_symlink),
    "fifo": (1, gen_fifo),
    "oversize": (1, gen_oversize),
    "file_to_dir": (1, gen_file_to_dir),
    "root_away": (0.5, gen_root_away),
}

# The operations that found issue 10's bugs, drawn from their own random stream
# (``World.extra``): whether an operation is one of them, and everything about it, never
# shifts the main stream, so a seed's other operations stay what they were before these were
# added (until one of these changes the folder's listing: a deep tree adds a directory).
EXTRA_SHARE = 0.06
EXTRA_GENERATORS: dict[str, tuple[float, Gen]] = {
    "dir_exchange": (1.5, gen_dir_exchange),
    "fifo_swap": (1, gen_fifo_swap),
    "deep_tree": (1, gen_deep_tree),
    "remote_delete": (1.5, gen_remote_delete),
    "short_listing": (0.7, gen_short_listing),
}


# --- application --------------------------------------------------------------------------------


def _write(path: Path, data: bytes, mode: str = "wb") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, mode) as fh:
        fh.write(data)


def do_create(world: World, op: Op) -> None:
    _write(world.path(op.path), content(op.cseed, op.size))


def do_append(world: World, op: Op) -> None:
    with open(world.path(op.path), "ab") as fh:
        fh.write(content(op.cseed, op.size))


def do_truncate(world: World, op: Op) -> None:
    os.truncate(world.path(op.path), op.size)


def do_touch(world: World, op: Op) -> None:
    os.utime(world.path(op.path))


def do_delete(world: World, op: Op) -> None:
    os.unlink(world.path(op.path))


def do_rename(world: World, op: Op) -> None:
    dest = world.path(op.dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    os.replace(world.path(op.path), dest)


def do_swap(world: World, op: Op) -> None:
    a, b = world.path(op.path), world.path(op.dest)
    tmp = a.with_name(a.name + ".swap-tmp")
    os.rename(a, tmp)
    os.rename(b, a)
    os.rename(tmp, b)


def do_mkdir(world: World, op: Op) -> None:
    world.path(op.path).mkdir(parents=True, exist_ok=True)


def do_rmtree(world: World, op: Op) -> None:
    shutil.rmtree(world.path(op.path))


def do_rename_dir(world: World, op: Op) -> None:
    os.rename(world.path(op.path), world.path(op.dest))


def do_move_out(world: World, op: Op) -> None:
    os.rename(world.path(op.path), world.outside / op.dest)


def do_move_in(world: World, op: Op) -> None:
    dest = world.path(op.dest)
    if os.path.lexists(dest):
        raise FileExistsError(17, "destination exists")
    os.rename(world.outside / op.path, dest)


def do_atomic(world: World, op: Op) -> None:
    """An editor-style save of ``op.path`` in style ``op.dest``."""
    path = world.path(op.path)
    data = content(op.cseed, op.size)
    path.parent.mkdir(parents=True, exist_ok=True)
    style = op.dest
    if style == "vim":
        _vim_save(path, data)
    elif style == "emacs":
        _emacs_save(path, data)
    elif style == "office":
        lock = path.with_name(f".~lock.{path.name}#")
        owner = path.with_name(f"~${path.name}")
        lock.write_bytes(b"lock")
        owner.write_bytes(b"owner")
        _replace_via(path, path.with_name(f"{path.name}.tmp"), data)
        lock.unlink()
        owner.unlink()
    else:
        temp = {
            "tmp": f"{path.name}.tmp",
            "rsync": f".{path.name}.A1b2C3",
            "gedit": ".goutputstream-X7Y8Z9",
        }[style]
        _replace_via(path, path.with_name(temp), data)


def _replace_via(path: Path, temp: Path, data: bytes) -> None:
    with open(temp, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(temp, path)


def _vim_save(path: Path, data: bytes) -> None:
    probe = path.with_name("4913")
    probe.write_bytes(b"")
    probe.unlink()
    swap = path.with_name(f".{path.name}.swp")
    swap.write_bytes(b"swap" * 256)
    backup = path.with_name(path.name + "~")
    if path.exists():
        os.rename(path, backup)
    path.write_bytes(data)
    backup.unlink(missing_ok=True)
    swap.unlink()


def _emacs_save(path: Path, data: bytes) -> None:
    lock = path.with_name(f".#{path.name}")
    os.symlink("user@host.1234:1", lock)
    if path.exists():
        shutil.copy2(path, path.with_name(path.name + "~"))
    path.write_bytes(data)
    lock.unlink()


def do_burst(world: World, op: Op) -> None:
    """Rewrite one file ``count`` times in quick succession."""
    path = world.path(op.path)
    for i in range(op.count):
        _write(path, content(op.cseed + i, max(0, op.size - i * 7)))
        time.sleep(0.003 * (i % 3))


def do_grow(world: World, op: Op) -> None:
    """A file still being written: ``count`` appends over a second or two."""
    path = world.path(op.path)
    path.parent.mkdir(parents=True, exist_ok=True)
    chunk = content(op.cseed, op.size // op.count + 1)
    with open(path, "ab") as fh:
        for i in range(op.count):
            fh.write(chunk)
            fh.flush()
            time.sleep(0.05 + 0.01 * (i % 10))


def do_chmod(world: World, op: Op) -> None:
    os.chmod(world.path(op.path), op.count)


def do_symlink(world: World, op: Op) -> None:
    link = world.path(op.path)
    link.parent.mkdir(parents=True, exist_ok=True)
    os.symlink(op.dest, link)


def do_fifo(world: World, op: Op) -> None:
    world.path(op.path).parent.mkdir(parents=True, exist_ok=True)
    os.mkfifo(world.path(op.path))


def do_file_to_dir(world: World, op: Op) -> None:
    """A file replaced by a directory of the same name, holding one file."""
    path = world.path(op.path)
    os.unlink(path)
    path.mkdir()
    _write(path / op.dest, content(op.cseed, op.size))


def do_root_away(world: World, op: Op) -> None:
    """The root renamed away for a moment (an unmount, a careless mv), then back."""
    away = world.root.with_name(world.root.name + ".away")
    os.rename(world.root, away)
    try:
        time.sleep(op.count / 1000)
    finally:
        os.rename(away, world.root)


def outside_content(tag: str, n: int, rel: str, size: int) -> bytes:
    """Unique, marked content for file ``rel`` of outside directory ``n``: at least ``size``
    bytes (exactly when ``size`` is longer than the header)."""
    head = OUTSIDE_MARK + f"{tag}:{n}:".encode() + os.fsencode(rel) + b"\n"
    body = b"outside root, never to be uploaded\n" * (size // 35 + 1)
    return head + body[:max(0, size - len(head))]


def _files_under(top: Path) -> list[str]:
    """Regular files under ``top`` (relative, sorted), without following links."""
    found = Survey()
    _survey_dir(top, "", found)
    return sorted(found.files, key=os.fsencode)


def do_dir_exchange(world: World, op: Op) -> None:
    """Exchange directory ``op.path`` with a symlink to a directory outside root for
    ``op.count`` ms, then exchange them back (``renameat2(RENAME_EXCHANGE)``).

    First a few of its files are appended to, so they are queued when the exchange happens.
    The outside directory holds a file for each of them, same relative name, same size and
    mtime, with outside-marked content: a reader that follows the link gets bytes that can
    never exist inside root.
    """
    d = world.path(op.path)
    rng = random.Random(op.cseed)
    files = _files_under(d)
    for i, rel in enumerate(files[:3]):
        with open(d / rel, "ab") as fh:
            fh.write(content(op.cseed + i, rng.randint(1, 100)))
    outside = world.stage("outside-dir")
    n = world.staged
    outside.mkdir()
    for rel in files:
        info = os.lstat(d / rel)
        if info.st_size > world.limit:
            continue
        data = outside_content(world.tag, n, rel, info.st_size)
        (outside / rel).parent.mkdir(parents=True, exist_ok=True)
        (outside / rel).write_bytes(data)
        os.utime(outside / rel, ns=(info.st_atime_ns, info.st_mtime_ns))
        world.outside_shas.add(hashlib.sha256(data).hexdigest())
    link = d.with_name(f".xchg{n}") if op.dest == "beside" else world.stage("link")
    os.symlink(outside, link)
    try:
        atomic = exchange(d, link)
        try:
            time.sleep(op.count / 1000)
        finally:
            exchange(d, link, atomic)
    finally:
        os.unlink(link)


_AT_FDCWD = -100
_RENAME_EXCHANGE = 2
_SYS_RENAMEAT2 = {"x86_64": 316, "aarch64": 276}


def _renameat2(a: Path, b: Path) -> int:
    """``renameat2(AT_FDCWD, a, AT_FDCWD, b, RENAME_EXCHANGE)``: 0, or the errno."""
    libc = ctypes.CDLL(None, use_errno=True)
    args = (ctypes.c_int(_AT_FDCWD), os.fsencode(a), ctypes.c_int(_AT_FDCWD), os.fsencode(b),
            ctypes.c_uint(_RENAME_EXCHANGE))
    if hasattr(libc, "renameat2"):
        result = libc.renameat2(*args)
    elif platform.machine() in _SYS_RENAMEAT2:
        result = libc.syscall(ctypes.c_long(_SYS_RENAMEAT2[platform.machine()]), *args)
    else:
        return errno.ENOSYS
    return 0 if result == 0 else ctypes.get_errno()


def exchange(a: Path, b: Path, atomic: bool | None = None) -> bool:
    """Swap the names ``a`` and ``b``; True if it was atomic. Where the kernel or the file
    system cannot (``atomic=False``, or ENOSYS/EINVAL), a rename dance through a third name."""
    if atomic is not False:
        code = _renameat2(a, b)
        if code == 0:
            return True
        if code not in (errno.ENOSYS, errno.EINVAL, errno.EOPNOTSUPP):
            raise OSError(code, os.strerror(code), str(a))
    spare = b.with_name(b.name + ".dance")
    os.rename(a, spare)
    os.rename(b, a)
    os.rename(spare, b)
    return False


def do_fifo_swap(world: World, op: Op) -> None:
    """Rewrite ``op.path``, rename a FIFO over it a moment later, hold ``op.count`` ms, then
    rename a regular file with new content over the FIFO. A reader that opens the FIFO
    without O_NONBLOCK blocks forever: there is never a writer."""
    path = world.path(op.path)
    rng = random.Random(op.cseed)
    with open(path, "ab") as fh:
        fh.write(content(op.cseed, rng.randint(1, 100)))
    fifo = world.stage("fifo")
    os.mkfifo(fifo)
    time.sleep(rng.uniform(0, 0.15))  # around the settle time: a worker may be mid-upload
    os.replace(fifo, path)
    time.sleep(op.count / 1000)
    back = world.stage("file")
    back.write_bytes(content(op.cseed + 1, op.size))
    os.replace(back, path)


def do_deep_tree(world: World, op: Op) -> None:
    """``op.count`` nested one-character directories under ``op.path``, a file at the bottom."""
    rng = random.Random(op.cseed)
    chain = "/".join(rng.choice("abcdefghij") for _ in range(op.count))
    bottom = world.path(op.path) / chain / "bottom.txt"
    _write(bottom, content(op.cseed, op.size))


APPLY: dict[str, Callable[[World, Op], None]] = {
    "create": do_create,
    "append": do_append,
    "overwrite": do_create,
    "truncate": do_truncate,
    "touch": do_touch,
    "delete": do_delete,
    "rename": do_rename,
    "swap": do_swap,
    "mkdir": do_mkdir,
    "rmtree": do_rmtree,
    "rename_dir": do_rename_dir,
    "move_out": do_move_out,
    "move_in": do_move_in,
    "atomic": do_atomic,
    "burst": do_burst,
    "grow": do_grow,
    "chmod": do_chmod,
    "symlink": do_symlink,
    "fifo": do_fifo,
    "file_to_dir": do_file_to_dir,
    "root_away": do_root_away,
    "dir_exchange": do_dir_exchange,
    "fifo_swap": do_fifo_swap,
    "deep_tree": do_deep_tree,
}
