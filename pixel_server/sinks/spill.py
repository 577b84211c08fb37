"""The forwarder's durable retry store: one pixel's events on disk, in chunks.

When a pixel's TikTok endpoint fails or falls behind, its events move here so
that they stop holding memory and stop holding back the forwarder's offset in
the write-ahead log (every other pixel's events keep flowing, and log segments
can be deleted). The pixel's lane later sends them from here, oldest first.

Layout: ``<root>/<pixel_id>/<time_ns>-<random>.chunk``. A chunk holds at most
one request's worth of events (1,000) as WAL-framed records (length, crc32,
payload), each a :class:`SpillEntry`. A chunk is a unit of work: the lane takes
one, sends it, and then removes it, or atomically rewrites it with the events
that still need a retry (so a crash never leaves an event both in the old and
in the new form). Files are written by this process only; ``write_chunk``
(used by ``deliveries replay``) writes under a temporary name and renames, so
a scanner never sees half a chunk.

A torn tail after a crash is cut at the last good record (``iter_records``):
those events were not yet fsynced, so the forwarder had not counted them as
safe and reads them from the log again.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import time
from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

import msgspec

from pixel_server.atomic import fsync_dir, replace_file
from pixel_server.pipeline.wal import encode_records, iter_records

SUFFIX: Final = ".chunk"
CHUNK_EVENTS: Final = 1000


class SpillEntry(msgspec.Struct, array_like=True, gc=False):
    """One spilled event: its stored record and how often it was sent already."""

    attempts: int
    record: bytes  # ``pipeline.record.encode`` output
    # Where the record sits in the write-ahead log (-1: not from the log, e.g. a
    # replay). After a crash, entries the log's committed offset had not passed
    # yet are dropped: the log hands those events out again.
    origin_segment: int = -1
    origin_offset: int = -1


_ENCODER: Final = msgspec.msgpack.Encoder()
_DECODER: Final = msgspec.msgpack.Decoder(SpillEntry)


REPLAY_TAG: Final = "-replay-"


def chunk_name(replay: bool = False) -> str:
    """Sorts by creation time; the random part keeps two writers apart."""
    tag = REPLAY_TAG if replay else "-"
    return f"{time.time_ns():020d}{tag}{secrets.token_hex(4)}{SUFFIX}"


def _encode(entries: Iterable[SpillEntry]) -> bytes:
    return encode_records([_ENCODER.encode(e) for e in entries])


def write_chunk(
    directory: Path,
    entries: Sequence[SpillEntry],
    *,
    fsync: bool = True,
    replay: bool = False,
    name: str | None = None,
) -> Path:
    """Write a complete chunk atomically (temporary name, fsync, rename).

    ``replay`` marks dead letters queued again: for those, only a ``sent``
    ledger row means "done" (they are ``dead`` on the ledger by definition).
    ``name``: a fixed file name (the backfill's, so writing a part again
    replaces it); by default a new one.
    """
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / (name or chunk_name(replay))
    replace_file(path, _encode(entries), fsync=fsync)
    return path


def read_chunk(path: Path) -> list[SpillEntry]:
    """The good entries of a chunk file (stops at a torn tail)."""
    try:
        return [_DECODER.decode(r) for r in iter_records(path)]
    except FileNotFoundError:
        return []


@dataclass(eq=False)
class Chunk:
    path: Path
    bytes: int = 0
    events: int = 0  # -1 while unknown (found on disk, not read yet)
    found: bool = False  # on disk before we knew it: written before a restart or by a replay
    replay: bool = False  # dead letters queued again by `deliveries replay`


@dataclass
class PixelSpill:
    """One pixel's chunks. Not thread-safe: the forwarder's event loop owns it."""

    directory: Path
    fsync: bool = True
    chunk_events: int = CHUNK_EVENTS
    _ready: deque[Chunk] = field(default_factory=deque)  # oldest first
    _open: Chunk | None = None
    _fd: int | None = None
    _dirty: bool = False
    _known: set[str] = field(default_factory=set)  # every chunk file we own
    in_flight: int = 0  # chunks taken and not yet put back, rewritten or done
    bytes: int = 0  # of queued and open chunks (read by metrics from other threads)

    # ---------------------------------------------------------------- state

    @property
    def backlog(self) -> bool:
        """True while anything is spilled (queued, open or being sent)."""
        return bool(self._ready) or self._open is not None or self.in_flight > 0

    @property
    def has_ready(self) -> bool:
        return bool(self._ready) or self._open is not None

    def size_bytes(self) -> int:
        return self.bytes

    # --------------------------------------------------------------- writing

    def append(self, entries: Iterable[SpillEntry]) -> None:
        """Add entries to the open chunk(s); durable only after :meth:`sync`."""
        pending = list(entries)
        while pending:
            if self._open is None:
                self.directory.mkdir(parents=True, exist_ok=True)
                chunk = Chunk(self.directory / chunk_name())
                self._known.add(chunk.path.name)
                self._fd = os.open(chunk.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
                self._open = chunk
            room = self.chunk_events - self._open.events
            part, pending = pending[:room], pending[room:]
            data = _encode(part)  # one write per chunk, not one per entry
            assert self._fd is not None
            view = memoryview(data)
            while view:
                view = view[os.write(self._fd, view) :]
            self._open.bytes += len(data)
            self._open.events += len(part)
            self.bytes += len(data)
            self._dirty = True
            if self._open.events >= self.chunk_events:
                self._seal()

    def sync(self) -> None:
        """Make everything appended so far durable."""
        if not self._dirty:
            return
        if self._fd is not None and self.fsync:
            os.fsync(self._fd)
        if self.fsync:
            fsync_dir(self.directory)  # new chunk files' directory entries
        self._dirty = False

    def _seal(self) -> None:
        if self._open is None:
            return
        assert self._fd is not None
        if self._dirty and self.fsync:
            os.fsync(self._fd)
            fsync_dir(self.directory)
        self._dirty = False
        os.close(self._fd)
        self._fd = None
        self._ready.append(self._open)
        self._open = None

    # --------------------------------------------------------------- reading

    def scan(self) -> int:
        """Adopt chunk files we did not write (a previous run, a replay); count them."""
        if not self.directory.is_dir():
            return 0
        found = sorted(
            p for p in self.directory.iterdir()
            if p.name.endswith(SUFFIX) and p.name not in self._known
        )  # fmt: skip
        for path in found:
            self._known.add(path.name)
            with contextlib.suppress(FileNotFoundError):
                size = path.stat().st_size
                self._ready.append(Chunk(path, size, -1, True, REPLAY_TAG in path.name))
                self.bytes += size
        if found:
            self._ready = deque(sorted(self._ready, key=lambda c: c.path.name))
        return len(found)

    def take(self) -> tuple[Chunk, list[SpillEntry]] | None:
        """The oldest chunk and its entries, marked in flight (sealing the open one)."""
        if not self._ready:
            self.sync()
            self._seal()
        while self._ready:
            chunk = self._ready.popleft()
            self.bytes -= chunk.bytes
            entries = read_chunk(chunk.path)
            if not entries:  # empty or vanished: nothing to send
                self._forget(chunk)
                continue
            chunk.events = len(entries)
            self.in_flight += 1
            return chunk, entries
        return None

    def put_back(self, chunk: Chunk) -> None:
        """Give a taken chunk back untouched (it is sent first next time)."""
        self.in_flight -= 1
        self.bytes += chunk.bytes
        self._ready.appendleft(chunk)

    def rewrite(self, chunk: Chunk, entries: Sequence[SpillEntry]) -> None:
        """Atomically replace a taken chunk's content (events still to send)."""
        self.in_flight -= 1
        if not entries:
            self._forget(chunk)
            return
        data = _encode(entries)
        replace_file(chunk.path, data, fsync=self.fsync)
        chunk.bytes, chunk.events = len(data), len(entries)
        self.bytes += chunk.bytes
        self._ready.appendleft(chunk)

    def done(self, chunk: Chunk) -> None:
        """A taken chunk is finished; the caller removes its file with :meth:`remove`."""
        self.in_flight -= 1

    def remove(self, chunk: Chunk) -> None:
        self._forget(chunk)

    def _forget(self, chunk: Chunk) -> None:
        with contextlib.suppress(FileNotFoundError):
            chunk.path.unlink()
        self._known.discard(chunk.path.name)

    def close(self) -> None:
        """Make appended entries durable and close the open file (chunks stay)."""
        self.sync()
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
