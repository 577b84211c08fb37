"""``/healthz`` (the process answers), ``/readyz`` (it can do its work) and
``/metrics`` (Prometheus exposition)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import anyio
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from pixel_server.metrics import Metrics

Readiness = Callable[[], tuple[bool, dict[str, Any]]]


def routes(readiness: Readiness, metrics: Metrics) -> list[Route]:
    async def healthz(request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def readyz(request: Request) -> Response:
        ready, checks = await anyio.to_thread.run_sync(readiness)
        return JSONResponse(
            {"status": "ready" if ready else "unavailable", "checks": checks},
            status_code=200 if ready else 503,
        )

    async def render_metrics(request: Request) -> Response:
        body = await anyio.to_thread.run_sync(metrics.render)
        return PlainTextResponse(body, media_type="text/plain; version=0.0.4; charset=utf-8")

    return [
        Route("/healthz", healthz, methods=["GET"]),
        Route("/readyz", readyz, methods=["GET"]),
        Route("/metrics", render_metrics, methods=["GET"]),
    ]
