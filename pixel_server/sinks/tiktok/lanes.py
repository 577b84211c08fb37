"""A pixel's lane and what it keeps track of: its queue of events, the batches
in flight, and the state of its credentials."""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from dataclasses import dataclass
from typing import Any

import httpx
import msgspec

from pixel_server.pipeline.record import RecordKey
from pixel_server.pipeline.wal import Position
from pixel_server.sinks.spill import Chunk, PixelSpill, SpillEntry


@dataclass(eq=False, slots=True)
class Tracked:
    """One log batch handed to lanes; committable when nothing of it is outstanding."""

    end: Position
    outstanding: int = 1  # 1 while it is being dispatched
    ledger_seq: int = 0  # ledger call holding the last row of its events


class Item(msgspec.Struct, gc=False, eq=False):
    """One event on its way, with nothing the cyclic GC tracks: tens of
    thousands may wait in memory, and full collections walking decoded records
    (each with its lists) cost over half of the forwarder's CPU. So the JSON
    TikTok gets is built once, when the event is read, and the record dropped."""

    head: RecordKey  # routing and ledger fields (a partial decode)
    payload: bytes  # the stored record, for the spill store
    encoded: bytes  # the event as TikTok gets it
    test_code: str = ""  # the test_event_code the back end sent, if any
    attempts: int = 0
    origin: Position | None = None  # where it is in the log, if it came from there
    owner: Any = None  # the Tracked log batch it holds back, while in memory
    queued_at: float = 0.0
    seq: int = 0  # ledger call holding its latest row
    done: bool = False

    def entry(self) -> SpillEntry:
        o = self.origin
        return SpillEntry(self.attempts, self.payload, o.segment if o else -1,
                          o.offset if o else -1)  # fmt: skip


@dataclass(eq=False, slots=True)
class Work:
    items: list[Item]
    chunk: Chunk | None = None
    probe: bool = False


@dataclass(frozen=True, slots=True)
class BadCredentials:
    updated_at: float  # the pixel's settings version that was rejected
    since: float
    message: str


class Lane:
    """One pixel's queue, spill store, HTTP client and retry state."""

    def __init__(self, pixel_id: str, spill: PixelSpill, client: httpx.AsyncClient) -> None:
        self.pixel_id = pixel_id
        self.queue: deque[Item] = deque()
        self.spill = spill
        self.client = client
        self.failing_since: float | None = None
        self.failures = 0
        self.retry_at = 0.0  # monotonic
        self.probing = False
        self.last_error = ""
        self.inflight = 0
        self.tasks: list[asyncio.Task[None]] = []
        self._wake = asyncio.Event()

    @property
    def failing(self) -> bool:
        return self.failing_since is not None

    def notify(self) -> None:
        self._wake.set()
        self._wake = asyncio.Event()  # every waiter holds the one just set

    async def wait(self, timeout: float | None) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), timeout)
