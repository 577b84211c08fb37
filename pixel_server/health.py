"""``/healthz`` (the process answers), ``/readyz`` (it can do its work) and
``/metrics`` (Prometheus exposition).

``/readyz`` is public, so it says only each part's state (``ok``,
``unavailable``, ``degraded``, ...) and the log's size: no error text, which
can name hosts, paths and pixels. The details are in the logs, in
``/metrics`` and in ``pixel-server status`` (the local admin API)."""

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
            {"status": "ready" if ready else "unavailable", "checks": public_checks(checks)},
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


def public_checks(checks: dict[str, Any]) -> dict[str, Any]:
    """Each check's state word; numbers stay, text does not."""
    out: dict[str, Any] = {}
    for name, value in checks.items():
        if isinstance(value, str):
            out[name] = value.split(":", 1)[0].strip() if value != "ok" else "ok"
        elif isinstance(value, dict) and "status" in value:
            out[name] = value["status"]
        elif isinstance(value, dict):
            out[name] = {k: v for k, v in value.items() if not isinstance(v, str)}
        else:
            out[name] = value
    return out
