"""The watcher: a watchdog observer whose handler only marks paths dirty.

Events are hints. A moved file marks both ends; a deleted or moved directory marks every journal
row under it; a new directory is walked (files may land in it before its watch exists). When the
kernel refuses watches, the exact sysctl fix is logged and syncd runs on periodic scans alone.
When the kernel's event queue overflows, watchdog re-adds its watches; the watcher asks for one
rescan, which finds what the lost events said.
"""

from __future__ import annotations

import errno
import os
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import structlog
from watchdog.events import (
    DirCreatedEvent,
    DirDeletedEvent,
    DirMovedEvent,
    FileClosedEvent,
    FileCreatedEvent,
    FileDeletedEvent,
    FileModifiedEvent,
    FileMovedEvent,
    FileSystemEvent,
    FileSystemEventHandler,
)
from watchdog.observers.api import (
    DEFAULT_EMITTER_TIMEOUT,
    BaseObserver,
    EventQueue,
    ObservedWatch,
)
from watchdog.observers.inotify import InotifyEmitter, InotifyObserver, InotifyWatchGroup
from watchdog.observers.inotify_c import InotifyFD

from syncd.local.openwrites import OpenWrites

log = structlog.get_logger("syncd.watcher")
# watchdog warns when a new directory's watch is added twice (its own walk and the directory's
# event both add it, once per level of a deep tree): harmless, and noise in the service log.
warnings.filterwarnings("ignore", message="Callback with id .* already exists",
                        category=RuntimeWarning, module="watchdog")
# What the kernel is asked to report. Opens, reads and closes without a write are not: every
# file syncd itself reads (each directory of its path too) would report them, flood inotify's
# queue in a deep or large tree, and after the overflow watchdog's re-walk marks everything
# again: a loop that never settles.
WATCHED_EVENTS = (
    FileCreatedEvent, DirCreatedEvent, FileDeletedEvent, DirDeletedEvent,
    FileMovedEvent, DirMovedEvent, FileModifiedEvent, FileClosedEvent,
)
# A directory's "modified" only says its entries changed; the entries' own events say which.
IGNORED_EVENTS = frozenset({"opened", "closed_no_write"})

SYSCTL_FIX = {
    errno.ENOSPC: (
        "inotify watch limit reached: run `sudo sysctl fs.inotify.max_user_watches=524288` and "
        "persist it in /etc/sysctl.d/90-syncd.conf; running on periodic scans only"
    ),
    errno.EMFILE: (
        "inotify instance limit reached: run `sudo sysctl fs.inotify.max_user_instances=512` "
        "and persist it in /etc/sysctl.d/90-syncd.conf; running on periodic scans only"
    ),
}

OVERFLOW_REASON = "inotify queue overflowed"
QUEUE_FIX = (
    "run `sudo sysctl fs.inotify.max_queued_events=65536` and persist it in "
    "/etc/sysctl.d/90-syncd.conf"
)


class Hints:
    """Where the handler sends what it saw."""

    def __init__(
        self,
        mark: Callable[[str], None],
        mark_under: Callable[[str], None],
        rescan: Callable[[str], None],
        writes: OpenWrites | None = None,
    ) -> None:
        self.mark = mark  # a file path relative to root
        self.mark_under = mark_under  # a directory: every journal row below it
        self.rescan = rescan  # something suspicious happened: reason
        self.writes = writes  # files open for writing: held until closed


class _Handler(FileSystemEventHandler):
    def __init__(self, root: Path, hints: Hints) -> None:
        self._root = os.fsdecode(root)
        self._hints = hints

    def _rel(self, raw: str | bytes) -> str | None:
        path = os.fsdecode(raw)
        if path == self._root:
            return ""
        if not path.startswith(self._root + os.sep):
            return None
        return path[len(self._root) + 1 :]

    def on_any_event(self, event: FileSystemEvent) -> None:
        """Mark what ``event`` may have changed. Whatever goes wrong (the journal unreadable
        for ``mark_under``, a bug) is logged and answered with a rescan: the observer thread
        must not die of one event, and the rescan finds what the event meant."""
        try:
            self._handle(event)
        except Exception as exc:
            log.warning("watcher event failed; rescanning", error=repr(exc),
                        kind=event.event_type)
            self._hints.rescan("a watcher event could not be handled")

    def _handle(self, event: FileSystemEvent) -> None:
        if event.event_type in IGNORED_EVENTS or (
            event.is_directory and event.event_type == "modified"
        ):
            return
        src = self._rel(event.src_path)
        dest = self._rel(event.dest_path) if event.dest_path else None
        if src == "" or dest == "":
            self._hints.rescan("the root itself changed")
            return
        if event.is_directory:
            self._directory(event.event_type, src, dest)
            return
        self._track_writes(event.event_type, src)
        for rel in (src, dest):
            if rel:
                self._hints.mark(rel)

    def _track_writes(self, kind: str, src: str | None) -> None:
        """A write opens a hold on the file; a close after writing (or its end) releases it.
        A creation does not: watchdog also reports files it finds under a new directory as
        created, with no close to follow (once per level of a deep tree), and a writer that
        stalls has written something first, or its file is empty."""
        writes = self._hints.writes
        if writes is None or not src:
            return
        if kind == "modified":  # IN_MODIFY: watchdog reports attribute changes apart
            writes.written(src)
        elif kind in ("closed", "deleted", "moved"):  # closed after writing, or gone
            writes.closed(src)

    def _directory(self, kind: str, src: str | None, dest: str | None) -> None:
        if src and kind in ("deleted", "moved"):
            self._hints.mark_under(src)
        # A created directory is not walked here: watchdog adds its watch, walks it itself and
        # reports every file and directory already in it as created, so a tree N deep walked
        # again at every level cost N^2 listings (minutes for a few hundred levels).
        if kind == "moved" and dest:
            self._walk_new(dest)
        elif kind == "moved" and src and dest is None:
            self._hints.rescan(f"directory {src} moved out of root")

    def _walk_new(self, rel_dir: str) -> None:
        """Files can land in a new directory before its watch is added: look at all of them."""
        base = Path(self._root) / rel_dir
        if base.is_symlink():
            return  # watchdog reports a link to a directory as one; it is never followed
        for dirpath, _dirs, files in os.walk(base):
            rel_base = os.path.relpath(dirpath, self._root)
            for name in files:
                self._hints.mark(f"{rel_base}/{name}")


def overflow_hint(hints: Hints) -> Callable[[], None]:
    """What an inotify queue overflow does: one warning with the fix, and a rescan request.
    The daemon keeps one pending request, so overflows before the loop's next turn cost one
    scan between them."""

    def overflowed() -> None:
        log.warning("inotify queue overflowed: events were lost; rescanning", fix=QUEUE_FIX)
        hints.rescan(OVERFLOW_REASON)

    return overflowed


@dataclass
class _OverflowWatchGroup(InotifyWatchGroup):
    """watchdog's watches on one tree; after an overflow (watchdog has dropped what it held
    and re-added the watches) it also calls ``on_overflow``: re-adding the watches does not
    bring back what the lost events said."""

    on_overflow: Callable[[], None] = field(default=lambda: None, kw_only=True)

    def on_queue_overflow(self) -> None:
        super().on_queue_overflow()
        if self.is_active:  # not once the watcher is stopping
            self.on_overflow()


class OverflowEmitter(InotifyEmitter):
    """watchdog's inotify emitter whose watch group reports queue overflows to
    ``on_overflow`` (called on watchdog's inotify reader thread)."""

    def __init__(
        self,
        event_queue: EventQueue,
        watch: ObservedWatch,
        *,
        timeout: float = DEFAULT_EMITTER_TIMEOUT,
        event_filter: list[type[FileSystemEvent]] | None = None,
        inotify_fd: InotifyFD | None = None,
        on_overflow: Callable[[], None] = lambda: None,
    ) -> None:
        super().__init__(event_queue, watch, timeout=timeout, event_filter=event_filter,
                         inotify_fd=inotify_fd)
        self._on_overflow = on_overflow

    def on_thread_start(self) -> None:
        """InotifyEmitter's, with the watch group that reports overflows."""
        self._inotify = _OverflowWatchGroup(
            self._inotify_fd,
            os.fsencode(self.watch.path),
            is_recursive=self.watch.is_recursive,
            event_mask=self.get_event_mask_from_filter(),
            follow_symlink=self.watch.follow_symlink,
            on_overflow=self._on_overflow,
        )


class Observer(InotifyObserver):
    """watchdog's inotify observer, building :class:`OverflowEmitter` emitters (its own
    constructor names its emitter class; the rest, stopping included, is inherited)."""

    def __init__(self, on_overflow: Callable[[], None]) -> None:
        self._inotify_fd = InotifyFD()
        self._inotify_fd.start()
        BaseObserver.__init__(self, OverflowEmitter, inotify_fd=self._inotify_fd,
                              on_overflow=on_overflow)

    def reader_alive(self) -> bool:
        """True while the inotify reader thread runs: it reads the fd and feeds every emitter,
        so when an exception ends it, events stop while every other thread looks alive."""
        return self._inotify_fd.is_alive()


def start_watcher(root: Path, hints: Hints) -> BaseObserver | None:
    """Start watching ``root`` recursively; None (with the fix logged) if the kernel refuses
    (an inotify instance: the observer's construction; the watches: its start)."""
    observer: BaseObserver | None = None
    try:
        observer = Observer(overflow_hint(hints))
        observer.schedule(_Handler(root, hints), os.fsdecode(root), recursive=True,
                          event_filter=list(WATCHED_EVENTS))
        observer.start()
    except OSError as exc:
        stop_watcher(observer)  # its inotify instance and reader thread: retried every minute
        message = SYSCTL_FIX.get(exc.errno or 0, f"cannot watch {root}: {exc}; scans only")
        log.error("watcher unavailable", reason=message)
        return None
    log.info("watching", root=str(root))
    return observer


def watcher_alive(observer: BaseObserver) -> bool:
    """True while the observer thread, every emitter thread it runs and the inotify reader
    thread are alive: an emitter or the reader killed by an exception leaves the observer
    running with nothing to dispatch."""
    reader = observer.reader_alive() if isinstance(observer, Observer) else True
    return (observer.is_alive() and reader
            and all(emitter.is_alive() for emitter in observer.emitters))


def stop_watcher(observer: BaseObserver | None, timeout: float = 5.0) -> None:
    """Stop the observer thread (bounded)."""
    if observer is None:
        return
    try:
        observer.stop()
    except Exception as exc:  # watchdog's emitter can trip over a path exchanged under it
        log.warning("watcher did not stop cleanly", error=repr(exc))
    if observer.ident is not None:  # one refused at start never ran
        observer.join(timeout=timeout)
