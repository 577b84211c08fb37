"""The Starlette application factory and the server's runtime (its parts and
their start/stop order)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import anyio
import orjson
from prometheus_client.core import GaugeMetricFamily
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import BaseRoute, Route

from pixel_server import dashboard, snippet_route
from pixel_server.catalog import feed as catalog_feed
from pixel_server.catalog import webhooks as catalog_webhooks
from pixel_server.catalog.push import CatalogPush
from pixel_server.catalog.schedule import CatalogSchedule
from pixel_server.catalog.store import CatalogStore
from pixel_server.catalog.sync import CatalogSync
from pixel_server.config import Settings
from pixel_server.errors import (
    ApiError,
    api_error_handler,
    error_response,
    http_error_handler,
    unexpected_error_handler,
)
from pixel_server.events.schema import Limits
from pixel_server.ingest import api, collect
from pixel_server.ingest.ratelimit import RateLimiter
from pixel_server.ingest.service import Ingestor
from pixel_server.ingest.webhooks import RetryPolicy, Webhooks
from pixel_server.ingest.webhooks import routes as webhook_routes
from pixel_server.logs import AccessLogMiddleware
from pixel_server.management import Management
from pixel_server.metrics import Metrics
from pixel_server.pipeline.dedup import DedupIndex
from pixel_server.pipeline.record import COLUMNS as RECORD_COLUMNS
from pixel_server.pipeline.record import Record
from pixel_server.pipeline.record import to_columns as record_columns
from pixel_server.pipeline.wal import WriteAheadLog
from pixel_server.registry import PixelRegistry
from pixel_server.reports.warmer import Warmer
from pixel_server.sinks import tiktok
from pixel_server.sinks.clickhouse import Loader
from pixel_server.sinks.ledger import Ledger
from pixel_server.storage.client import DataDirInUse, StorageError, parse_url
from pixel_server.storage.database import Database
from pixel_server.storage.lock import DataDirLock
from pixel_server.storage.pixels import PixelStore, RegistryError

log = logging.getLogger("pixel_server.app")

DEMO_PIXEL_NAME = "Demo store"
ADMIN_FILE = "admin.json"
WAL_READERS = ("loader", "forwarder")
ADMIN_SECRET_FILE = "admin.secret"
RECONNECT_SECONDS = 2.0
REGISTRY_REFRESH_SECONDS = 30.0


class Runtime:
    """Everything one server process owns, built from settings."""

    def __init__(self, settings: Settings, database: str | None = None) -> None:
        self.settings = settings
        self.data_dir = settings.data_dir.resolve()
        self.lock = DataDirLock(self.data_dir)
        self.database = Database(parse_url(settings.clickhouse_dsn, database))
        self.metrics = Metrics()
        self.registry = PixelRegistry()
        self.management = Management(
            self.database, on_change=self.refresh_registry, data_dir=self.data_dir
        )
        self.admin_secret = secrets.token_urlsafe(32)
        self.ip_limiter = RateLimiter(settings.rate_limit_ip, settings.rate_limit_ip_burst)
        self.pixel_limiter = RateLimiter(settings.rate_limit_pixel, settings.rate_limit_pixel_burst)
        self.limits = Limits(
            browser_horizon_s=settings.browser_horizon_hours * 3600,
            server_horizon_s=settings.server_horizon_hours * 3600,
        )
        self.dedup = DedupIndex()
        self.catalog = CatalogStore(self.database.client)
        self.catalog_sync = CatalogSync(self.catalog)
        self.catalog_push = CatalogPush(self.catalog)
        self.catalog_schedule = CatalogSchedule(
            self.registry.all, self.catalog_sync, self.catalog_push
        )
        self.wal: WriteAheadLog | None = None
        self.loader: Loader | None = None
        # TikTok forwarder; tests pass constructor options (short backoffs, timeouts).
        self.forwarder: tiktok.Forwarder | None = None
        self.forwarder_options: dict[str, Any] = {}
        self._ingestor: Ingestor | None = None
        # Order webhooks: delivery ledger + order fetcher (tests shorten the retry policy).
        self.webhook_policy = RetryPolicy()
        self._webhooks: Webhooks | None = None
        self.warmer = Warmer(
            self.database.client, self.registry, self.metrics, settings.report_warm_interval_s
        )
        self._tasks: list[asyncio.Task[None]] = []
        self.metrics.ready.set_function(lambda: 1.0 if self.readiness()[0] else 0.0)
        self.metrics.add_callback(self._log_metrics)
        self.metrics.add_callback(self._forwarder_metrics)

    # registry ------------------------------------------------------------

    def refresh_registry(self) -> None:
        self.registry.refresh(PixelStore(self.database.client()))

    def count_request(self, route: str, status: int) -> None:
        self.metrics.http_requests.labels(route, str(status)).inc()

    @property
    def ingestor(self) -> Ingestor:
        assert self._ingestor is not None, "runtime not started"
        return self._ingestor

    @property
    def webhooks(self) -> Webhooks:
        assert self._webhooks is not None, "runtime not started"
        return self._webhooks

    # readiness -----------------------------------------------------------

    def readiness(self) -> tuple[bool, dict[str, Any]]:
        problem = self.database.check()
        checks: dict[str, Any] = {"clickhouse": problem or "ok"}
        ready = problem is None
        if self.loader is not None:
            state = self.loader.state
            checks["loader"] = (
                "ok" if self.loader.healthy else f"degraded: inserts failing: {state.last_error}"
            )
            ready = ready and self.loader.healthy
        if self.forwarder is not None:
            # Details only: a TikTok problem never stops ingestion, so never unready.
            checks["forwarder"] = self.forwarder.status()
        if self.wal is not None:
            checks["log"] = {
                "bytes": self.wal.size_bytes(),
                "budget_bytes": self.wal.max_bytes,
                "backlog": {
                    name: self.wal.reader(name).backlog()._asdict() for name in WAL_READERS
                },
            }
        return ready, checks

    def _log_metrics(self) -> list[GaugeMetricFamily]:
        if self.wal is None:
            return []
        size = GaugeMetricFamily("pixel_log_bytes", "Bytes in the write-ahead log.")
        size.add_metric([], self.wal.size_bytes())
        backlog = GaugeMetricFamily(
            "pixel_log_backlog_bytes", "Log bytes a reader has not committed yet.",
            labels=["reader"],
        )  # fmt: skip
        records_behind = GaugeMetricFamily(
            "pixel_log_backlog_records", "About how many records a reader is behind.",
            labels=["reader"],
        )  # fmt: skip
        for name in WAL_READERS:
            b = self.wal.reader(name).backlog()
            backlog.add_metric([name], b.bytes)
            records_behind.add_metric([name], b.records)
        stats = self.wal.stats()
        fsyncs = GaugeMetricFamily("pixel_log_fsyncs", "fsync calls since start.")
        fsyncs.add_metric([], stats.fsyncs)
        dedup = GaugeMetricFamily("pixel_dedup_keys", "Keys in the in-memory dedup index.")
        dedup.add_metric([], len(self.dedup))
        return [size, backlog, records_behind, fsyncs, dedup]

    def _forwarder_metrics(self) -> list[GaugeMetricFamily]:
        return self.forwarder.collect_metrics() if self.forwarder is not None else []

    # lifecycle -----------------------------------------------------------

    async def start(self) -> None:
        self.lock.acquire()
        s = self.settings
        self.wal = WriteAheadLog(
            self.data_dir / "wal",
            WAL_READERS,
            segment_bytes=s.wal_segment_mb << 20,
            max_bytes=s.wal_max_mb << 20,
            commit_interval=s.wal_commit_interval_ms / 1000,
            fsync=s.wal_fsync,
        )
        self._ingestor = Ingestor(self.wal, self.metrics, self.limits, self.dedup)
        try:
            await anyio.to_thread.run_sync(self._connect)
            await anyio.to_thread.run_sync(self._rebuild_dedup)
        except DataDirInUse:
            self.wal.close()
            self.lock.release()
            raise
        except StorageError as exc:
            log.warning("ClickHouse unavailable at start; retrying", extra={"error": str(exc)})
        self.loader = Loader(
            self.wal.reader("loader"),
            self.insert_events,
            self.metrics,
            batch_rows=s.loader_batch_rows,
            interval=s.loader_interval_ms / 1000,
            probe=lambda: self.database.check() is None,
            quarantine=self.data_dir / "quarantine" / "events.jsonl",
        )
        self.loader.start()
        self.forwarder = tiktok.Forwarder(
            self.wal,
            self.registry,
            Ledger(self.database.client),
            self.metrics,
            spill_dir=self.data_dir / tiktok.SPILL_DIR,
            fsync=s.wal_fsync,
            **self.forwarder_options,
        )
        self.forwarder.start()
        self._webhooks = Webhooks(
            self.data_dir / "webhooks",
            ingestor=self._ingestor,
            registry=self.registry,
            metrics=self.metrics,
            policy=self.webhook_policy,
            fsync=s.wal_fsync,
        )
        await self._webhooks.start()
        self.warmer.start()
        self.catalog_schedule.start()
        self._tasks.append(asyncio.create_task(self._maintain()))
        self._write_admin_files()

    def insert_events(self, batch: list[Record], token: str) -> None:
        """The loader's way into ClickHouse (tests wrap it to inject failures)."""
        self.database.client().insert(
            "events",
            record_columns(batch),
            column_names=list(RECORD_COLUMNS),
            column_oriented=True,
            settings={"insert_deduplication_token": token},
        )

    def _rebuild_dedup(self) -> None:
        """Seed the index with the last 48 h of copies already in ClickHouse."""
        result = self.database.client().query(
            "SELECT pixel_id, event, event_id, toString(source), toUnixTimestamp64Milli(event_time)"
            " FROM events WHERE event_time > now64(3) - INTERVAL 49 HOUR"
            " AND NOT event_id_assigned ORDER BY event_time"
        )
        loaded = self.dedup.load((p, e, i, src, t / 1000) for p, e, i, src, t in result.result_rows)
        log.info("dedup index rebuilt", extra={"keys": loaded})

    def _connect(self) -> None:
        self.database.client()
        self.refresh_registry()
        if self.settings.demo:
            self._ensure_demo_pixel()

    def _ensure_demo_pixel(self) -> None:
        if any(p.name == DEMO_PIXEL_NAME for p in self.registry.all()):
            return
        pixel, _, owner_token = PixelStore(self.database.client()).add(
            name=DEMO_PIXEL_NAME, origins=[self.settings.base_url], platform="html"
        )
        self.refresh_registry()
        # The demo's owner token is printed once so a newcomer can open the dashboard.
        log.warning(
            "demo pixel created",
            extra={"pixel_id": pixel.id, "dashboard": f"{self.settings.base_url}/login?token="
                   + owner_token},
        )  # fmt: skip

    async def _maintain(self) -> None:
        """Reconnect while ClickHouse is down; refresh the registry now and then."""
        since_refresh = 0.0
        while True:
            await asyncio.sleep(RECONNECT_SECONDS)
            since_refresh += RECONNECT_SECONDS
            if self.database.connected and since_refresh < REGISTRY_REFRESH_SECONDS:
                continue
            since_refresh = 0.0
            try:
                await anyio.to_thread.run_sync(self._connect)
            except Exception as exc:  # keep trying; the reason is in /readyz
                log.debug("reconnect failed", extra={"error": str(exc)})

    async def stop(self) -> None:
        await anyio.to_thread.run_sync(self.warmer.stop)
        await anyio.to_thread.run_sync(self.catalog_schedule.stop)
        if self._webhooks is not None:  # first: its fetches write to the event log
            await self._webhooks.stop()
        if self.loader is not None:
            await anyio.to_thread.run_sync(self.loader.stop)
        if self.forwarder is not None:
            await anyio.to_thread.run_sync(self.forwarder.stop)
        if self.wal is not None:
            await anyio.to_thread.run_sync(self.wal.close)
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()
        self._remove_admin_files()
        await anyio.to_thread.run_sync(self.database.close)
        self.lock.release()

    # local admin API ------------------------------------------------------

    def _write_admin_files(self) -> None:
        host = self.settings.host
        if host in ("0.0.0.0", "::", ""):
            host = "127.0.0.1"
        url = f"http://{'[' + host + ']' if ':' in host else host}:{self.settings.port}"
        secret_path = self.data_dir / ADMIN_SECRET_FILE
        fd = os.open(secret_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(self.admin_secret)
        os.chmod(secret_path, 0o600)
        info = {"url": url, "pid": os.getpid()}
        (self.data_dir / ADMIN_FILE).write_bytes(orjson.dumps(info))

    def _remove_admin_files(self) -> None:
        for name in (ADMIN_FILE, ADMIN_SECRET_FILE):
            with contextlib.suppress(FileNotFoundError):
                (self.data_dir / name).unlink()


def admin_files(data_dir: Path) -> tuple[str, str] | None:
    """The running server's admin URL and secret, if it wrote them."""
    try:
        info = orjson.loads((data_dir / ADMIN_FILE).read_bytes())
        secret = (data_dir / ADMIN_SECRET_FILE).read_text().strip()
    except (OSError, ValueError):
        return None
    return info["url"], secret


# routes -------------------------------------------------------------------


async def healthz(request: Request) -> Response:
    return JSONResponse({"status": "ok"})


async def readyz(request: Request) -> Response:
    runtime: Runtime = request.app.state.runtime
    ready, checks = await anyio.to_thread.run_sync(runtime.readiness)
    return JSONResponse(
        {"status": "ready" if ready else "unavailable", "checks": checks},
        status_code=200 if ready else 503,
    )


async def metrics(request: Request) -> Response:
    runtime: Runtime = request.app.state.runtime
    body = await anyio.to_thread.run_sync(runtime.metrics.render)
    return PlainTextResponse(body, media_type="text/plain; version=0.0.4; charset=utf-8")


def _is_loopback(request: Request) -> bool:
    host = request.client.host if request.client else ""
    return host in ("127.0.0.1", "::1", "localhost", "testclient")


async def admin(request: Request) -> Response:
    runtime: Runtime = request.app.state.runtime
    presented = request.headers.get("x-admin-secret", "")
    if not _is_loopback(request) or not secrets.compare_digest(presented, runtime.admin_secret):
        raise ApiError(401, "unauthorized", "admin API needs the data directory's admin secret")
    try:
        args = orjson.loads(await request.body() or b"{}")
    except orjson.JSONDecodeError:
        raise ApiError(400, "invalid_json", "body is not valid JSON") from None
    if not isinstance(args, dict):
        raise ApiError(400, "invalid_body", "body must be a JSON object")
    op = request.path_params["op"]
    try:
        result = await anyio.to_thread.run_sync(runtime.management.run, op, args)
    except RegistryError as exc:
        return error_response(exc.status, "registry_error", str(exc))
    except StorageError as exc:
        return error_response(503, "storage_unavailable", str(exc))
    except (KeyError, TypeError) as exc:
        return error_response(400, "invalid_arguments", f"bad arguments for {op}: {exc}")
    return JSONResponse({"result": result})


def create_app(settings: Settings, *, database: str | None = None) -> Starlette:
    """Build the application. ``database`` overrides the ClickHouse database
    (tests give each case its own database on one embedded engine)."""
    runtime = Runtime(settings, database)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await runtime.start()
        try:
            yield
        finally:
            await runtime.stop()

    routes: list[BaseRoute] = [
        Route("/healthz", healthz, methods=["GET"]),
        Route("/readyz", readyz, methods=["GET"]),
        Route("/metrics", metrics, methods=["GET"]),
        Route("/admin/v1/{op}", admin, methods=["POST"]),
        *collect.routes(),
        *api.routes(),
        *webhook_routes(),
        *snippet_route.routes(),
        *catalog_feed.routes(runtime.registry, runtime.catalog),
        *catalog_webhooks.routes(
            runtime.registry,
            runtime.catalog_sync,
            runtime.metrics.webhooks_rejected,
            runtime.catalog_push,
        ),
        *dashboard.routes(settings.demo),
    ]
    app = Starlette(
        routes=routes,
        middleware=[Middleware(AccessLogMiddleware, count=runtime.count_request)],
        exception_handlers={
            ApiError: api_error_handler,
            HTTPException: http_error_handler,
            Exception: unexpected_error_handler,
        },
        lifespan=lifespan,
    )
    app.state.runtime = runtime
    app.state.openapi = None
    return app
