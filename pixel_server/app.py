"""The Starlette application: the runtime's parts handed to the route
factories, the middleware and the error handlers."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable, Mapping
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.routing import BaseRoute

from pixel_server import dashboard, erasure_api, health, snippet_route
from pixel_server.catalog import feed as catalog_feed
from pixel_server.catalog import webhooks as catalog_webhooks
from pixel_server.config import Settings
from pixel_server.connect import woo_plugin
from pixel_server.console import Console
from pixel_server.demo import DemoStore
from pixel_server.errors import (
    ApiError,
    api_error_handler,
    http_error_handler,
    unexpected_error_handler,
)
from pixel_server.ingest import api, gateway
from pixel_server.ingest.collect import BrowserIntake
from pixel_server.ingest.webhooks import FetchPolicy, WebhookIntake
from pixel_server.logs import AccessLogMiddleware
from pixel_server.processes.sequencer import slots_on_disk
from pixel_server.processes.storage import StorageSide
from pixel_server.request_limits import HeaderLimitMiddleware
from pixel_server.runtime import Runtime, is_loopback


def create_app(
    settings: Settings,
    *,
    database: str | None = None,
    webhook_policy: FetchPolicy | None = None,
    forwarder_options: Mapping[str, Any] | None = None,
    announce: Callable[[str], None] | None = None,
    worker_slots: int = 0,
) -> Starlette:
    """Build the application. ``database`` overrides the ClickHouse database
    (tests give each case its own database on one embedded engine);
    ``announce`` shows a line to the person who started the server (the demo's
    login link), outside the logs. ``worker_slots`` > 0 makes it the storage
    process of the multi-process layout, fed by that many ingest workers' logs
    (a single process still moves what worker logs left on disk hold)."""
    runtime = Runtime(
        settings,
        database,
        webhook_policy=webhook_policy,
        forwarder_options=forwarder_options,
        announce=announce,
    )
    storage = None
    if worker_slots or slots_on_disk(settings.data_dir.resolve() / "wal"):
        storage = StorageSide(
            slots=worker_slots, registry=runtime.registry, dedup=runtime.dedup,
            metrics=runtime.metrics, readiness=runtime.readiness, fsync=settings.wal_fsync,
        )  # fmt: skip

    console = Console(runtime.registry, runtime.management.run, runtime.database.client,
                      runtime.data_dir, settings.base_url,
                      lambda: runtime.forwarder.status() if runtime.forwarder else {})  # fmt: skip
    runtime.on_loaded = console.live.publish
    runtime.metrics.add_callback(console.collect_metrics)
    reports = dashboard.Reports(runtime.database.readers, runtime.metrics)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await runtime.start()
        try:
            if storage is not None and runtime.wal is not None:
                await storage.start(runtime.wal)
            yield
        finally:
            if storage is not None:
                await storage.stop()
            await runtime.stop()

    browser = BrowserIntake(
        registry=runtime.registry,
        ingestor=runtime.ingestor,
        ip_limiter=runtime.ip_limiter,
        pixel_limiter=runtime.pixel_limiter,
        metrics=runtime.metrics,
        trusted_proxies=settings.trusted_proxies,
    )
    intake = api.ServerIntake(
        registry=runtime.registry,
        ingestor=runtime.ingestor,
        pixel_limiter=runtime.pixel_limiter,
        metrics=runtime.metrics,
    )
    webhooks = WebhookIntake(
        registry=runtime.registry, webhooks=runtime.webhooks, metrics=runtime.metrics
    )
    routes: list[BaseRoute] = [
        *(storage.routes() if storage is not None else []),  # before health: /readyz, /metrics
        *health.routes(runtime.readiness, runtime.metrics),
        *browser.routes(),
        *api.routes(intake, gateway.openapi_paths),
        *gateway.routes(intake),
        *webhooks.routes(),
        *snippet_route.routes(runtime.registry, settings.base_url),
        *dashboard.routes(console.gate, console.pages, console.setup_steps, reports),
        *console.routes(),
        *erasure_api.routes(console.gate, runtime.management.run),
        *woo_plugin.routes(runtime.registry, settings.base_url),
        *catalog_feed.routes(runtime.registry, runtime.catalog),
        *catalog_webhooks.routes(
            runtime.registry,
            runtime.catalog_sync,
            runtime.metrics.webhooks_rejected,
            runtime.catalog_push,
        ),
    ]
    if settings.demo:
        routes += DemoStore(
            registry=runtime.registry,
            management=runtime.management,
            base_url=settings.base_url,
            hand_out_owner=is_loopback(settings.host),
        ).routes()
    app = Starlette(
        routes=routes,
        middleware=[
            Middleware(AccessLogMiddleware, count=runtime.count_request),
            Middleware(HeaderLimitMiddleware),
        ],
        exception_handlers={
            ApiError: api_error_handler,
            HTTPException: http_error_handler,
            Exception: unexpected_error_handler,
        },
        lifespan=lifespan,
    )
    # Tests reach the parts through here; no route does (each gets its parts above).
    app.state.runtime = runtime
    return app
