"""Write-ahead log: "a 2xx means the event is on disk".

The ingest path appends each request's events here and answers only after an
fsync covering them; the ClickHouse loader and the TikTok forwarder read the log
independently, each with its own durably committed offset (docs/architecture.md §1).

On disk, under the directory given to :class:`WriteAheadLog`::

    00000000000000000042.log    segments, numbered, append-only
    readers/<name>.offset       each reader's committed offset (atomic rewrite)
    LOG_ID                      random id of this log, part of every batch id
    LOCK                        flock: one process per log directory

A segment is a sequence of records, each ``<u32 length LE><u32 crc32 LE><payload>``.
Payloads are opaque, non-empty ``bytes`` (a zero length is treated as corruption,
because a zero-filled tail - common after power loss - would otherwise parse as
valid empty records: crc32(b"") == 0).

Threads and the event loop
--------------------------
* :meth:`WriteAheadLog.append` is a coroutine for the event loop. It frames the
  records and copies them into an in-memory buffer under a short lock (no system
  call on the loop); one committer thread writes that buffer to the segment file,
  fsyncs, and then wakes every append whose records it covered (group commit).
* :class:`LogReader` methods are blocking and meant for worker threads; one
  thread per reader at a time. ``reader.wait(timeout)`` sleeps until new durable
  records exist.

Recovery choices (on open)
--------------------------
* Every segment still needed by some reader is scanned and every record's length
  and CRC checked.
* A bad record that reaches the end of its file (truncated header, truncated
  payload, bad CRC on the last record, or a zero-filled tail) is a *torn tail*:
  the file is truncated at the last good record. Nothing there was acknowledged.
* A bad record followed by more data is *mid-segment corruption* (bit rot, a bad
  disk): the file is left as it is for forensics, readers skip the rest of that
  segment and continue with the next one. We cannot trust the framing after a
  bad record, and a wrong guess would hand garbage downstream.
* Either case is logged once per open on logger ``pixel_server.wal`` with the
  segment and offset. (A damaged length field looks like a torn write and is
  treated as one; the records after it are not delivered either way.)
* After recovery, appends go to a fresh segment (or to the last segment if it is
  empty), so we never write after bytes we had to distrust.

Batch ids and replays
---------------------
``Batch.batch_id`` is ``"<log id>/<segment>/<first offset>/<last offset>"``; the
loader uses it as ClickHouse's ``insert_deduplication_token``. The log id keeps
ids of different workers' logs apart. For the id to help after a crash, a
replayed batch must have the same boundaries as the first attempt, even if more
records became durable meanwhile: each reader therefore persists the ranges of
the batches it handed out but has not committed, and re-serves exactly those
ranges after ``rewind()`` or a reopen (ignoring the new ``max_records`` /
``max_bytes``).
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import json
import logging
import os
import re
import secrets
import struct
import threading
import time
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

from pixel_server.atomic import fsync_dir, replace_file

logger = logging.getLogger("pixel_server.wal")

_HEADER = struct.Struct("<II")
HEADER_SIZE = _HEADER.size
MAX_PAYLOAD_BYTES = 0xFFFF_FFFF
DEFAULT_SEGMENT_BYTES = 64 * 1024 * 1024
DEFAULT_MAX_BYTES = 4 * 1024 * 1024 * 1024

_SEGMENT_RE = re.compile(r"^(\d{20})\.log$")
_READER_NAME_RE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_SCAN_CHUNK = 4 * 1024 * 1024
_STATE_VERSION = 1


# --------------------------------------------------------------------------- types


class Position(NamedTuple):
    """Byte offset of the next record in a segment; orders like the log does."""

    segment: int
    offset: int

    def __str__(self) -> str:
        return f"{self.segment}:{self.offset}"

    @classmethod
    def parse(cls, text: str) -> Position:
        """Inverse of ``str(position)``."""
        segment, _, offset = text.partition(":")
        return cls(int(segment), int(offset))


class Backlog(NamedTuple):
    """How far a reader's committed offset is behind the durable end."""

    bytes: int
    records: int  # approximate: proportional within partly read segments


@dataclass(frozen=True, slots=True)
class Batch:
    """Consecutive durable records of one segment, as handed to a reader."""

    segment: int
    first_offset: int
    last_offset: int  # offset of the last record's header
    end: Position  # pass to ``LogReader.commit`` once the batch is safely downstream
    records: list[bytes]
    batch_id: str  # stable across rewinds and reopens; a ClickHouse dedup token


@dataclass(frozen=True, slots=True)
class WalStats:
    """Counters for metrics; all monotonic since open."""

    commits: int  # group commits: one write + fsync cycle each
    fsyncs: int  # os.fsync calls (segments and directory); 0 with fsync=False
    records: int  # records appended
    bytes: int  # framed bytes appended
    rejected_full: int  # appends refused with LogFull


class WalError(Exception):
    """The log cannot accept or serve records."""


class WalClosed(WalError):
    """The log was closed."""


class WalLocked(WalError):
    """Another process (or another open log object) holds the directory."""


class LogFull(WalError):
    """Accepting the append would exceed the disk budget; ask the client to retry."""

    def __init__(self, retry_after: float, size_bytes: int, max_bytes: int) -> None:
        super().__init__(
            f"write-ahead log full ({size_bytes} of {max_bytes} bytes); retry after {retry_after}s"
        )
        self.retry_after = retry_after


# ------------------------------------------------------------------- record codec


def encode_records(payloads: Sequence[bytes]) -> bytes:
    """Frame payloads as consecutive records (length, crc32, payload)."""
    parts: list[bytes] = []
    for payload in payloads:
        size = len(payload)
        if not 0 < size <= MAX_PAYLOAD_BYTES:
            raise ValueError(f"payload size {size} outside 1..{MAX_PAYLOAD_BYTES}")
        parts.append(_HEADER.pack(size, zlib.crc32(payload)))
        parts.append(payload)
    return b"".join(parts)


class _Parsed(NamedTuple):
    payloads: list[bytes]
    count: int
    consumed: int  # bytes of good records from the start of the buffer
    last_start: int  # buffer offset of the last good record, -1 if none
    problem: str | None  # None, "incomplete", "zero length" or "crc mismatch"


def _parse_records(buf: bytes, max_records: int, keep: bool) -> _Parsed:
    """Parse good records from the start of ``buf``; stop at the first problem."""
    view = memoryview(buf)
    size = len(buf)
    payloads: list[bytes] = []
    pos = count = 0
    last = -1
    problem: str | None = None
    while count < max_records:
        if size - pos < HEADER_SIZE:
            problem = "incomplete" if pos < size else None
            break
        length, crc = _HEADER.unpack_from(buf, pos)
        end = pos + HEADER_SIZE + length
        if length == 0:
            problem = "zero length"
            break
        if end > size:
            problem = "incomplete"
            break
        payload = view[pos + HEADER_SIZE : end]
        if zlib.crc32(payload) != crc:
            problem = "crc mismatch"
            break
        if keep:
            payloads.append(bytes(payload))
        last, pos = pos, end
        count += 1
    return _Parsed(payloads, count, pos, last, problem)


# ------------------------------------------------------------------ file helpers


def _segment_path(directory: Path, number: int) -> Path:
    return directory / f"{number:020d}.log"


def _write_all(fd: int, data: bytes | bytearray) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


def _pread_exact(fd: int, size: int, offset: int) -> bytes:
    chunks: list[bytes] = []
    while size > 0:
        chunk = os.pread(fd, size, offset)
        if not chunk:
            break  # shorter than expected; the parser reports it as incomplete
        chunks.append(chunk)
        size -= len(chunk)
        offset += len(chunk)
    return b"".join(chunks)


# ---------------------------------------------------------------------- recovery


@dataclass(slots=True)
class _Segment:
    number: int
    valid_bytes: int  # readers never read past this
    file_bytes: int  # counts against the disk budget (> valid if corrupt mid-file)
    records: int


class _Scan(NamedTuple):
    valid_bytes: int
    records: int
    bad_problem: str | None  # None when the whole file is good
    bad_record_end: int | None  # where the bad record claims to end, if known


def _scan_file(path: Path) -> _Scan:
    """Validate every record of a segment file, streaming in chunks."""
    file_bytes = path.stat().st_size
    valid = records = 0
    carry = b""
    with open(path, "rb", buffering=0) as f:
        while True:
            chunk = f.read(_SCAN_CHUNK)
            buf = carry + chunk if carry else chunk
            if not buf:
                return _Scan(valid, records, None, None)
            parsed = _parse_records(buf, max_records=1 << 62, keep=False)
            records += parsed.count
            carry = buf[parsed.consumed :]
            claimed_end = _claimed_end(carry, valid + parsed.consumed)
            valid += parsed.consumed
            if parsed.problem in ("zero length", "crc mismatch"):
                return _Scan(valid, records, parsed.problem, claimed_end)
            if parsed.problem == "incomplete" and (
                not chunk or (claimed_end is not None and claimed_end > file_bytes)
            ):
                return _Scan(valid, records, "incomplete", claimed_end)


def _claimed_end(buf: bytes, offset: int) -> int | None:
    """Where a record starting at ``offset`` (buffer start) says it ends."""
    if len(buf) < HEADER_SIZE:
        return None
    length, _ = _HEADER.unpack_from(buf, 0)
    return offset + HEADER_SIZE + length


def _is_zero_tail(path: Path, offset: int) -> bool:
    with open(path, "rb") as f:
        f.seek(offset)
        while chunk := f.read(_SCAN_CHUNK):
            if chunk.count(0) != len(chunk):
                return False
    return True


def _recover_segment(path: Path, number: int, fsync: bool) -> _Segment:
    """Scan one segment; truncate a torn tail, skip past mid-file corruption."""
    scan = _scan_file(path)
    file_bytes = path.stat().st_size
    segment = _Segment(number, scan.valid_bytes, file_bytes, scan.records)
    if scan.bad_problem is None:
        return segment
    torn = (
        scan.bad_problem == "incomplete"
        or scan.bad_record_end == file_bytes
        or _is_zero_tail(path, scan.valid_bytes)
    )
    if torn:
        logger.warning(
            "wal: torn record at the tail of segment %d, offset %d (%s); "
            "truncating %d unacknowledged bytes",
            number,
            scan.valid_bytes,
            scan.bad_problem,
            file_bytes - scan.valid_bytes,
        )
        with open(path, "r+b") as f:
            f.truncate(scan.valid_bytes)
            if fsync:
                os.fsync(f.fileno())
        segment.file_bytes = scan.valid_bytes
    else:
        logger.error(
            "wal: corrupt record in segment %d at offset %d (%s); skipping the remaining "
            "%d bytes of this segment (file kept for inspection)",
            number,
            scan.valid_bytes,
            scan.bad_problem,
            file_bytes - scan.valid_bytes,
        )
    return segment


# ------------------------------------------------------------ reader state files


class _ReaderState(NamedTuple):
    committed: Position
    pending: list[tuple[int, int, int]]  # (segment, first offset, end offset)


def _encode_state(state: _ReaderState) -> bytes:
    body = json.dumps(
        {
            "version": _STATE_VERSION,
            "committed": list(state.committed),
            "pending": [list(r) for r in state.pending],
        },
        separators=(",", ":"),
    ).encode()
    return body + b"\n" + f"{zlib.crc32(body):08x}".encode() + b"\n"


def _decode_state(data: bytes) -> _ReaderState:
    """Parse a reader state file; raise ValueError on any sign of corruption."""
    body, _, crc = data.rstrip(b"\n").rpartition(b"\n")
    if f"{zlib.crc32(body):08x}".encode() != crc:
        raise ValueError("checksum mismatch")
    obj = json.loads(body)
    if not isinstance(obj, dict):
        raise ValueError("not a JSON object")
    if obj.get("version") != _STATE_VERSION:
        raise ValueError(f"unknown version {obj.get('version')!r}")
    committed = Position(*_non_negative_ints(obj["committed"], 2))
    pending = [tuple(_non_negative_ints(r, 3)) for r in obj["pending"]]
    return _ReaderState(committed, pending)  # type: ignore[arg-type]


def _non_negative_ints(values: object, count: int) -> list[int]:
    if not isinstance(values, list) or len(values) != count:
        raise ValueError(f"expected {count} integers, got {values!r}")
    if not all(type(v) is int and v >= 0 for v in values):
        raise ValueError(f"expected non-negative integers, got {values!r}")
    return values


# ------------------------------------------- for readers in another process


def segments_in(directory: Path) -> list[int]:
    """Numbers of the segment files in a log directory, oldest first."""
    return sorted(int(m.group(1)) for p in directory.iterdir() if (m := _SEGMENT_RE.match(p.name)))


def segment_file(directory: Path, number: int) -> Path:
    return _segment_path(directory, number)


def parse_records(buf: bytes, max_records: int) -> tuple[list[bytes], int, str | None]:
    """Good records from the start of ``buf``: (payloads, bytes consumed, problem
    at the first bad one: None, "incomplete", "zero length" or "crc mismatch")."""
    parsed = _parse_records(buf, max_records, keep=True)
    return parsed.payloads, parsed.consumed, parsed.problem


def read_committed(directory: Path, name: str) -> Position:
    """A reader's committed offset as stored on disk (the start if none or unreadable)."""
    try:
        return _decode_state((directory / "readers" / f"{name}.offset").read_bytes()).committed
    except (FileNotFoundError, ValueError, KeyError, TypeError):
        return Position(0, 0)


def write_committed(directory: Path, name: str, position: Position, fsync: bool) -> None:
    """Store a reader's committed offset the way :class:`LogReader` does (no pending
    ranges: such a reader must make its replays idempotent itself)."""
    path = directory / "readers" / f"{name}.offset"
    replace_file(path, _encode_state(_ReaderState(position, [])), fsync=fsync)


# ------------------------------------------------------------------- the log


@dataclass(slots=True)
class _Waiter:
    end: Position
    loop: asyncio.AbstractEventLoop | None = None
    future: asyncio.Future[Position] | None = None
    event: threading.Event | None = None
    error: BaseException | None = None


@dataclass(slots=True)
class _Counters:
    commits: int = 0
    fsyncs: int = 0
    records: int = 0
    bytes: int = 0
    rejected_full: int = 0


@dataclass(slots=True)
class _Writer:
    """File descriptors owned by the committer thread."""

    segment: int = -1
    fd: int | None = None
    sealed: list[int] = field(default_factory=list)


class WriteAheadLog:
    """Segmented, group-committed, multi-reader write-ahead log.

    Opening recovers the directory (see the module docstring) and starts the
    committer thread; ``close()`` stops it. Use one instance per directory.
    """

    def __init__(
        self,
        directory: str | os.PathLike[str],
        readers: Sequence[str],
        *,
        segment_bytes: int = DEFAULT_SEGMENT_BYTES,
        max_bytes: int = DEFAULT_MAX_BYTES,
        commit_interval: float = 0.002,
        fsync: bool = True,
        retry_after: float = 5.0,
        new_segment_on_open: bool = False,
    ) -> None:
        _check_config(readers, segment_bytes, max_bytes, commit_interval)
        self._dir = Path(directory)
        self._segment_bytes = segment_bytes
        self._max_bytes = max_bytes
        self._commit_interval = commit_interval
        self._fsync = fsync
        self._retry_after = retry_after
        # A reader in another process (LogFollower) keeps its cursor in its own
        # memory: appends after a reopen must go to a number no one has read yet.
        self._new_segment_on_open = new_segment_on_open

        self._lock = threading.Lock()
        self._work = threading.Condition(self._lock)  # committer waits for appends
        self._data = threading.Condition(self._lock)  # readers wait for durable data
        self._segments: dict[int, _Segment] = {}
        self._active = 0
        self._held: int | None = None  # see hold_segments()
        self._durable = Position(0, 0)
        self._total_bytes = 0
        self._pending: list[tuple[int, bytearray]] = []
        self._waiters: list[_Waiter] = []
        self._counters = _Counters()
        self._closing = False
        self._closed = False
        self._failed: BaseException | None = None
        self._writer = _Writer()

        self._dir.mkdir(parents=True, exist_ok=True)
        (self._dir / "readers").mkdir(exist_ok=True)
        self._lock_fd = _acquire_dir_lock(self._dir)
        try:
            self.log_id = self._load_log_id()
            self._readers = {name: self._load_reader(name) for name in readers}
            self._recover()
        except BaseException:
            os.close(self._lock_fd)
            raise
        self._committer = threading.Thread(
            target=self._commit_loop, name=f"wal-commit:{self._dir}", daemon=True
        )
        self._committer.start()

    # ----------------------------------------------------------- public: writes

    async def append(self, payloads: Sequence[bytes]) -> Position:
        """Append one request's records contiguously; return once they are fsynced.

        Returns the position just past the last record. Raises ``LogFull`` when
        the disk budget would be exceeded (nothing is written then), ``WalClosed``
        after ``close()``, ``WalError`` if a write or fsync failed (the log then
        refuses further appends; reopen to recover). If the awaiting task is
        cancelled, the records may still become durable and reach the readers.
        """
        if not payloads:
            return self.durable_end
        frame = encode_records(payloads)
        loop = asyncio.get_running_loop()
        waiter = _Waiter(Position(0, 0), loop=loop, future=loop.create_future())
        self._enqueue(frame, len(payloads), waiter)
        assert waiter.future is not None
        return await waiter.future

    def append_blocking(self, payloads: Sequence[bytes]) -> Position:
        """``append`` for callers outside the event loop (CLI, tests); blocks."""
        if not payloads:
            return self.durable_end
        waiter = _Waiter(Position(0, 0), event=threading.Event())
        self._enqueue(encode_records(payloads), len(payloads), waiter)
        assert waiter.event is not None
        waiter.event.wait()
        if waiter.error is not None:
            raise _append_error(waiter.error)
        return waiter.end

    # ------------------------------------------------------------ public: state

    def reader(self, name: str) -> LogReader:
        """The reader named at construction (the same object on every call)."""
        return self._readers[name]

    @property
    def directory(self) -> Path:
        return self._dir

    @property
    def durable_end(self) -> Position:
        """Everything before this position is fsynced and visible to readers."""
        with self._lock:
            return self._durable

    @property
    def write_end(self) -> Position:
        """End of everything appended, durable or not yet."""
        with self._lock:
            return Position(self._active, self._segments[self._active].file_bytes)

    def size_bytes(self) -> int:
        """Bytes of all segment files, including records not yet written out."""
        with self._lock:
            return self._total_bytes

    @property
    def max_bytes(self) -> int:
        return self._max_bytes

    def segment_numbers(self) -> list[int]:
        """Segments currently kept (oldest first), the active one last."""
        with self._lock:
            return sorted(self._segments)

    def stats(self) -> WalStats:
        with self._lock:
            c = self._counters
            return WalStats(c.commits, c.fsyncs, c.records, c.bytes, c.rejected_full)

    # -------------------------------------------------------------- public: close

    def close(self) -> None:
        """Write out and fsync what was appended, stop the committer, close files.

        Blocking and idempotent. Pending appends complete before it returns.
        """
        with self._lock:
            if self._closing:
                already = True
            else:
                already = False
                self._closing = True
                self._work.notify_all()
        if already:
            self._committer.join()
            return
        self._committer.join()
        with self._lock:
            self._closed = True
            self._data.notify_all()
        self._close_writer_fds()
        for reader in self._readers.values():
            with reader._op_lock:  # let an in-flight read finish with its fd
                reader._close_fd()
        os.close(self._lock_fd)

    async def aclose(self) -> None:
        """``close()`` without blocking the event loop."""
        await asyncio.to_thread(self.close)

    def __enter__(self) -> WriteAheadLog:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def adopt_commits(self) -> None:
        """Take in readers' offsets committed by another process (the storage
        process reads a worker's log), then delete the segments they passed."""
        for reader in self._readers.values():
            stored = read_committed(self._dir, reader.name)
            with self._lock:
                if self._normalise(stored) > self._normalise(reader._committed):
                    reader._committed = reader._cursor = self._normalise(stored)
        self._apply_retention()

    # ---------------------------------------------------------- append internals

    def _enqueue(self, frame: bytes, count: int, waiter: _Waiter) -> None:
        """Buffer framed records for the committer; called on the caller's thread."""
        size = len(frame)
        with self._lock:
            self._check_writable_locked()
            if self._total_bytes + size > self._max_bytes:
                self._counters.rejected_full += 1
                raise LogFull(self._retry_after, self._total_bytes, self._max_bytes)
            active = self._segments[self._active]
            if active.file_bytes > 0 and active.file_bytes + size > self._segment_bytes:
                active = self._roll_locked()
            if self._pending and self._pending[-1][0] == active.number:
                self._pending[-1][1].extend(frame)
            else:
                self._pending.append((active.number, bytearray(frame)))
            active.file_bytes += size
            active.valid_bytes += size
            active.records += count
            self._total_bytes += size
            self._counters.records += count
            self._counters.bytes += size
            waiter.end = Position(active.number, active.file_bytes)
            self._waiters.append(waiter)
            self._work.notify()

    def _check_writable_locked(self) -> None:
        if self._closing:
            raise WalClosed("write-ahead log is closed")
        if self._failed is not None:
            raise WalError("write-ahead log failed earlier; reopen it") from self._failed

    def _roll_locked(self) -> _Segment:
        """Seal the active segment and start the next (its file is created lazily)."""
        self._active += 1
        segment = _Segment(self._active, 0, 0, 0)
        self._segments[self._active] = segment
        return segment

    # --------------------------------------------------------- committer thread

    def _commit_loop(self) -> None:
        while True:
            with self._lock:
                idle = not self._pending
                while not self._pending and not self._closing:
                    self._work.wait()
                if not self._pending:
                    return
            if idle and self._commit_interval > 0 and not self._closing:
                time.sleep(self._commit_interval)  # let concurrent requests join this fsync
            self._commit_once()

    def _commit_once(self) -> None:
        with self._lock:
            chunks, self._pending = self._pending, []
            waiters, self._waiters = self._waiters, []
            last = chunks[-1][0]
            end = Position(last, self._segments[last].file_bytes)
            error = self._failed
        sealed = False
        if error is None:
            try:
                sealed = self._write_chunks(chunks)
            except OSError as exc:
                logger.exception("wal: write or fsync failed; refusing further appends")
                error = exc
        with self._lock:
            if error is None:
                self._durable = end
                self._counters.commits += 1
            else:
                self._failed = error
            self._data.notify_all()
        _resolve_waiters(waiters, error)
        if sealed:
            self._apply_retention()

    def _write_chunks(self, chunks: list[tuple[int, bytearray]]) -> bool:
        """Write and fsync chunks in order; return True if a segment was sealed."""
        w = self._writer
        created = False
        for segment, data in chunks:
            if segment != w.segment:
                created |= self._open_for_write(segment)
            assert w.fd is not None
            _write_all(w.fd, data)
        fsyncs = 0
        if self._fsync:
            for fd in [*w.sealed, w.fd]:
                os.fsync(fd)
                fsyncs += 1
            if created:
                fsync_dir(self._dir)  # make the new segment's directory entry durable
                fsyncs += 1
        sealed = bool(w.sealed)
        for fd in w.sealed:
            os.close(fd)
        w.sealed.clear()
        with self._lock:
            self._counters.fsyncs += fsyncs
        return sealed

    def _open_for_write(self, segment: int) -> bool:
        """Switch the committer to ``segment``; return True if the file was created."""
        w = self._writer
        if w.fd is not None:
            w.sealed.append(w.fd)
        path = _segment_path(self._dir, segment)
        created = not path.exists()
        w.fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        w.segment = segment
        return created

    def _close_writer_fds(self) -> None:
        w = self._writer
        for fd in [*w.sealed, *([w.fd] if w.fd is not None else [])]:
            with contextlib.suppress(OSError):
                os.close(fd)
        w.sealed.clear()
        w.fd = None

    # ----------------------------------------------------------------- retention

    def hold_segments(self) -> None:
        """Keep the active segment and every later one, whatever the readers
        commit, until :meth:`release_segments`. The sequencer holds them while
        records it appended are not yet covered by its worker-log offsets, so
        that a replay after a crash still finds them here and is dropped."""
        with self._lock:
            if self._held is None:
                self._held = self._active

    def release_segments(self) -> None:
        with self._lock:
            self._held = None
        self._apply_retention()

    def _apply_retention(self) -> None:
        """Delete sealed segments that every reader's committed offset has passed."""
        with self._lock:
            floor = min(self._normalise(r._committed).segment for r in self._readers.values())
            if self._held is not None:
                floor = min(floor, self._held)
            doomed = [n for n in self._segments if n < floor and n != self._active]
            for number in doomed:
                self._total_bytes -= self._segments.pop(number).file_bytes
        for number in sorted(doomed):
            with contextlib.suppress(FileNotFoundError):
                _segment_path(self._dir, number).unlink()
            logger.debug("wal: deleted segment %d, passed by every reader", number)

    # ------------------------------------------------------ positions (locked)

    def _normalise(self, pos: Position) -> Position:
        """Move a position at the end of a sealed segment to the next segment's start."""
        numbers = self._segments
        if pos.segment not in numbers:
            later = [n for n in numbers if n > pos.segment]
            return Position(min(later), 0) if later else pos
        while pos.segment != self._active and pos.offset >= numbers[pos.segment].valid_bytes:
            pos = Position(min(n for n in numbers if n > pos.segment), 0)
        return pos

    def _readable_limit(self, segment: int) -> int:
        """Offset up to which ``segment`` holds durable, valid records."""
        seg = self._segments.get(segment)
        if seg is None or segment > self._durable.segment:
            return 0
        if segment == self._durable.segment:
            return min(self._durable.offset, seg.valid_bytes)
        return seg.valid_bytes

    def _mark_corrupt(self, segment: int, offset: int, problem: str) -> None:
        """A reader met a bad record in durable data: skip the rest of its segment."""
        with self._lock:
            seg = self._segments.get(segment)
            if seg is None or offset >= seg.valid_bytes:
                return  # another reader got here first
            seg.valid_bytes = offset
            if segment == self._active:
                self._roll_locked()  # keep appending after the damage, in a new file
        logger.error(
            "wal: corrupt record in segment %d at offset %d (%s) while reading; "
            "skipping the rest of this segment",
            segment,
            offset,
            problem,
        )

    # --------------------------------------------------------------- opening

    def _load_log_id(self) -> str:
        path = self._dir / "LOG_ID"
        with contextlib.suppress(FileNotFoundError):
            text = path.read_text().strip()
            if re.fullmatch(r"[0-9a-f]{16}", text):
                return text
            logger.warning("wal: unreadable %s; choosing a new log id", path)
        log_id = secrets.token_hex(8)
        replace_file(path, log_id.encode() + b"\n", fsync=self._fsync)
        return log_id

    def _load_reader(self, name: str) -> LogReader:
        path = self._dir / "readers" / f"{name}.offset"
        try:
            state = _decode_state(path.read_bytes())
        except FileNotFoundError:
            state = _ReaderState(Position(0, 0), [])
        except (ValueError, KeyError, TypeError) as exc:
            logger.warning(
                "wal: corrupt offset file %s (%s); reader %r starts from the oldest segment",
                path,
                exc,
                name,
            )
            state = _ReaderState(Position(0, 0), [])
        return LogReader(self, name, path, state)

    def _recover(self) -> None:
        """Scan segments, drop those every reader passed, pick the active segment."""
        found = sorted(
            int(m.group(1)) for p in self._dir.iterdir() if (m := _SEGMENT_RE.match(p.name))
        )
        committed = [r._committed.segment for r in self._readers.values()]
        floor = min(committed)
        for number in found:
            path = _segment_path(self._dir, number)
            if number < floor and number != found[-1]:
                path.unlink()  # every reader passed it before the last shutdown
                continue
            self._segments[number] = _recover_segment(path, number, self._fsync)
        last = found[-1] if found else None
        if self._new_segment_on_open:
            self._active = max([*committed, *found]) + 1
            self._segments[self._active] = _Segment(self._active, 0, 0, 0)
        elif last is not None and self._segments[last].file_bytes == 0:
            self._active = last  # reuse an empty last segment
        else:
            # Numbers never go back, even if every file was deleted: a reused
            # number would reuse batch ids, and ClickHouse would drop new data
            # as duplicates of old inserts.
            self._active = max([0, *committed, *([last + 1] if last is not None else [])])
            self._segments[self._active] = _Segment(self._active, 0, 0, 0)
        self._total_bytes = sum(s.file_bytes for s in self._segments.values())
        self._durable = Position(self._active, self._segments[self._active].file_bytes)
        for reader in self._readers.values():
            reader._adopt_recovered_state()


def _check_config(
    readers: Sequence[str], segment_bytes: int, max_bytes: int, commit_interval: float
) -> None:
    if not readers:
        raise ValueError("a write-ahead log needs at least one reader")
    if len(set(readers)) != len(readers):
        raise ValueError(f"duplicate reader names: {list(readers)}")
    for name in readers:
        if not _READER_NAME_RE.match(name):
            raise ValueError(f"invalid reader name {name!r}")
    if segment_bytes <= HEADER_SIZE:
        raise ValueError("segment_bytes too small")
    if max_bytes < 2 * segment_bytes:
        # Retention frees whole sealed segments only: leave room for one to fill.
        raise ValueError("max_bytes must be at least 2 * segment_bytes")
    if commit_interval < 0:
        raise ValueError("commit_interval must be >= 0")


def _acquire_dir_lock(directory: Path) -> int:
    fd = os.open(directory / "LOCK", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise WalLocked(f"write-ahead log {directory} is open elsewhere") from None
    return fd


def _append_error(cause: BaseException) -> WalError:
    error = WalError(f"write-ahead log write failed: {cause}")
    error.__cause__ = cause
    return error


def _resolve_waiters(waiters: list[_Waiter], error: BaseException | None) -> None:
    """Wake appenders: one event-loop callback per loop, not one per request."""
    by_loop: dict[asyncio.AbstractEventLoop, list[_Waiter]] = {}
    for w in waiters:
        if w.loop is None:
            w.error = error
            assert w.event is not None
            w.event.set()
        else:
            by_loop.setdefault(w.loop, []).append(w)
    for loop, group in by_loop.items():
        with contextlib.suppress(RuntimeError):  # loop closed: nobody waits any more
            loop.call_soon_threadsafe(_settle_futures, group, error)


def _settle_futures(waiters: list[_Waiter], error: BaseException | None) -> None:
    for w in waiters:
        assert w.future is not None
        if w.future.done():
            continue  # cancelled by its task
        if error is None:
            w.future.set_result(w.end)
        else:
            w.future.set_exception(_append_error(error))


# -------------------------------------------------------------------- readers


class LogReader:
    """One consumer's view of the log: a read cursor and a committed offset.

    Blocking methods, for one worker thread at a time. The cursor lives in
    memory; the committed offset and the ranges of uncommitted batches are
    persisted in ``readers/<name>.offset``.
    """

    def __init__(self, log: WriteAheadLog, name: str, path: Path, state: _ReaderState) -> None:
        self._log = log
        self.name = name
        self._path = path
        self._committed = state.committed
        self._pending = list(state.pending)
        self._cursor = state.committed
        self._op_lock = threading.Lock()
        self._fd: int | None = None
        self._fd_segment = -1

    # ---------------------------------------------------------------- public

    @property
    def committed(self) -> Position:
        """The durably stored offset; everything before it is safely downstream."""
        with self._log._lock:
            return self._committed

    @property
    def position(self) -> Position:
        """The in-memory read cursor (where the next ``read_batch`` starts)."""
        with self._log._lock:
            return self._cursor

    def read_batch(self, max_records: int = 1000, max_bytes: int = 1 << 20) -> Batch | None:
        """Next durable records after the cursor, or None if there are none yet.

        A batch never crosses a segment boundary, holds at least one record and
        otherwise at most ``max_records`` records and ``max_bytes`` framed
        bytes. A batch handed out before and not committed (after ``rewind()``
        or a reopen) is served again with the same boundaries and batch id.
        """
        if max_records < 1 or max_bytes < 1:
            raise ValueError("max_records and max_bytes must be positive")
        with self._op_lock:
            while True:  # loops only to step over corrupt data
                self._check_open()
                done, batch = self._read_once(max_records, max_bytes)
                if done:
                    return batch

    def commit(self, position: Position) -> None:
        """Durably record that everything before ``position`` is safely downstream.

        ``position`` is normally ``batch.end``. Committing lets retention delete
        segments every reader has passed.
        """
        log = self._log
        with self._op_lock:
            self._check_open()
            with log._lock:
                target = log._normalise(Position(*position))
                if target < log._normalise(self._committed):
                    raise ValueError(f"commit {position} is behind committed {self._committed}")
                if target > log._normalise(self._cursor):
                    raise ValueError(f"commit {position} is past the read cursor {self._cursor}")
                pending = [r for r in self._pending if Position(r[0], r[1]) >= position]
            self._persist(_ReaderState(target, pending))
            with log._lock:
                self._committed = target
                self._pending = pending
        log._apply_retention()

    def rewind(self) -> None:
        """Move the cursor back to the committed offset (after a failed delivery)."""
        with self._op_lock, self._log._lock:
            self._cursor = self._committed

    def backlog(self) -> Backlog:
        """Bytes (and about how many records) between committed and durable end."""
        log = self._log
        with log._lock:
            start = log._normalise(self._committed)
            total = 0
            records = 0.0
            for number in sorted(n for n in log._segments if n >= start.segment):
                seg = log._segments[number]
                low = start.offset if number == start.segment else 0
                part = max(0, log._readable_limit(number) - low)
                total += part
                if seg.valid_bytes:
                    records += seg.records * part / seg.valid_bytes
            return Backlog(total, round(records))

    def wait(self, timeout: float | None = None) -> bool:
        """Block until durable records exist after the cursor; False on timeout/close."""
        log = self._log
        with log._data:
            ready = log._data.wait_for(lambda: log._closed or self._has_data_locked(), timeout)
            return bool(ready) and not log._closed

    # ------------------------------------------------------------- internals

    def _check_open(self) -> None:
        if self._log._closed:
            raise WalClosed("write-ahead log is closed")

    def _has_data_locked(self) -> bool:
        cursor = self._log._normalise(self._cursor)
        return self._log._readable_limit(cursor.segment) > cursor.offset

    def _read_once(self, max_records: int, max_bytes: int) -> tuple[bool, Batch | None]:
        """One attempt: (True, batch or None), or (False, None) after skipping damage."""
        log = self._log
        with log._lock:
            cursor = self._cursor = log._normalise(self._cursor)
            limit = log._readable_limit(cursor.segment)
            replay = self._pending_range_at(cursor, limit)
        if replay is not None:
            limit = replay[2]
            max_records, max_bytes = 1 << 62, limit - cursor.offset
        available = limit - cursor.offset
        if available <= 0:
            return True, None
        span = min(available, max_bytes)
        parsed = _parse_records(self._pread(cursor.segment, span, cursor.offset), max_records, True)
        if parsed.count == 0 and parsed.problem == "incomplete" and span < available:
            parsed = self._read_one_large(cursor, limit)  # first record exceeds max_bytes
        # ``limit`` is a record boundary, so a record cut short by it is damage,
        # while one cut short by ``max_bytes`` just waits for the next batch.
        damaged = parsed.problem in ("zero length", "crc mismatch") or (
            parsed.problem == "incomplete" and (span == available or parsed.count == 0)
        )
        if damaged:
            bad = cursor.offset + parsed.consumed
            log._mark_corrupt(cursor.segment, bad, parsed.problem or "incomplete")
        if parsed.count == 0:
            return False, None
        return True, self._hand_out(cursor, parsed, replayed=replay is not None)

    def _read_one_large(self, cursor: Position, limit: int) -> _Parsed:
        header = self._pread(cursor.segment, HEADER_SIZE, cursor.offset)
        length, _ = _HEADER.unpack(header)
        size = min(HEADER_SIZE + length, limit - cursor.offset)
        return _parse_records(self._pread(cursor.segment, size, cursor.offset), 1, keep=True)

    def _hand_out(self, cursor: Position, parsed: _Parsed, replayed: bool) -> Batch:
        first = cursor.offset
        end = Position(cursor.segment, first + parsed.consumed)
        last = first + parsed.last_start
        batch = Batch(
            segment=cursor.segment,
            first_offset=first,
            last_offset=last,
            end=end,
            records=parsed.payloads,
            batch_id=f"{self._log.log_id}/{cursor.segment}/{first}/{last}",
        )
        if not replayed:
            # Persist the range before anyone can deliver it, so a replay after
            # a crash has the same boundaries and the same batch id.
            pending = [*self._pending, (cursor.segment, first, end.offset)]
            self._persist(_ReaderState(self._committed, pending))
            self._pending = pending
        with self._log._lock:
            self._cursor = end
        return batch

    def _pending_range_at(self, cursor: Position, limit: int) -> tuple[int, int, int] | None:
        """The persisted uncommitted batch starting at the cursor, if still valid."""
        for index, (segment, first, end) in enumerate(self._pending):
            if (segment, first) != tuple(cursor):
                continue
            if end <= limit:
                return segment, first, end
            logger.warning(
                "wal: reader %r: uncommitted batch %d/%d-%d is no longer readable; "
                "forgetting it and later ones",
                self.name,
                segment,
                first,
                end,
            )
            del self._pending[index:]
            return None
        return None

    def _pread(self, segment: int, size: int, offset: int) -> bytes:
        if self._fd_segment != segment:
            self._close_fd()
            self._fd = os.open(_segment_path(self._log._dir, segment), os.O_RDONLY)
            self._fd_segment = segment
        assert self._fd is not None
        return _pread_exact(self._fd, size, offset)

    def _close_fd(self) -> None:
        if self._fd is not None:
            with contextlib.suppress(OSError):
                os.close(self._fd)
        self._fd = None
        self._fd_segment = -1

    def _persist(self, state: _ReaderState) -> None:
        replace_file(self._path, _encode_state(state), fsync=self._log._fsync)

    def _adopt_recovered_state(self) -> None:
        """Fit the loaded committed offset to what recovery found on disk."""
        log = self._log
        committed = self._committed
        oldest = min(log._segments)
        if committed.segment > log._active:
            logger.warning(
                "wal: reader %r committed %s is past the end of the log %d:%d; resuming there",
                self.name,
                committed,
                log._active,
                log._segments[log._active].file_bytes,
            )
            committed = Position(log._active, log._segments[log._active].file_bytes)
        elif committed.segment < oldest:
            committed = Position(oldest, 0)
        elif committed.segment in log._segments:
            valid = log._segments[committed.segment].valid_bytes
            if committed.offset > valid:
                logger.warning(
                    "wal: reader %r committed %s lies past the valid data (%d bytes); "
                    "resuming after it",
                    self.name,
                    committed,
                    valid,
                )
                committed = Position(committed.segment, valid)
        self._committed = self._cursor = log._normalise(committed)


def iter_records(path: str | os.PathLike[str]) -> Iterator[bytes]:
    """Good records of one segment file, stopping at the first bad one (for tools)."""
    data = Path(path).read_bytes()
    yield from _parse_records(data, 1 << 62, keep=True).payloads
