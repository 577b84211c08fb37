"""The storage process's sequencer: every worker's log into the one storage log.

Workers append to their own logs (``<data>/wal/w<K>``) and drop only the
copies they have seen themselves. The sequencer follows each worker log,
applies the same-source dedup rule once, over the union of all logs and the
events already stored, and appends the survivors to the storage log
(``<data>/wal``) that the ClickHouse loader and the TikTok forwarder read
unchanged (docs/architecture.md §8). One more group-committed write per
batch buys exact dedup in one place and two untouched readers.

Order per pass: read a batch from every worker log (one thread hop), drop
duplicates, append the survivors of all of them to the storage log (one
group-committed write and fsync), and commit the worker-log offsets at most
every ``COMMIT_EVERY_S`` and whenever caught up (one more thread hop): an
offset file is replaced with two fsyncs, which cost more than the append
when done per batch. A crash before the commit replays what was appended
since; the replay is dropped because :meth:`Sequencer.rebuild` puts every
copy still in the storage log into an exact set (whatever the event's age)
besides the 48 h index, and the storage log keeps those segments
(:meth:`~pixel_server.pipeline.wal.WriteAheadLog.hold_segments`) until the
offsets covering them are committed.

Runs on the event loop (the dedup index is single-threaded and shared with
the storage process's own ingestor, which the webhook fetcher uses); file
reads go to a thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import anyio

from pixel_server.pipeline.dedup import DedupIndex
from pixel_server.pipeline.follower import Followed, LogFollower
from pixel_server.pipeline.record import decode_key
from pixel_server.pipeline.wal import (
    LogFull,
    Position,
    WalError,
    WriteAheadLog,
    iter_records,
    segment_file,
)

log = logging.getLogger("pixel_server.sequencer")

READER = "sequencer"
IDLE_SECONDS = 0.02
COMMIT_EVERY_S = 0.2
RETRY_SECONDS = 0.5

CopyKey = tuple[str, str, str, str]


def worker_log_dir(wal_dir: Path, slot: int) -> Path:
    return wal_dir / f"w{slot}"


def slots_on_disk(wal_dir: Path) -> set[int]:
    """Worker slots that have a log, also of an earlier run with more workers
    (or of the multi-process layout, before a restart as one process): their
    records are acknowledged and must be moved all the same."""
    if not wal_dir.is_dir():
        return set()
    return {int(p.name[1:]) for p in wal_dir.iterdir() if re.fullmatch(r"w\d{1,4}", p.name)}


@dataclass(slots=True)
class SequencerCounts:
    appended: int = 0
    duplicates: int = 0
    replayed: int = 0


class Sequencer:
    def __init__(
        self,
        wal: WriteAheadLog,
        slots: Sequence[int],
        dedup: DedupIndex,
        *,
        fsync: bool = True,
    ) -> None:
        self._wal = wal
        self._dedup = dedup
        self.followers = {
            slot: LogFollower(worker_log_dir(wal.directory, slot), READER, fsync=fsync)
            for slot in slots
        }
        self.counts = SequencerCounts()
        self._on_disk: set[CopyKey] = set()
        # Per worker log: where its records are in the storage log up to (not
        # yet committed), and when offsets were last committed.
        self._appended: dict[int, Position] = {}
        self._committed_at = time.monotonic()
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        self.last_error = ""

    # start ----------------------------------------------------------------

    def rebuild(self) -> int:
        """Remember every copy in the storage log (blocking; before :meth:`start`)."""
        for number in self._wal.segment_numbers():
            path = segment_file(self._wal.directory, number)
            if not path.exists():
                continue
            for payload in iter_records(path):
                k = decode_key(payload)
                self._on_disk.add((k.pixel_id, k.event, k.event_id, k.source))
        return len(self._on_disk)

    def start(self) -> None:
        self._task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        """Move everything the (already stopped) workers logged, then stop."""
        self._stopping = True
        if self._task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    # work -----------------------------------------------------------------

    async def _run(self) -> None:
        while True:
            try:
                moved = await self.pass_once()
            except (LogFull, WalError) as exc:  # the storage log refuses: keep the worker logs
                self._failed(f"storage log: {exc}")
                for slot, follower in self.followers.items():
                    follower.rewind(self._appended.get(slot))
                if self._stopping:
                    with contextlib.suppress(OSError):  # a replay next start is dropped
                        await self._commit_offsets()
                    return
                await asyncio.sleep(RETRY_SECONDS)
                continue
            except OSError as exc:
                self._failed(f"worker log: {exc}")
                await asyncio.sleep(RETRY_SECONDS)
                continue
            self.last_error = ""
            if not moved:
                try:
                    await self._commit_offsets()
                except OSError as exc:
                    self._failed(f"worker log offsets: {exc}")
                    await asyncio.sleep(RETRY_SECONDS)
                    continue
                self._on_disk.clear()  # caught up: replays of the last run are behind us
                if self._stopping:
                    return
                await asyncio.sleep(IDLE_SECONDS)

    async def pass_once(self) -> int:
        """One batch from each worker log; returns how many records were read."""
        got = await anyio.to_thread.run_sync(self._read_all)
        if not got:
            return 0
        replayed = self.counts.replayed
        survivors = [p for _, batch in got for p in batch.records if self._first_copy(p)]
        if self.counts.replayed > replayed:
            log.warning(
                "sequencer: %d records were already in the storage log "
                "(a replay after a crash); dropped",
                self.counts.replayed - replayed,
            )
        if survivors:
            self._wal.hold_segments()  # released once the offsets below are committed
            try:
                await self._wal.append(survivors)
            except BaseException:
                self._forget(survivors)  # not stored: the retry must not look like a copy
                raise
            self.counts.appended += len(survivors)
        for slot, batch in got:
            self._appended[slot] = batch.end
        if time.monotonic() - self._committed_at >= COMMIT_EVERY_S:
            await self._commit_offsets()
        return sum(len(batch.records) for _, batch in got)

    def _read_all(self) -> list[tuple[int, Followed]]:
        out = []
        for slot, follower in self.followers.items():
            batch = follower.read()
            if batch is not None:
                out.append((slot, batch))
        return out

    async def _commit_offsets(self) -> None:
        self._committed_at = time.monotonic()
        if not self._appended:
            return
        done, self._appended = self._appended, {}
        try:
            await anyio.to_thread.run_sync(self._commit_all, done)
        except BaseException:
            for slot, end in done.items():  # try again next time
                self._appended.setdefault(slot, end)
            raise
        self._wal.release_segments()

    def _commit_all(self, ends: dict[int, Position]) -> None:
        for slot, end in ends.items():
            self.followers[slot].commit(end)

    def _first_copy(self, payload: bytes) -> bool:
        k = decode_key(payload)
        key = (k.pixel_id, k.event, k.event_id, k.source)
        if key in self._on_disk:
            self.counts.replayed += 1
            return False
        if k.event_id_assigned:
            return True  # a server-made id never meets a twin
        if self._dedup.seen(k.pixel_id, k.event, k.event_id, k.source, k.event_time):
            self.counts.duplicates += 1
            return False
        return True

    def _forget(self, payloads: list[bytes]) -> None:
        for payload in payloads:
            k = decode_key(payload)
            if not k.event_id_assigned:
                self._dedup.forget(k.pixel_id, k.event, k.event_id, k.source)

    def _failed(self, message: str) -> None:
        if message != self.last_error:
            log.error("sequencer: %s; retrying", message)
        self.last_error = message

    # state ----------------------------------------------------------------

    def backlog(self) -> dict[str, int]:
        return {f"w{slot}": f.backlog_bytes() for slot, f in self.followers.items()}
