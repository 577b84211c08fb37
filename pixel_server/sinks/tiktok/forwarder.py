"""The forwarder: reads the log, routes each copy to its pixel's lane, sends,
retries, spills, records every attempt and commits the log offset (the rules
are the package's docstring)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import msgspec
from prometheus_client.core import GaugeMetricFamily

from pixel_server.metrics import Metrics
from pixel_server.pipeline import record as records
from pixel_server.pipeline.erasures import Erasures
from pixel_server.pipeline.record import decode_key
from pixel_server.pipeline.wal import HEADER_SIZE, Batch, Position, WalClosed, WriteAheadLog
from pixel_server.pixel import Pixel
from pixel_server.sinks.answers import Answer, RetryPolicy, classify
from pixel_server.sinks.ledger import Attempt, DeliveryState, Ledger, key_of
from pixel_server.sinks.spill import Chunk, PixelSpill, SpillEntry
from pixel_server.sinks.tiktok.constants import (
    API_PATH,
    DISPATCH_SLICE,
    INVALID_PARAMETER,
    INVALID_TOKEN,
    MAX_BODY_BYTES,
    MAX_EVENTS,
    PIXEL_ID,
    READER_NAME,
    T,
)
from pixel_server.sinks.tiktok.lanes import BadCredentials, Item, Lane, Tracked, Work
from pixel_server.sinks.tiktok.payload import STORED, encode_body, encode_event, test_code_of
from pixel_server.sinks.tiktok.routing import (
    PixelSource,
    SkipReason,
    pixel_skip_reason,
    route_skip_reason,
)

log = logging.getLogger("pixel_server.forwarder")


class Forwarder:
    """Reads the log and forwards to TikTok; ``start()`` / ``stop()`` from any thread."""

    def __init__(
        self,
        wal: WriteAheadLog,
        pixels: PixelSource,
        ledger: Ledger,
        metrics: Metrics,
        *,
        spill_dir: Path,
        reader_name: str = READER_NAME,
        policy: RetryPolicy | None = None,
        batch_events: int = MAX_EVENTS,
        max_body_bytes: int = MAX_BODY_BYTES,
        linger: float = 0.25,
        read_interval: float = 0.05,
        read_records: int = 2000,
        request_timeout: float = 10.0,
        concurrency: int = 4,
        lane_capacity: int = 10_000,
        spill_after: float = 10.0,
        max_in_memory: int = 50_000,
        max_ledger_backlog: int = 200_000,
        commit_interval: float = 0.1,
        rescan_interval: float = 2.0,
        fsync: bool = True,
        recheck: bool = True,
        erasures: Erasures | None = None,
    ) -> None:
        if not 1 <= batch_events <= MAX_EVENTS:
            raise ValueError(f"batch_events must be 1..{MAX_EVENTS}")
        self.wal = wal
        self.reader = wal.reader(reader_name)
        self.pixels = pixels
        self.ledger = ledger
        self.metrics = metrics
        self.spill_dir = spill_dir
        self.policy = policy or RetryPolicy()
        self.batch_events = batch_events
        self.max_body_bytes = max_body_bytes
        self.linger = linger
        self.read_interval = read_interval
        self._quiet: tuple[object, bool] = (None, False)  # (registry version, nobody forwards)
        self.read_records = read_records
        self.request_timeout = request_timeout
        self.concurrency = concurrency
        self.lane_capacity = lane_capacity
        self.spill_after = spill_after
        self.max_in_memory = max_in_memory
        self.max_ledger_backlog = max_ledger_backlog
        self.commit_interval = commit_interval
        self.rescan_interval = rescan_interval  # how soon a replay's chunks are picked up
        self.fsync = fsync
        self.recheck = recheck
        self.erasures = erasures or Erasures(None)

        self._lanes: dict[str, Lane] = {}
        self._tracked: deque[Tracked] = deque()
        self._removals: list[tuple[int, Lane, Chunk]] = []  # (ledger seq, lane, chunk)
        self._bad_credentials: dict[str, BadCredentials] = {}
        self._in_memory = 0
        self._room = asyncio.Event()
        self._draining = False
        self._caught_up = False
        self._last_read_full = False
        self._recheck_until = Position(0, 0)
        self._startup_committed = Position(0, 0)
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop_requested: asyncio.Event | None = None
        self._drain_timeout = 10.0
        self._ready = threading.Event()
        self._log_pool = ThreadPoolExecutor(1, thread_name_prefix="forwarder-log")
        self.error: BaseException | None = None

    # ------------------------------------------------------------ lifecycle

    def start(self) -> None:
        self._recheck_until = self._handed_out_end()
        self._startup_committed = self.reader.committed
        self.ledger.start()
        self._thread = threading.Thread(target=self._thread_main, name="tiktok-forwarder",
                                        daemon=True)  # fmt: skip
        self._thread.start()
        self._ready.wait(5)

    def _handed_out_end(self) -> Position:
        """Where the log ranges a previous run handed out (and did not commit) end.

        Only those events can have been sent before a crash, so only they are
        checked against the ledger. The reader persists exactly these ranges;
        it has no public accessor for them, hence the fallback to the whole log.
        """
        pending = getattr(self.reader, "_pending", None)
        if not isinstance(pending, list):
            return self.wal.durable_end
        return max((Position(seg, end) for seg, _, end in pending), default=Position(0, 0))

    def stop(self, drain_timeout: float = 10.0) -> None:
        """Send what is in the log (up to ``drain_timeout``), record it, then stop."""
        self._drain_timeout = drain_timeout
        loop, requested = self._loop, self._stop_requested
        if loop is not None and requested is not None:
            with contextlib.suppress(RuntimeError):  # loop already gone
                loop.call_soon_threadsafe(requested.set)
        if self._thread is not None:
            self._thread.join(drain_timeout + self.request_timeout + 20)
        self.ledger.stop()
        self._log_pool.shutdown(wait=True)

    def _thread_main(self) -> None:
        try:
            asyncio.run(self._main())
        except BaseException as exc:  # a bug: say so loudly; the log keeps the events
            self.error = exc
            log.exception("TikTok forwarder stopped by an error")
        finally:
            self._ready.set()

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop_requested = asyncio.Event()
        self._room = asyncio.Event()
        self._ready.set()
        tasks: list[asyncio.Task[None]] = []
        try:
            # Settings come from ClickHouse; until they are loaded, every event
            # would look like one of an unknown pixel.
            while not self.pixels.loaded:
                if await _wait_event(self._stop_requested, 0.1):
                    return
            self._scan_spill()
            tasks = [
                asyncio.create_task(self._read_loop(), name="forwarder-read"),
                asyncio.create_task(self._commit_loop(), name="forwarder-commit"),
                asyncio.create_task(self._housekeeping(), name="forwarder-housekeeping"),
            ]
            await self._stop_requested.wait()
            await self._drain(self._drain_timeout)
        finally:
            lane_tasks = [t for lane in self._lanes.values() for t in lane.tasks]
            for task in tasks + lane_tasks:
                task.cancel()
            await asyncio.gather(*tasks, *lane_tasks, return_exceptions=True)
            await asyncio.to_thread(self.ledger.stop)
            with contextlib.suppress(Exception):
                await self._commit_ready()
            for lane in self._lanes.values():
                lane.spill.close()
                await lane.client.aclose()

    async def _drain(self, timeout: float) -> None:
        """Let lanes send what is in memory without lingering, until idle or timeout."""
        self._draining = True
        for lane in self._lanes.values():
            lane.notify()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            busy = [lane for lane in self._lanes.values()
                    if not lane.failing and (lane.queue or lane.inflight)]  # fmt: skip
            if not busy and self._caught_up and not self.reader.wait(0):
                return
            await asyncio.sleep(0.02)

    # --------------------------------------------------------------- status

    def idle(self) -> bool:
        """Nothing left to do: the log is committed to its end, nothing waits in
        memory or on disk, and every ledger row is in ClickHouse."""
        lanes = list(self._lanes.values())
        return (
            self.reader.backlog().bytes == 0
            and self._in_memory == 0
            and not self._removals
            and self.ledger.unflushed_rows == 0
            and all(not lane.inflight and not lane.spill.backlog for lane in lanes)
        )

    def status(self) -> dict[str, Any]:
        """For /readyz: problems per pixel. Forwarding problems never make the
        server unready: ingestion does not depend on TikTok."""
        pixels: dict[str, dict[str, Any]] = {}
        bad = dict(self._bad_credentials)
        for lane in list(self._lanes.values()):
            info: dict[str, Any] = {}
            if lane.failing_since is not None:
                info["retrying_since"] = iso_time(lane.failing_since)
                info["last_error"] = lane.last_error
            spilled = lane.spill.size_bytes()
            if spilled:
                info["spilled_bytes"] = spilled
            failure = bad.get(lane.pixel_id)
            if failure is not None:
                info["credentials"] = (
                    f"failing since {iso_time(failure.since)}: {failure.message}"
                    " (events are dead-lettered until the pixel's TikTok settings change)"
                )
            if info:
                pixels[lane.pixel_id] = info
        ledger = self.ledger.state
        problems = [p for p in pixels.values() if "retrying_since" in p or "credentials" in p]
        state = "stopped" if self.error is not None else (
            "degraded" if problems or ledger.failing_since is not None else "ok"
        )  # fmt: skip
        out: dict[str, Any] = {"status": state, "in_memory": self._in_memory, "pixels": pixels}
        out["ledger"] = "ok" if ledger.failing_since is None else f"failing: {ledger.last_error}"
        if self.error is not None:
            out["error"] = repr(self.error)
        return out

    def collect_metrics(self) -> list[GaugeMetricFamily]:
        """Gauges read at scrape time (registered by the runtime)."""
        memory = GaugeMetricFamily(
            "pixel_forward_in_memory_events", "Events held in memory by the TikTok forwarder."
        )
        memory.add_metric([], self._in_memory)
        spilled = GaugeMetricFamily(
            "pixel_forward_spilled_bytes", "Bytes of a pixel's events in the on-disk retry store.",
            labels=["pixel_id"],
        )  # fmt: skip
        retrying = GaugeMetricFamily(
            "pixel_forward_retrying", "1 while a pixel's TikTok endpoint fails and is retried.",
            labels=["pixel_id"],
        )  # fmt: skip
        credentials = GaugeMetricFamily(
            "pixel_forward_credentials_failing",
            "1 while TikTok rejects a pixel's access token (until its settings change).",
            labels=["pixel_id"],
        )
        bad = dict(self._bad_credentials)
        for lane in list(self._lanes.values()):
            spilled.add_metric([lane.pixel_id], lane.spill.size_bytes())
            retrying.add_metric([lane.pixel_id], 1.0 if lane.failing else 0.0)
            credentials.add_metric([lane.pixel_id], 1.0 if lane.pixel_id in bad else 0.0)
        unflushed = GaugeMetricFamily(
            "pixel_forward_ledger_unflushed_rows", "Delivery ledger rows not in ClickHouse yet."
        )
        unflushed.add_metric([], self.ledger.unflushed_rows)
        return [memory, spilled, retrying, credentials, unflushed]

    # -------------------------------------------------------------- reading

    async def _in_log_thread(self, fn: Callable[..., T], *args: Any) -> T:
        # One thread for every reader call: the reader is not for concurrent use.
        return await asyncio.get_running_loop().run_in_executor(self._log_pool, fn, *args)

    def _read(self) -> Batch | None:
        """Blocking: wait for records, let a few more gather, read a batch."""
        try:
            if not self.reader.wait(0.1):
                return None
            if not self._draining and not self._last_read_full:
                time.sleep(self.read_interval)  # fewer, larger reads (each one persists state)
            # Skipped unread when no pixel forwards: cheap to take many at once. Not
            # read later, though: what is read before a pixel's TikTok settings exist
            # is the backfill's (sinks/backfill.py), what is read after is ours.
            records = self.read_records * (10 if self._nobody_forwards() else 1)
            batch = self.reader.read_batch(max_records=records, max_bytes=16 << 20)
        except WalClosed:
            return None
        self._last_read_full = batch is not None and len(batch.records) >= records
        return batch

    def _erased(self, pixel_id: str, payload: bytes) -> bool:
        """A copy of a person erased since it was received (decoded only then)."""
        return self.erasures.for_pixel(pixel_id) and self.erasures.matches(records.decode(payload))

    def _nobody_forwards(self) -> bool:
        """True while no pixel could be sent to TikTok (cached per registry version)."""
        version = getattr(self.pixels, "version", None)
        seen, quiet = self._quiet
        if version is None or version != seen:
            quiet = all(pixel_skip_reason(p) is not None for p in self.pixels.all())
            self._quiet = (version, quiet)
        return quiet

    async def _read_loop(self) -> None:
        try:
            while True:
                while (
                    self._in_memory >= self.max_in_memory
                    or self.ledger.unflushed_rows >= self.max_ledger_backlog
                ):
                    await _wait_event(self._room, 0.2)
                batch = await self._in_log_thread(self._read)
                if batch is None:
                    self._caught_up = True
                    continue
                self._caught_up = False
                await self._dispatch(batch)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # e.g. the disk is full: stop reading, say so in /readyz;
            # what was not finished stays uncommitted and is read again after a restart.
            self.error = exc
            log.exception("TikTok forwarder stopped reading the log")

    async def _dispatch(self, batch: Batch) -> None:
        """Hand a log batch's events to their lanes, a slice at a time.

        Between slices the loop runs the lanes (sends, answers): a batch of
        thousands of events would otherwise hold the loop for tens of
        milliseconds while requests in flight wait to be read.
        """
        tracked = Tracked(batch.end)  # holds back the commit until fully handed out
        self._tracked.append(tracked)
        if self._nobody_forwards():  # not even worth decoding the pixel ids
            self._skip("nothing_to_forward", len(batch.records))
            tracked.outstanding -= 1
            return
        recheck = self.recheck and Position(batch.segment, batch.first_offset) < (
            self._recheck_until
        )
        offset = batch.first_offset
        for start in range(0, len(batch.records), DISPATCH_SLICE):
            items: list[Item] = []
            for payload in batch.records[start : start + DISPATCH_SLICE]:
                origin = Position(batch.segment, offset)
                offset += HEADER_SIZE + len(payload)
                item = self._prepare(payload, origin)
                if item is not None:
                    items.append(item)
            if items and recheck:
                items = await self._drop_finished(items)
            self._route(items, tracked)
            await asyncio.sleep(0)
        tracked.outstanding -= 1

    def _prepare(self, payload: bytes, origin: Position) -> Item | None:
        """The event as it will be sent, or None (counted) when it is not sent."""
        try:
            head = decode_key(payload)
            reason = route_skip_reason(self.pixels.get(head.pixel_id), head.source, head.event_id)
            if reason is not None:
                self._skip(reason)
                return None
            record = STORED.decode(payload)
            if self._erased(head.pixel_id, payload):
                self._skip("erased")
                return None
        except msgspec.DecodeError:
            log.error("undecodable log record skipped", extra={"position": str(origin)})
            self._skip("undecodable")
            return None
        if record.consent == "denied":
            self._skip("consent_denied")
            return None
        return Item(head, payload, encode_event(record), record.test_event_code, origin=origin)

    def _route(self, items: list[Item], tracked: Tracked) -> None:
        now = time.monotonic()
        touched: set[Lane] = set()
        spilled: dict[Lane, list[SpillEntry]] = {}
        for item in items:
            lane = self._lane(item.head.pixel_id)
            if not lane.failing and not lane.spill.backlog and len(lane.queue) < self.lane_capacity:
                item.owner = tracked
                item.queued_at = now
                tracked.outstanding += 1
                self._in_memory += 1
                lane.queue.append(item)
                touched.add(lane)
            else:  # behind or failing: straight to disk, so the offset can move on
                spilled.setdefault(lane, []).append(item.entry())
        for lane, entries in spilled.items():
            lane.spill.append(entries)
            lane.spill.sync()  # before the batch can be committed
            self.metrics.forward_spilled.inc(len(entries))
            touched.add(lane)
        for lane in touched:
            lane.notify()

    async def _drop_finished(
        self, items: list[Item], final: tuple[str, ...] = ("sent", "dead")
    ) -> list[Item]:
        """Skip events whose latest ledger row is final (after a crash)."""
        since = min(i.head.received_at for i in items) - 60
        try:
            latest = await asyncio.to_thread(
                self.ledger.latest_outcomes, [key_of(i.head) for i in items], since
            )
        except Exception as exc:  # ClickHouse down: sending again beats not sending
            log.warning("cannot check the delivery ledger; events may be re-sent",
                        extra={"error": str(exc)[:300]})  # fmt: skip
            return items
        kept = []
        for item in items:
            if latest.get(key_of(item.head)) in final:
                self._skip("already_final")
            else:
                kept.append(item)
        return kept

    def _skip(self, reason: SkipReason, count: int = 1) -> None:
        self.metrics.forward_skipped.labels(reason).inc(count)

    # ---------------------------------------------------------------- lanes

    def _lane(self, pixel_id: str) -> Lane:
        lane = self._lanes.get(pixel_id)
        if lane is None:
            client = httpx.AsyncClient(
                timeout=httpx.Timeout(self.request_timeout),
                limits=httpx.Limits(max_connections=self.concurrency,
                                    max_keepalive_connections=self.concurrency),
                trust_env=False,
                headers={"User-Agent": "pixel-server"},
            )  # fmt: skip
            spill = PixelSpill(self.spill_dir / pixel_id, fsync=self.fsync)
            lane = self._lanes[pixel_id] = Lane(pixel_id, spill, client)
            lane.tasks = [
                asyncio.create_task(self._worker(lane), name=f"forwarder-{pixel_id}-{n}")
                for n in range(self.concurrency)
            ]
        return lane

    def _scan_spill(self) -> None:
        """Adopt chunk files on disk: from before a restart, or queued by a replay."""
        if not self.spill_dir.is_dir():
            return
        for directory in self.spill_dir.iterdir():
            if not directory.is_dir() or not PIXEL_ID.match(directory.name):
                continue
            if directory.name not in self._lanes and not any(directory.iterdir()):
                with contextlib.suppress(OSError):
                    directory.rmdir()  # a pixel with nothing left to retry
                continue
            lane = self._lane(directory.name)
            if lane.spill.scan():
                lane.notify()

    async def _worker(self, lane: Lane) -> None:
        while True:
            work = await self._next_work(lane)
            lane.inflight += 1
            try:
                await self._deliver(lane, work)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # a bug or a full disk must not lose events
                log.exception("forwarding failed unexpectedly", extra={"pixel_id": lane.pixel_id})
                self._recover_work(lane, work, exc)
            finally:
                lane.inflight -= 1
                if work.probe:
                    lane.probing = False
                lane.notify()

    def _recover_work(self, lane: Lane, work: Work, exc: Exception) -> None:
        """Retry what a failed delivery left unfinished: from disk, else from memory."""
        pending = [i for i in work.items if not i.done]
        answer = Answer("retry", message=f"internal error: {exc!r}"[:300])
        try:
            self._settle(lane, work, pending, answer, probe=True)
            return
        except Exception:
            log.exception("cannot write the retry store", extra={"pixel_id": lane.pixel_id})
        self._failed(lane, answer, counted=True)
        if work.chunk is not None:
            lane.spill.put_back(work.chunk)  # unchanged on disk: rewrites are atomic
        else:
            lane.queue.extendleft(reversed([i for i in pending if i.owner is not None]))

    async def _next_work(self, lane: Lane) -> Work:
        while True:
            now = time.monotonic()
            timeout: float | None = None
            if lane.failing:
                # One probe at a time, after the backoff, until an answer comes.
                if not lane.probing:
                    if now < lane.retry_at:
                        timeout = lane.retry_at - now
                    elif lane.queue or lane.spill.has_ready:
                        work = self._take(lane)
                        if work is not None:
                            work.probe = lane.probing = True
                            return work
            elif lane.queue:
                age = now - lane.queue[0].queued_at
                if len(lane.queue) >= self.batch_events or self._draining or age >= self.linger:
                    return self._take(lane)  # type: ignore[return-value]
                timeout = self.linger - age
            elif lane.spill.has_ready:
                work = self._take(lane)
                if work is not None:
                    return work
                continue
            await lane.wait(timeout)

    def _take(self, lane: Lane) -> Work | None:
        if lane.queue:
            n = min(self.batch_events, len(lane.queue))
            return Work([lane.queue.popleft() for _ in range(n)])
        taken = lane.spill.take()
        if taken is None:
            return None
        chunk, entries = taken
        items = []
        for e in entries:
            origin = Position(e.origin_segment, e.origin_offset) if e.origin_segment >= 0 else None
            if chunk.found and origin is not None and origin >= self._startup_committed:
                continue  # the log had not passed it at the crash: the log hands it out again
            if self._erased(lane.pixel_id, e.record):
                self._skip("erased")
                continue
            record = STORED.decode(e.record)
            items.append(Item(decode_key(e.record), e.record, encode_event(record),
                               record.test_event_code, e.attempts, origin))  # fmt: skip
        return Work(items, chunk)

    # ------------------------------------------------------------- delivery

    async def _deliver(self, lane: Lane, work: Work) -> None:
        items = work.items
        if work.chunk is not None and work.chunk.found and self.recheck and items:
            # A replayed dead letter is "dead" on the ledger until it goes out.
            final = ("sent",) if work.chunk.replay else ("sent", "dead")
            items = await self._drop_finished(items, final)
            for dropped in set(work.items) - set(items):
                dropped.done = True
        pixel = self.pixels.get(lane.pixel_id)
        reason = pixel_skip_reason(pixel)
        if reason is not None or pixel is None:
            for item in items:
                self._finish(item)
            self._skip(reason or "unknown_pixel", len(items))
            self._settle(lane, work, [], None)
            return
        retry, failure, answered = await self._send(lane, pixel, items)
        if answered and not retry:
            self._recovered(lane)
        self._settle(lane, work, retry, failure, probe=work.probe)

    async def _send(
        self, lane: Lane, pixel: Pixel, items: list[Item]
    ) -> tuple[list[Item], Answer | None, bool]:
        """Send items (grouped by test code, bisecting 40002 rejections).

        Returns the items to retry, the failure that made them so, and whether
        TikTok gave any definitive answer (the endpoint works).
        """
        groups: dict[str, list[Item]] = {}
        for item in items:
            groups.setdefault(test_code_of(pixel, item.test_code), []).append(item)
        pending: deque[tuple[str, list[Item]]] = deque(
            (code, group[i : i + self.batch_events])
            for code, group in groups.items()
            for i in range(0, len(group), self.batch_events)
        )
        retry: list[Item] = []
        failure: Answer | None = None
        answered = False
        while pending:
            code, part = pending.popleft()
            bad = self._credentials_failing(pixel)
            if bad is not None:
                self._dead_unsent(part, bad)
                continue
            body = encode_body(pixel.tiktok_pixel_code, [i.encoded for i in part], code)
            if len(body) > self.max_body_bytes and len(part) > 1:
                half = len(part) // 2
                pending.extendleft([(code, part[half:]), (code, part[:half])])
                continue
            answer, attempt = await self._post(lane, pixel, body, part)
            if answer.kind == "sent":
                answered = True
                self._record(part, attempt, "sent")
                now = time.time()
                for item in part:
                    self.metrics.forward_delay.observe(max(0.0, now - item.head.received_at))
            elif answer.kind == "retry":
                self._record(part, attempt, "retrying")
                retry.extend(part)
                for _, rest in pending:  # the endpoint is failing: do not try the rest now
                    retry.extend(rest)
                pending.clear()
                failure = answer
            elif answer.code == INVALID_PARAMETER and len(part) > 1:
                # One bad event fails the batch: bisect so the good ones still go.
                answered = True
                self._record(part, attempt, "retrying", finish=False)
                half = len(part) // 2
                pending.extendleft([(code, part[half:]), (code, part[:half])])
                self.metrics.forward_requests.labels("split").inc()
            else:
                answered = True
                self._record(part, attempt, "dead")
                if answer.code == INVALID_TOKEN:
                    self._mark_bad_credentials(pixel, answer)
        return retry, failure, answered

    async def _post(
        self, lane: Lane, pixel: Pixel, body: bytes, part: list[Item]
    ) -> tuple[Answer, Attempt]:
        for item in part:
            item.attempts += 1
        url = pixel.tiktok_api_base.rstrip("/") + API_PATH
        headers = {"Access-Token": pixel.tiktok_access_token, "Content-Type": "application/json"}
        started = time.time()
        t0 = time.perf_counter()
        try:
            response = await lane.client.post(url, content=body, headers=headers)
            answer = classify(
                response.status_code, response.content, response.headers.get("retry-after")
            )
        except httpx.TimeoutException as exc:
            answer = Answer("retry", message=f"no answer within {self.request_timeout:g}s "
                                             f"({type(exc).__name__})")  # fmt: skip
        except (httpx.HTTPError, OSError) as exc:
            answer = Answer("retry", message=f"connection failed: {str(exc) or type(exc).__name__}")
        elapsed = time.perf_counter() - t0
        self.metrics.forward_request_seconds.observe(elapsed)
        result = "split" if answer.code == INVALID_PARAMETER and len(part) > 1 else answer.kind
        if result != "split":
            self.metrics.forward_requests.labels(result).inc()
        attempt = Attempt(
            attempted_at=started,
            latency_ms=min(round(elapsed * 1000), 2**32 - 1),
            http_status=answer.http_status,
            tiktok_code=answer.code,
            tiktok_message=answer.message,
            request_id=answer.request_id,
            batch_id=uuid.uuid4().hex[:16],
        )
        return answer, attempt

    def _record(
        self, part: Sequence[Item], attempt: Attempt, outcome: DeliveryState, *, finish: bool = True
    ) -> None:
        """Ledger rows for one attempt; sent and dead items are finished."""
        seq = self.ledger.add([i.head for i in part], [i.attempts for i in part], attempt,
                              outcome)  # fmt: skip
        self.metrics.forward_events.labels(outcome).inc(len(part))
        for item in part:
            item.seq = seq
            if finish and outcome != "retrying":
                self._finish(item)

    def _finish(self, item: Item) -> None:
        """The item no longer needs memory (sent, dead, skipped or spilled)."""
        item.done = True
        tracked = item.owner
        if tracked is None:
            return
        item.owner = None
        tracked.outstanding -= 1
        tracked.ledger_seq = max(tracked.ledger_seq, item.seq)
        self._in_memory -= 1
        if self._in_memory < self.max_in_memory:
            self._room.set()
            self._room = asyncio.Event()

    def _settle(
        self, lane: Lane, work: Work, retry: list[Item], failure: Answer | None,
        *, probe: bool = False,
    ) -> None:  # fmt: skip
        """After a delivery: persist what must be retried, release the rest."""
        if retry:
            # Concurrent batches failing together count as one failure for the backoff.
            counted = probe or not lane.failing
            self._failed(lane, failure or Answer("retry", message="unknown failure"), counted)
            entries = [i.entry() for i in retry]
            if work.chunk is not None:
                lane.spill.rewrite(work.chunk, entries)  # atomic: never both old and new
                for item in retry:
                    item.done = True
            else:
                lane.spill.append(entries)
                lane.spill.sync()
                for item in retry:
                    self._finish(item)
            self.metrics.forward_spilled.inc(len(entries))
            self._spill_queue(lane)  # the endpoint fails: what waits goes to disk too
        elif work.chunk is not None:
            lane.spill.done(work.chunk)
            seq = max((i.seq for i in work.items), default=0)
            self._removals.append((seq, lane, work.chunk))  # after its rows are flushed

    def _spill_queue(self, lane: Lane) -> None:
        if not lane.queue:
            return
        items = list(lane.queue)
        lane.spill.append(i.entry() for i in items)
        lane.spill.sync()
        lane.queue.clear()  # only now: until they are on disk they stay queued
        for item in items:
            self._finish(item)
        self.metrics.forward_spilled.inc(len(items))

    def _failed(self, lane: Lane, answer: Answer, counted: bool) -> None:
        lane.last_error = answer.message
        if counted:
            lane.failures += 1
        delay = self.policy.delay(max(1, lane.failures), answer.retry_after)
        lane.retry_at = max(lane.retry_at, time.monotonic() + delay) if not counted else (
            time.monotonic() + delay
        )  # fmt: skip
        if lane.failing_since is None:
            lane.failing_since = time.time()
            log.warning(
                "TikTok endpoint failing; events are retried from disk",
                extra={"pixel_id": lane.pixel_id, "error": answer.message,
                       "retry_in_s": round(delay, 2)},
            )  # fmt: skip

    def _recovered(self, lane: Lane) -> None:
        if lane.failing_since is not None:
            after = round(time.time() - lane.failing_since, 1)
            log.info("TikTok endpoint answers again",
                     extra={"pixel_id": lane.pixel_id, "after_s": after})  # fmt: skip
        lane.failing_since = None
        lane.failures = 0
        lane.retry_at = 0.0
        lane.last_error = ""

    # ---------------------------------------------------------- credentials

    def _credentials_failing(self, pixel: Pixel) -> BadCredentials | None:
        bad = self._bad_credentials.get(pixel.id)
        if bad is not None and bad.updated_at != pixel.updated_at:
            log.info("pixel settings changed; sending again", extra={"pixel_id": pixel.id})
            del self._bad_credentials[pixel.id]
            return None
        return bad

    def _mark_bad_credentials(self, pixel: Pixel, answer: Answer) -> None:
        if pixel.id not in self._bad_credentials:
            log.error(
                "TikTok rejected the pixel's access token; its events are dead-lettered "
                "until the pixel's TikTok settings change",
                extra={"pixel_id": pixel.id, "error": answer.message},
            )
        self._bad_credentials[pixel.id] = BadCredentials(
            pixel.updated_at, time.time(), answer.message
        )

    def _dead_unsent(self, part: list[Item], bad: BadCredentials) -> None:
        message = (
            f"not sent: TikTok rejected this pixel's access token at {iso_time(bad.since)} "
            f"({bad.message}); fix the pixel's TikTok settings, then replay"
        )
        attempt = Attempt(time.time(), 0, 0, INVALID_TOKEN, message, "", "")
        self._record(part, attempt, "dead")

    # ------------------------------------------------------- commit, chores

    async def _commit_loop(self) -> None:
        while True:
            await asyncio.sleep(self.commit_interval)
            try:
                await self._commit_ready()
            except Exception:  # keep going: the next round commits further
                log.exception("forwarder offset commit failed")

    async def _commit_ready(self) -> None:
        """Commit the log up to the oldest unfinished batch; remove finished chunks."""
        flushed = self.ledger.flushed_seq
        end: Position | None = None
        tracked = self._tracked
        while tracked and tracked[0].outstanding == 0 and tracked[0].ledger_seq <= flushed:
            end = tracked.popleft().end
        if end is not None:
            with contextlib.suppress(WalClosed):
                await self._in_log_thread(self.reader.commit, end)
        if self._removals:
            keep = []
            for seq, lane, chunk in self._removals:
                if seq <= flushed:
                    lane.spill.remove(chunk)
                else:
                    keep.append((seq, lane, chunk))
            self._removals = keep

    async def _housekeeping(self) -> None:
        tick = min(0.5, self.rescan_interval)
        since_scan = 0.0
        while True:
            await asyncio.sleep(tick)
            since_scan += tick
            try:
                cutoff = time.monotonic() - self.spill_after
                for lane in list(self._lanes.values()):
                    if lane.queue and lane.queue[0].queued_at < cutoff:
                        self._spill_queue(lane)  # a slow endpoint must not pin the log
                        lane.notify()
                if since_scan >= self.rescan_interval:
                    since_scan = 0.0
                    self._scan_spill()  # chunks queued by `deliveries replay`
            except Exception:  # the disk: try again next round
                log.exception("forwarder housekeeping failed")


async def _wait_event(event: asyncio.Event, timeout: float) -> bool:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(event.wait(), timeout)
    return event.is_set()


def iso_time(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).isoformat(timespec="seconds")
