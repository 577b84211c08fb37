"""What the storage process adds to the full application in the multi-process
layout (docs/architecture.md §8): the sequencer over the workers' logs, the
registry snapshot workers poll, the board of workers seen, and ``/readyz``
and ``/metrics`` over every process.

These routes are served only on the storage process's Unix socket; workers
refuse to hop ``/internal/`` paths, so nothing here is reachable from outside.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import hashlib
import time
from collections.abc import Callable
from typing import Any

import anyio
import orjson
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from pixel_server.health import public_checks
from pixel_server.metrics import Metrics
from pixel_server.pipeline.dedup import DedupIndex
from pixel_server.pipeline.wal import WriteAheadLog
from pixel_server.pixel import SECRET_FIELDS, Pixel
from pixel_server.processes.exposition import merge_expositions
from pixel_server.processes.sequencer import Sequencer, slots_on_disk
from pixel_server.registry import PixelRegistry

Readiness = Callable[[], tuple[bool, dict[str, Any]]]

PEER_HEADER = "x-pixel-peer"  # the client's address, set by the worker's hop
WORKER_HEADER = "x-pixel-worker"  # "<slot> <pid>", on a worker's registry poll
#: A worker that has not polled for this long counts as down in /readyz.
WORKER_SILENCE_S = 3.0
#: Longest a registry poll waits for a change (workers poll again at once).
LONG_POLL_S = 1.0
#: Longest a management answer waits for the workers to have its change.
SYNC_WAIT_S = 2.0


def encode_pixels(pixels: list[Pixel]) -> bytes:
    """The snapshot for workers, without the credentials only this process uses."""
    blank = dict.fromkeys(SECRET_FIELDS, "")
    return orjson.dumps([{**dataclasses.asdict(p), **blank} for p in pixels])


def decode_pixels(body: bytes) -> list[Pixel]:
    return [Pixel(**{**row, "origins": tuple(row["origins"])}) for row in orjson.loads(body)]


@dataclasses.dataclass(slots=True)
class _Seen:
    pid: int
    at: float  # monotonic
    metrics: bytes = b""
    etag: str = ""  # the snapshot the worker last said it holds


class StorageSide:
    def __init__(
        self,
        *,
        slots: int,
        registry: PixelRegistry,
        dedup: DedupIndex,
        metrics: Metrics,
        readiness: Readiness,
        fsync: bool,
    ) -> None:
        self._slots = slots
        self._registry = registry
        self._dedup = dedup
        self._metrics = metrics
        self._readiness = readiness
        self._fsync = fsync
        self.sequencer: Sequencer | None = None
        self._workers: dict[int, _Seen] = {}
        self._snapshot: tuple[int, bytes, str] = (-1, b"", "")
        self._changed: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        metrics.add_callback(self._sequencer_metrics)
        registry.listeners.append(self._on_registry_change)

    async def start(self, wal: WriteAheadLog) -> None:
        self._loop = asyncio.get_running_loop()
        slots = sorted(set(range(self._slots)) | slots_on_disk(wal.directory))
        self.sequencer = Sequencer(wal, slots, self._dedup, fsync=self._fsync)
        await anyio.to_thread.run_sync(self.sequencer.rebuild)
        self.sequencer.start()

    async def stop(self) -> None:
        if self.sequencer is not None:
            await self.sequencer.stop()

    def routes(self) -> list[Route]:
        return [
            Route("/internal/v1/registry", self.registry_snapshot, methods=["GET"]),
            Route("/internal/v1/metrics/{slot:int}", self.worker_metrics, methods=["PUT"]),
            Route("/readyz", self.readyz, methods=["GET"]),
            Route("/metrics", self.render_metrics, methods=["GET"]),
        ]

    # registry ---------------------------------------------------------------

    def _current(self) -> tuple[bytes, str]:
        version, body, etag = self._snapshot
        if version != self._registry.version:
            version = self._registry.version
            body = encode_pixels(self._registry.all())
            etag = '"' + hashlib.blake2b(body, digest_size=12).hexdigest() + '"'
            self._snapshot = (version, body, etag)
        return body, etag

    def _wakeup(self) -> asyncio.Event:
        if self._changed is None:
            self._changed = asyncio.Event()
        return self._changed

    def registry_changed(self) -> None:
        """Answer the waiting polls now."""
        event, self._changed = self._wakeup(), asyncio.Event()
        event.set()

    def _on_registry_change(self) -> None:
        """On the refreshing thread (a management operation, the periodic
        refresh): return only once every live worker has the new registry, so
        that when ``pixel add`` or ``pixel disable`` answers, every worker knows."""
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        try:
            on_loop = asyncio.get_running_loop() is loop
        except RuntimeError:
            on_loop = False
        if on_loop:  # cannot wait here: the loop answers the workers
            self.registry_changed()
            return
        future = asyncio.run_coroutine_threadsafe(self._propagate(), loop)
        with contextlib.suppress(Exception):  # bounded; a stopping loop answers nothing
            future.result(SYNC_WAIT_S + 1)

    async def _propagate(self) -> None:
        self.registry_changed()
        await self.workers_synced()

    async def registry_snapshot(self, request: Request) -> Response:
        """The registry for a worker: 304 while its copy (``If-None-Match``) is
        current, after waiting up to ``?wait=`` seconds for a change."""
        held = request.headers.get("if-none-match", "")
        slot, _, pid = request.headers.get(WORKER_HEADER, "").partition(" ")
        seen: _Seen | None = None
        if slot.isdigit() and pid.isdigit():
            seen = self._workers.get(int(slot))
            if seen is None or seen.pid != int(pid):
                seen = self._workers[int(slot)] = _Seen(int(pid), 0.0)
            seen.at = time.monotonic()
            seen.etag = held
        if not self._registry.loaded:
            return JSONResponse({"error": {"code": "registry_not_loaded"}}, status_code=503)
        body, etag = self._current()
        wait = min(float(request.query_params.get("wait", "0") or 0), LONG_POLL_S)
        if held == etag and wait > 0:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wakeup().wait(), wait)
            body, etag = self._current()
            if seen is not None:
                seen.at = time.monotonic()
        if held == etag:
            return Response(status_code=304, headers={"etag": etag})
        return Response(body, media_type="application/json", headers={"etag": etag})

    async def workers_synced(self, timeout: float = SYNC_WAIT_S) -> bool:
        """Wait until every live worker holds the current snapshot."""
        _, etag = self._current()
        deadline = time.monotonic() + timeout
        while True:
            now = time.monotonic()
            behind = [
                s for s in self._workers.values()
                if now - s.at < WORKER_SILENCE_S and s.etag != etag
            ]  # fmt: skip
            if not behind or now > deadline:
                return not behind
            await asyncio.sleep(0.005)

    # workers ----------------------------------------------------------------

    async def worker_metrics(self, request: Request) -> Response:
        seen = self._workers.get(request.path_params["slot"])
        if seen is not None:
            seen.metrics = await request.body()
        return Response(status_code=204)

    def _worker_checks(self) -> tuple[bool, dict[str, str]]:
        """Each slot's state word: ok, silent (no poll for a while) or not started."""
        now = time.monotonic()
        checks: dict[str, str] = {}
        for slot in range(self._slots):
            seen = self._workers.get(slot)
            if seen is None:
                checks[f"w{slot}"] = "not started"
            else:
                checks[f"w{slot}"] = "silent" if now - seen.at > WORKER_SILENCE_S else "ok"
        return all(v == "ok" for v in checks.values()), checks

    def readiness(self) -> tuple[bool, dict[str, Any]]:
        ready, checks = self._readiness()
        workers_ok, checks["workers"] = self._worker_checks()
        if self.sequencer is not None:
            error = self.sequencer.last_error
            checks["sequencer"] = {
                "status": "degraded" if error else "ok",
                "error": error,
                "backlog_bytes": self.sequencer.backlog(),
            }
        return ready and workers_ok, checks

    async def readyz(self, request: Request) -> Response:
        ready, checks = await anyio.to_thread.run_sync(self.readiness)
        public = {**public_checks(checks), "workers": checks["workers"]}  # state words only
        return JSONResponse(
            {"status": "ready" if ready else "unavailable", "checks": public},
            status_code=200 if ready else 503,
        )

    # metrics ----------------------------------------------------------------

    async def render_metrics(self, request: Request) -> Response:
        own = await anyio.to_thread.run_sync(self._metrics.render)
        parts = {"": own}  # the storage process's own samples stay as they are
        for slot, seen in sorted(self._workers.items()):
            if seen.metrics:
                parts[f"w{slot}"] = seen.metrics
        body = await anyio.to_thread.run_sync(merge_expositions, parts)
        return PlainTextResponse(body, media_type="text/plain; version=0.0.4; charset=utf-8")

    def _sequencer_metrics(self) -> list[GaugeMetricFamily | CounterMetricFamily]:
        if self.sequencer is None:
            return []
        counts = self.sequencer.counts
        records = CounterMetricFamily(
            "pixel_sequencer_records",
            "Worker-log records the sequencer handled, by outcome (appended, duplicate, replayed).",
            labels=["outcome"],
        )
        records.add_metric(["appended"], counts.appended)
        records.add_metric(["duplicate"], counts.duplicates)
        records.add_metric(["replayed"], counts.replayed)
        backlog = GaugeMetricFamily(
            "pixel_worker_log_backlog_bytes",
            "Bytes of a worker's log the sequencer has not moved yet.",
            labels=["log"],
        )
        for name, size in self.sequencer.backlog().items():
            backlog.add_metric([name], size)
        return [records, backlog]


class PeerFromHop:
    """On the Unix socket, the peer is a worker: take the client's address from
    the header the worker's hop set, so rate limits and ``X-Forwarded-For``
    checks see the real client."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            headers = scope["headers"]
            for name, value in headers:
                if name == PEER_HEADER.encode():
                    host, _, port = value.decode("latin-1").rpartition(" ")
                    scope = {
                        **scope,
                        "client": (host, int(port) if port.isdigit() else 0),
                        "headers": [h for h in headers if h[0] != name],
                    }
                    break
        await self.app(scope, receive, send)
