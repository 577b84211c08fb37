"""The storage process's sequencer: every worker's log into the one storage log.

Workers append to their own logs (``<data>/wal/w<K>``) and drop only the
copies they have seen themselves. The sequencer follows each worker log,
applies the same-source dedup rule once, over the union of all logs and the
events already stored, and appends the survivors to the storage log
(``<data>/wal``) that the ClickHouse loader and the TikTok forwarder read
unchanged (docs/architecture.md §8). One more group-committed write per
batch buys exact dedup in one place and two untouched readers.

Order per batch: read from a worker log, drop duplicates, append to the
storage log (fsync), then commit the worker-log offset. A crash between the
append and the commit replays that batch; the replay is dropped because
:meth:`Sequencer.rebuild` puts every copy still in the storage log into an
exact set (whatever the event's age) besides the 48 h index.

Runs on the event loop (the dedup index is single-threaded and shared with
the storage process's own ingestor, which the webhook fetcher uses); file
reads go to a thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import anyio

from pixel_server.pipeline.dedup import DedupIndex
from pixel_server.pipeline.follower import LogFollower
from pixel_server.pipeline.record import decode_key
from pixel_server.pipeline.wal import LogFull, WalError, WriteAheadLog, iter_records, segment_file

log = logging.getLogger("pixel_server.sequencer")

READER = "sequencer"
IDLE_SECONDS = 0.02
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
                for follower in self.followers.values():
                    follower.rewind()
                if self._stopping:
                    return
                await asyncio.sleep(RETRY_SECONDS)
                continue
            except OSError as exc:
                self._failed(f"worker log: {exc}")
                await asyncio.sleep(RETRY_SECONDS)
                continue
            self.last_error = ""
            if not moved:
                self._on_disk.clear()  # caught up: replays of the last run are behind us
                if self._stopping:
                    return
                await asyncio.sleep(IDLE_SECONDS)

    async def pass_once(self) -> int:
        """One batch from each worker log; returns how many records were read."""
        moved = 0
        for follower in self.followers.values():
            got = await anyio.to_thread.run_sync(follower.read)
            if got is None:
                continue
            moved += len(got.records)
            replayed = self.counts.replayed
            survivors = [p for p in got.records if self._first_copy(p)]
            if self.counts.replayed > replayed:
                log.warning(
                    "sequencer: %d records of %s were already in the storage log "
                    "(a replay after a crash); dropped",
                    self.counts.replayed - replayed,
                    follower.directory.name,
                )
            if survivors:
                try:
                    await self._wal.append(survivors)
                except BaseException:
                    self._forget(survivors)  # not stored: the retry must not look like a copy
                    raise
                self.counts.appended += len(survivors)
            await anyio.to_thread.run_sync(follower.commit, got.end)
        return moved

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
