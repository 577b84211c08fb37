"""An ingest worker process (docs/architecture.md §8).

It answers the ingest routes (``/collect``, ``/collect.gif``,
``/api/v1/events``, the Events API gateway, the snippet) by itself: parse, validate, enrich, append
to its own write-ahead log ``<data>/wal/w<K>``, answer. It holds no
ClickHouse client and no forwarder. Everything else hops to the storage
process. The pixel registry comes from the storage process by long polling
(a conditional GET answered at once when the registry changed, else 304
after ``REGISTRY_WAIT_S``); the worker serves no request before it has a
first snapshot.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, Final

import anyio
import httpx
from prometheus_client.core import GaugeMetricFamily
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from pixel_server import snippet_route
from pixel_server.config import Settings
from pixel_server.errors import (
    ApiError,
    api_error_handler,
    http_error_handler,
    unexpected_error_handler,
)
from pixel_server.events.schema import Limits
from pixel_server.ingest import api, gateway
from pixel_server.ingest.collect import BrowserIntake
from pixel_server.ingest.ratelimit import RateLimiter
from pixel_server.ingest.service import Ingestor
from pixel_server.logs import AccessLogMiddleware
from pixel_server.metrics import Metrics
from pixel_server.pipeline.dedup import DedupIndex
from pixel_server.pipeline.wal import WriteAheadLog
from pixel_server.processes.hop import StorageHop, storage_link
from pixel_server.processes.sequencer import READER, worker_log_dir
from pixel_server.processes.storage import WORKER_HEADER, decode_pixels
from pixel_server.registry import PixelRegistry
from pixel_server.request_limits import HeaderLimitMiddleware

log = logging.getLogger("pixel_server.worker")

REGISTRY_WAIT_S: Final = 1.0
RETRY_S: Final = 0.2
METRICS_PUSH_S: Final = 1.0


def storage_socket(data_dir: Path) -> Path:
    return data_dir / "run" / "storage.sock"


class RegistryFeed:
    """Keeps the worker's registry a copy of the storage process's."""

    def __init__(self, link: httpx.AsyncClient, registry: PixelRegistry, slot: int) -> None:
        self._link = link
        self._registry = registry
        self._headers = {WORKER_HEADER: f"{slot} {os.getpid()}"}
        self._etag = ""
        self.fetched_at = 0.0  # monotonic time of the last answer

    async def poll(self, wait: float = 0.0) -> bool:
        """Fetch the registry if it changed, waiting up to ``wait`` s for a change."""
        headers = {**self._headers, "if-none-match": self._etag} if self._etag else self._headers
        try:
            r = await self._link.get(
                "/internal/v1/registry", params={"wait": wait}, headers=headers, timeout=wait + 5
            )
        except httpx.HTTPError:
            return False
        if r.status_code == 200:
            self._registry.replace(decode_pixels(r.content))
            self._etag = r.headers.get("etag", "")
        elif r.status_code != 304:
            return False
        self.fetched_at = time.monotonic()
        return True

    async def first(self) -> None:
        while not await self.poll():
            await asyncio.sleep(0.1)

    async def follow(self) -> None:
        """Long-poll for ever: a change arrives as soon as the storage process has it."""
        while True:
            if not await self.poll(wait=REGISTRY_WAIT_S):
                await asyncio.sleep(RETRY_S)


def create_worker_app(settings: Settings, slot: int) -> Starlette:
    data_dir = settings.data_dir.resolve()
    metrics = Metrics()
    registry = PixelRegistry()
    ingestor = Ingestor(
        metrics,
        Limits(
            browser_horizon_s=settings.browser_horizon_hours * 3600,
            server_horizon_s=settings.server_horizon_hours * 3600,
        ),
        DedupIndex(),  # a fast path only: the storage process's sequencer is exact
    )
    # Per worker: a client's connections may spread over the workers (docs/architecture.md §8).
    ip_limiter = RateLimiter(settings.rate_limit_ip, settings.rate_limit_ip_burst)
    pixel_limiter = RateLimiter(settings.rate_limit_pixel, settings.rate_limit_pixel_burst)
    link = storage_link(str(storage_socket(data_dir)))
    feed = RegistryFeed(link, registry, slot)
    opened: list[WriteAheadLog] = []

    def log_metrics() -> list[GaugeMetricFamily]:
        if not opened:
            return []
        size = GaugeMetricFamily("pixel_log_bytes", "Bytes in the write-ahead log.")
        size.add_metric([], opened[0].size_bytes())
        fsyncs = GaugeMetricFamily("pixel_log_fsyncs", "fsync calls since start.")
        fsyncs.add_metric([], opened[0].stats().fsyncs)
        return [size, fsyncs]

    metrics.add_callback(log_metrics)

    async def every_second(wal: WriteAheadLog) -> None:
        while True:
            await asyncio.sleep(METRICS_PUSH_S)
            body = await anyio.to_thread.run_sync(metrics.render)
            with contextlib.suppress(httpx.HTTPError):
                await link.put(f"/internal/v1/metrics/{slot}", content=body, timeout=2)
            await anyio.to_thread.run_sync(wal.adopt_commits)  # delete moved segments

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        s = settings
        wal = await anyio.to_thread.run_sync(
            lambda: WriteAheadLog(
                worker_log_dir(data_dir / "wal", slot),
                (READER,),
                segment_bytes=s.wal_segment_mb << 20,
                max_bytes=s.wal_max_mb << 20,
                commit_interval=s.wal_commit_interval_ms / 1000,
                fsync=s.wal_fsync,
                new_segment_on_open=True,  # the storage process follows it
            )
        )
        opened.append(wal)
        ingestor.attach(wal)
        tasks: list[asyncio.Task[None]] = []
        try:
            await feed.first()
            tasks += [asyncio.create_task(feed.follow()), asyncio.create_task(every_second(wal))]
            yield
        finally:
            for task in tasks:
                task.cancel()
            for task in tasks:
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            ingestor.attach(None)
            await anyio.to_thread.run_sync(wal.close)
            await link.aclose()

    async def healthz(request: Request) -> Response:
        return JSONResponse({"status": "ok", "worker": slot, "pid": os.getpid()})

    async def readyz(request: Request) -> Response:
        age = time.monotonic() - feed.fetched_at
        own: dict[str, Any] = {"slot": slot, "registry_age_s": round(age, 1)}
        try:
            r = await link.get("/readyz", timeout=5)
            storage: dict[str, Any] = r.json()
            ready = r.status_code == 200
        except (httpx.HTTPError, ValueError):
            storage, ready = {"checks": {"storage": "unreachable"}}, False
        checks = {**storage.get("checks", {}), "worker": own}
        return JSONResponse(
            {"status": "ready" if ready else "unavailable", "checks": checks},
            status_code=200 if ready else 503,
        )

    browser = BrowserIntake(
        registry=registry,
        ingestor=ingestor,
        ip_limiter=ip_limiter,
        pixel_limiter=pixel_limiter,
        metrics=metrics,
        trusted_proxies=settings.trusted_proxies,
    )
    intake = api.ServerIntake(
        registry=registry, ingestor=ingestor, pixel_limiter=pixel_limiter, metrics=metrics
    )
    routes: list[BaseRoute] = [
        Route("/healthz", healthz, methods=["GET"]),
        Route("/readyz", readyz, methods=["GET"]),
        *browser.routes(),
        *api.routes(intake, gateway.openapi_paths),
        *gateway.routes(intake),
        *snippet_route.routes(registry, settings.base_url),
    ]

    counters: dict[tuple[str, int], Any] = {}  # labels() per request costs more than inc()

    def count(route: str, status: int) -> None:
        if route == "unmatched":  # hopped: the storage process counts it
            return
        counter = counters.get((route, status))
        if counter is None:
            counter = counters[(route, status)] = metrics.http_requests.labels(route, str(status))
        counter.inc()

    app = Starlette(
        routes=routes,
        middleware=[
            Middleware(AccessLogMiddleware, count=count),
            Middleware(HeaderLimitMiddleware),
        ],
        exception_handlers={
            ApiError: api_error_handler,
            HTTPException: http_error_handler,
            Exception: unexpected_error_handler,
        },
        lifespan=lifespan,
    )
    app.router.default = StorageHop(link)
    return app
