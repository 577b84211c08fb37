"""Asynchronous order fetches for webhooks that carry ids only (Ecwid, BigCommerce)
and for what a body lacks (WooCommerce's refund lines).

The webhook is acknowledged as soon as its job is **durably queued**, so the
platform never waits for the store API (platforms time out after a few seconds
and then retry or disable the hook). The queue is a second
:class:`~pixel_server.pipeline.wal.WriteAheadLog` with one reader,
``<data dir>/webhooks/jobs``; each record is one :class:`FetchJob` as JSON.

How a job runs
---------------
* The fetcher task reads jobs from the log into memory and runs those due, up
  to ``FetchPolicy.concurrency`` at a time (one slow store does not hold up the
  others).
* Success: the events go through :meth:`Webhooks.store` (validation, dedup,
  PII hashing, the event log). An order that does not count stores nothing.
* Failure (timeout, network, 5xx, 404, refused token, store API not
  configured, event log full): the job is appended again with ``attempt + 1``
  and ``due = now + backoff`` (exponential, with jitter, capped), and counted
  in ``pixel_webhook_fetches_total{result="retry"}`` and
  ``pixel_webhook_fetch_errors_total{reason}``, with a warning in the log.
* After ``max_attempts`` failures, or at once when the order cannot be mapped,
  the job is **parked**: a JSON line in ``<data dir>/webhooks/failed.jsonl``
  (fsynced), an error in the log, ``pixel_webhook_fetches_total{result="parked"}``
  and the gauge ``pixel_webhook_jobs_failed``. Nothing is dropped silently.

Commit rule: the reader's committed offset advances over a prefix of records
that are finished (done, re-queued as a new record, or parked). A crash replays
the rest: a job may then run twice, which the dedup index and the query-time
merge absorb (same event ids, same event times).
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import itertools
import logging
import os
import random
import time
from collections import deque
from collections.abc import Awaitable, Callable, Mapping, MutableMapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import anyio
import httpx
import msgspec
import orjson
from prometheus_client.core import GaugeMetricFamily

from pixel_server.ingest.service import IntakeResult
from pixel_server.ingest.webhooks.common import FetchError, FetchJob, InvalidBody, Mapped
from pixel_server.metrics import Metrics
from pixel_server.pipeline.wal import HEADER_SIZE, LogFull, Position, WalError, WriteAheadLog
from pixel_server.pixel import Pixel

log = logging.getLogger("pixel_server.webhooks")

READER: Final = "fetcher"
FAILED_FILE: Final = "failed.jsonl"
_IN_MEMORY: Final = 10_000  # jobs read ahead of the committed offset, at most

FetchFn = Callable[
    [httpx.AsyncClient, Pixel, FetchJob, MutableMapping[str, Any]], Awaitable[Mapped]
]
StoreFn = Callable[[Pixel, Mapped], Awaitable[IntakeResult]]

_ENCODE: Final = msgspec.json.Encoder()
_DECODE: Final = msgspec.json.Decoder(FetchJob)


@dataclass(frozen=True)
class FetchPolicy:
    """How hard to try. The defaults retry for about two and a half hours
    (5 s doubling to an hour); tests pass tiny delays."""

    max_attempts: int = 12
    first_delay: float = 5.0
    max_delay: float = 3600.0
    timeout: float = 10.0  # per store API request
    concurrency: int = 8  # fetches at a time; 0 pauses fetching (jobs are still queued)
    segment_bytes: int = 4 << 20
    max_log_bytes: int = 256 << 20

    def delay(self, attempt: int) -> float:
        """Seconds before attempt number ``attempt + 1`` (``attempt`` >= 1 failed)."""
        base = min(self.max_delay, self.first_delay * 2 ** min(attempt - 1, 30))
        return base * (0.75 + random.random() / 2)  # jitter: stores recover in a herd otherwise


@dataclass(eq=False, slots=True)
class _Slot:
    """One record read from the job log; ``end`` is where the next one starts."""

    end: Position
    done: bool = False


class OrderFetcher:
    def __init__(
        self,
        directory: Path,
        *,
        fetchers: Mapping[str, FetchFn],
        store: StoreFn,
        pixels: Callable[[str], Pixel | None],
        metrics: Metrics,
        policy: FetchPolicy,
        fsync: bool = True,
        http: httpx.AsyncClient | None = None,
    ) -> None:
        self._dir = directory
        self._fetchers = fetchers
        self._store = store
        self._pixels = pixels
        self._metrics = metrics
        self.policy = policy
        self._fsync = fsync
        self._http = http
        self._own_http = http is None
        self._caches: dict[str, dict[str, Any]] = {name: {} for name in fetchers}
        self._wal: WriteAheadLog | None = None
        self._slots: deque[_Slot] = deque()
        self._heap: list[tuple[float, int, FetchJob, _Slot]] = []
        self._seq = itertools.count()
        self._running: set[asyncio.Task[None]] = set()
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.failed = 0  # parked jobs in the failed file (all time)

    # ------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        self._dir.mkdir(parents=True, exist_ok=True)
        self._wal = await anyio.to_thread.run_sync(self._open_log)
        self.failed = await anyio.to_thread.run_sync(self._count_failed)
        if self._http is None:
            self._http = httpx.AsyncClient(timeout=self.policy.timeout, follow_redirects=False)
        self._metrics.add_callback(self._gauges)
        self._task = asyncio.create_task(self._run(), name="webhook-order-fetcher")

    def _open_log(self) -> WriteAheadLog:
        p = self.policy
        return WriteAheadLog(
            self._dir / "jobs",
            [READER],
            segment_bytes=p.segment_bytes,
            max_bytes=p.max_log_bytes,
            fsync=self._fsync,
        )

    async def stop(self) -> None:
        """Stop fetching; jobs in flight are not committed and run again at start."""
        tasks = [t for t in (self._task, *self._running) if t is not None]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._task = None
        if self._wal is not None:
            with contextlib.suppress(Exception):  # best effort; a replay is harmless
                await self._commit()
            await anyio.to_thread.run_sync(self._wal.close)
        if self._own_http and self._http is not None:
            await self._http.aclose()
            self._http = None

    # ---------------------------------------------------------------- queue

    async def enqueue(self, job: FetchJob) -> None:
        """Return once ``job`` is on disk. Raises ``LogFull`` when the job log is full."""
        assert self._wal is not None, "fetcher not started"
        await self._wal.append([_ENCODE.encode(job)])
        self._wake.set()

    def waiting(self) -> int:
        """Jobs read and not finished (due later, or running)."""
        return sum(not s.done for s in self._slots)

    def backlog_bytes(self) -> int:
        return self._wal.reader(READER).backlog().bytes if self._wal is not None else 0

    def log_end(self) -> Position:
        """End of everything appended to the job log (for tests and tools)."""
        assert self._wal is not None, "fetcher not started"
        return self._wal.write_end

    # ------------------------------------------------------------ scheduler

    async def _run(self) -> None:
        while True:
            self._wake.clear()
            try:
                await self._pull()
                self._start_due()
                await self._commit()
            except (WalError, OSError) as exc:  # the job log broke: keep what is in memory
                log.error("webhook job log failed", extra={"error": str(exc)})
                await asyncio.sleep(1.0)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self._next_wakeup())

    async def _pull(self) -> None:
        """Read new job records into memory (not past ``_IN_MEMORY`` unfinished)."""
        assert self._wal is not None
        reader = self._wal.reader(READER)
        while len(self._slots) < _IN_MEMORY:
            batch = await anyio.to_thread.run_sync(reader.read_batch, 256, 1 << 20)
            if batch is None:
                return
            offset = batch.first_offset
            for payload in batch.records:
                offset += HEADER_SIZE + len(payload)
                slot = _Slot(Position(batch.segment, offset))
                self._slots.append(slot)
                try:
                    job = _DECODE.decode(payload)
                except msgspec.DecodeError as exc:
                    log.error("unreadable webhook job skipped", extra={"error": str(exc)})
                    slot.done = True
                    continue
                heapq.heappush(self._heap, (job.due, next(self._seq), job, slot))

    def _start_due(self) -> None:
        now = time.time()
        while (
            self._heap and self._heap[0][0] <= now and len(self._running) < self.policy.concurrency
        ):
            _, _, job, slot = heapq.heappop(self._heap)
            task = asyncio.create_task(self._attempt(job, slot))
            self._running.add(task)
            task.add_done_callback(self._finished)

    def _finished(self, task: asyncio.Task[None]) -> None:
        self._running.discard(task)
        self._wake.set()

    def _next_wakeup(self) -> float | None:
        if not self._heap or len(self._running) >= self.policy.concurrency:
            return None  # a finishing task or a new job wakes us
        return max(0.0, self._heap[0][0] - time.time())

    async def _commit(self) -> None:
        assert self._wal is not None
        end: Position | None = None
        while self._slots and self._slots[0].done:
            end = self._slots.popleft().end
        if end is not None:
            await anyio.to_thread.run_sync(self._wal.reader(READER).commit, end)

    # ---------------------------------------------------------------- a job

    async def _attempt(self, job: FetchJob, slot: _Slot) -> None:
        platform = job.platform
        try:
            await self._fetch_and_store(job)
        except InvalidBody as exc:  # the order cannot be mapped: retrying will not help
            self._metrics.webhook_fetch_errors.labels(platform, "invalid_order").inc()
            await self._park(job, slot, "invalid_order", exc.message)
        except FetchError as exc:
            await self._retry_or_park(job, slot, exc.reason, exc.message)
        except LogFull:
            await self._retry_or_park(job, slot, "log_full", "the event log is full")
        except Exception as exc:  # a bug or an unexpected answer: keep the job, say so
            log.exception("webhook order fetch crashed", extra=_fields(job))
            await self._retry_or_park(job, slot, "error", f"{type(exc).__name__}: {exc}")
        else:
            self._metrics.webhook_fetches.labels(platform, "ok").inc()
            slot.done = True

    async def _fetch_and_store(self, job: FetchJob) -> None:
        pixel = self._pixels(job.pixel_id)
        if pixel is None:
            raise FetchError("not_configured", f"pixel {job.pixel_id} no longer exists")
        fetch = self._fetchers.get(job.platform)
        if fetch is None:
            raise InvalidBody("invalid_order", f"no fetcher for platform {job.platform!r}")
        assert self._http is not None
        mapped = await fetch(self._http, pixel, job, self._caches[job.platform])
        if mapped.events:
            await self._store(pixel, mapped)

    async def _retry_or_park(self, job: FetchJob, slot: _Slot, reason: str, error: str) -> None:
        self._metrics.webhook_fetch_errors.labels(job.platform, reason).inc()
        attempt = job.attempt + 1
        if attempt >= self.policy.max_attempts:
            await self._park(job, slot, reason, error)
            return
        delay = self.policy.delay(attempt)
        retry = msgspec.structs.replace(
            job, attempt=attempt, due=time.time() + delay, last_error=error[:500]
        )
        self._metrics.webhook_fetches.labels(job.platform, "retry").inc()
        log.warning(
            "webhook order fetch failed; will retry",
            extra={**_fields(job), "attempt": attempt, "reason": reason, "error": error,
                   "retry_in_s": round(delay, 3)},
        )  # fmt: skip
        try:
            await self.enqueue(retry)
        except (LogFull, WalError):
            # The job log refuses: keep the job in memory; its record stays
            # uncommitted, so it survives a restart too.
            heapq.heappush(self._heap, (retry.due, next(self._seq), retry, slot))
            return
        slot.done = True

    async def _park(self, job: FetchJob, slot: _Slot, reason: str, error: str) -> None:
        line = orjson.dumps(
            {"parked_at": time.time(), "reason": reason, "error": error[:1000],
             "job": msgspec.to_builtins(job)}
        )  # fmt: skip
        await anyio.to_thread.run_sync(self._append_failed, line)
        self.failed += 1
        self._metrics.webhook_fetches.labels(job.platform, "parked").inc()
        log.error(
            "webhook order fetch gave up; job parked",
            extra={**_fields(job), "attempts": job.attempt + 1, "reason": reason, "error": error,
                   "file": str(self._dir / FAILED_FILE)},
        )  # fmt: skip
        slot.done = True

    def _append_failed(self, line: bytes) -> None:
        fd = os.open(self._dir / FAILED_FILE, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            os.write(fd, line + b"\n")
            if self._fsync:
                os.fsync(fd)
        finally:
            os.close(fd)

    def _count_failed(self) -> int:
        try:
            with (self._dir / FAILED_FILE).open("rb") as f:
                return sum(1 for _ in f)
        except FileNotFoundError:
            return 0

    def _gauges(self) -> list[GaugeMetricFamily]:
        waiting = GaugeMetricFamily(
            "pixel_webhook_jobs_waiting", "Order fetch jobs queued or retrying."
        )
        waiting.add_metric([], self.waiting())
        backlog = GaugeMetricFamily(
            "pixel_webhook_job_log_backlog_bytes", "Bytes of the webhook job log not finished."
        )
        backlog.add_metric([], self.backlog_bytes())
        failed = GaugeMetricFamily(
            "pixel_webhook_jobs_failed",
            f"Order fetch jobs that gave up (parked in webhooks/{FAILED_FILE}).",
        )
        failed.add_metric([], self.failed)
        return [waiting, backlog, failed]


def _fields(job: FetchJob) -> dict[str, Any]:
    return {"pixel_id": job.pixel_id, "platform": job.platform, "store": job.store,
            "order_id": job.order_id, "delivery_id": job.delivery_id}  # fmt: skip
