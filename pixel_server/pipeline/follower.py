"""Reading a write-ahead log that another process appends to.

In the multi-process layout each ingest worker owns the log under
``<data>/wal/w<K>``; the storage process follows it with a
:class:`LogFollower` (docs/architecture.md §8). The follower sees the files,
not the writer's memory, so:

* it reads every complete, checksummed record in the segment files, durable
  or not yet fsynced (a record the worker had not acknowledged may reach the
  storage log; that is allowed, a lost acknowledged one is not);
* a bad or incomplete record in the newest segment may still be being
  written: it waits. In an older segment the writer has moved on (after a
  crash it truncated a torn tail and started a new segment), so the rest of
  that segment is skipped, the same rule the writer's own readers follow;
* its committed offset goes to ``readers/<name>.offset`` in the log
  directory, in the writer's format; the writer picks it up with
  :meth:`~pixel_server.pipeline.wal.WriteAheadLog.adopt_commits` to delete
  the segments passed. No pending ranges are kept: the caller makes replays
  idempotent (the sequencer drops copies it has already appended).

Blocking methods, for one thread at a time.
"""

from __future__ import annotations

import contextlib
import logging
import os
from pathlib import Path
from typing import NamedTuple

from pixel_server.pipeline.wal import (
    HEADER_SIZE,
    Position,
    parse_records,
    read_committed,
    segment_file,
    segments_in,
    write_committed,
)

logger = logging.getLogger("pixel_server.wal")


class Followed(NamedTuple):
    records: list[bytes]
    end: Position  # pass to ``LogFollower.commit`` once the records are safe downstream


class LogFollower:
    def __init__(self, directory: Path, name: str, *, fsync: bool = True) -> None:
        self.directory = directory
        self.name = name
        self._fsync = fsync
        (directory / "readers").mkdir(parents=True, exist_ok=True)
        self._committed = read_committed(directory, name)
        self._cursor = self._committed

    @property
    def committed(self) -> Position:
        return self._committed

    def read(self, max_records: int = 5000, max_bytes: int = 4 << 20) -> Followed | None:
        """Complete records after the cursor (one segment at most), or None."""
        segments = segments_in(self.directory)
        while True:
            cursor = self._cursor
            if cursor.segment not in segments:
                later = [n for n in segments if n > cursor.segment]
                if not later:
                    return None
                self._cursor = cursor = Position(later[0], 0)
            try:
                size = segment_file(self.directory, cursor.segment).stat().st_size
            except FileNotFoundError:
                segments = segments_in(self.directory)
                continue
            newest = cursor.segment == segments[-1]
            available = size - cursor.offset
            if available > 0:
                data = self._pread(cursor, min(available, max(max_bytes, HEADER_SIZE)))
                payloads, consumed, problem = parse_records(data, max_records)
                if not payloads and problem == "incomplete" and len(data) < available:
                    payloads, consumed, problem = parse_records(self._pread(cursor, available), 1)
                if payloads:
                    self._cursor = Position(cursor.segment, cursor.offset + consumed)
                    return Followed(payloads, self._cursor)
                if not newest:
                    logger.warning(
                        "wal: %s: unreadable record in segment %d at offset %d (%s) of a "
                        "segment its writer has left; skipping the rest of it",
                        self.directory,
                        cursor.segment,
                        cursor.offset,
                        problem,
                    )
            if newest:
                return None
            self._cursor = Position(segments[segments.index(cursor.segment) + 1], 0)

    def commit(self, position: Position) -> None:
        """Durably record that everything before ``position`` is safe downstream."""
        if position <= self._committed:
            return
        write_committed(self.directory, self.name, position, self._fsync)
        self._committed = position

    def rewind(self, position: Position | None = None) -> None:
        """Read again from ``position`` (by default the committed offset)."""
        self._cursor = self._committed if position is None else position

    def backlog_bytes(self) -> int:
        """Bytes in the segment files after the committed offset."""
        total = 0
        for number in segments_in(self.directory):
            if number < self._committed.segment:
                continue
            with contextlib.suppress(FileNotFoundError):
                size = segment_file(self.directory, number).stat().st_size
                start = self._committed.offset if number == self._committed.segment else 0
                total += max(0, size - start)
        return total

    def _pread(self, cursor: Position, size: int) -> bytes:
        fd = os.open(segment_file(self.directory, cursor.segment), os.O_RDONLY)
        try:
            return os.pread(fd, size, cursor.offset)
        finally:
            os.close(fd)
