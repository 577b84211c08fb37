"""``POST /collect`` (browsers) and ``GET /collect.gif`` (the no-JavaScript fallback).

The browser body is one event or ``{"pixel_id", "events": [...]}`` (at most 50
events, 64 KB), as ``application/json`` or ``text/plain`` (what
``navigator.sendBeacon`` sends). CORS admits only the pixel's registered
origins. A 202 means the events are on disk.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import msgspec
import orjson
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from pixel_server.errors import ApiError
from pixel_server.events.schema import EventError, decode_collect_body
from pixel_server.ingest.http import (
    client_ip,
    log_full,
    rate_limited,
    read_body,
    require_content_type,
)
from pixel_server.pipeline.steps import Context
from pixel_server.pipeline.wal import LogFull
from pixel_server.storage.pixels import Pixel

if TYPE_CHECKING:
    from pixel_server.app import Runtime

MAX_BODY = 64 * 1024
MAX_EVENTS = 50
COOKIE = "_px_aid"
COOKIE_MAX_AGE = 60 * 60 * 24 * 395  # 13 months
_CONTENT_TYPES = ("application/json", "text/plain")
# 1x1 transparent GIF
PIXEL_GIF = (
    b"GIF89a\x01\x00\x01\x00\x80\x00\x00\x00\x00\x00\xff\xff\xff!\xf9\x04\x01\x00\x00\x00"
    b"\x00,\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02D\x01\x00;"
)


def _runtime(request: Request) -> Runtime:
    return request.app.state.runtime  # type: ignore[no-any-return]


def _pixel(runtime: Runtime, pixel_id: str | None) -> Pixel:
    if not pixel_id:
        raise ApiError(
            400, "missing_pixel_id", "no pixel id: put it in ?p= or the body", "pixel_id"
        )
    pixel = runtime.registry.get(pixel_id)
    if pixel is None:
        raise ApiError(404, "unknown_pixel", f"no pixel {pixel_id[:64]!r}", "pixel_id")
    if not pixel.enabled:
        raise ApiError(403, "pixel_disabled", "this pixel is disabled", "pixel_id")
    return pixel


def _origin_allowed(pixel: Pixel, origin: str | None) -> bool:
    return origin is None or origin in pixel.origins


def _cors_headers(origin: str | None) -> dict[str, str]:
    if origin is None:
        return {}
    return {
        "access-control-allow-origin": origin,
        "access-control-allow-credentials": "true",
        "vary": "Origin",
    }


def _same_site(origin: str, request: Request) -> bool:
    """Approximates "registrable domain matches" by the last two labels: the
    cookie only helps when the browser treats our host as first-party."""
    ours = (request.url.hostname or "").split(".")[-2:]
    theirs = (urlsplit(origin).hostname or "").split(".")[-2:]
    return bool(ours) and ours == theirs


def _check_rate(runtime: Runtime, pixel: Pixel, ip: str, cost: int) -> None:
    wait = max(runtime.ip_limiter.allow(ip, cost), runtime.pixel_limiter.allow(pixel.id, cost))
    if wait > 0:
        raise rate_limited(wait)


async def collect_preflight(request: Request) -> Response:
    runtime = _runtime(request)
    origin = request.headers.get("origin")
    pixel = runtime.registry.get(request.query_params.get("p", ""))
    if pixel is None or not pixel.enabled or origin is None or origin not in pixel.origins:
        runtime.metrics.requests_rejected.labels("collect", "origin_not_allowed").inc()
        raise ApiError(403, "origin_not_allowed", "this origin may not send events to this pixel")
    return Response(
        status_code=204,
        headers={
            **_cors_headers(origin),
            "access-control-allow-methods": "POST, OPTIONS",
            "access-control-allow-headers": "content-type",
            "access-control-max-age": "86400",
        },
    )


def _context(runtime: Runtime, request: Request, pixel: Pixel) -> Context:
    return Context(
        pixel=pixel,
        source="browser",
        now=time.time(),
        client_ip=client_ip(request, runtime.settings.trusted_proxies),
        user_agent=request.headers.get("user-agent", ""),
        cookie_anonymous_id=request.cookies.get(COOKIE, "")[:128],
    )


async def _ingest(
    runtime: Runtime, request: Request, pixel: Pixel, raws: list[msgspec.Raw] | list[bytes]
) -> tuple[Context, int, list[dict[str, object]]]:
    ctx = _context(runtime, request, pixel)
    _check_rate(runtime, pixel, ctx.client_ip, len(raws))
    try:
        outcome = await runtime.ingestor.ingest(raws, ctx, "events")
    except LogFull as exc:
        raise log_full(exc) from None
    rejected = [r.as_json() for r in outcome.rejected]
    if rejected and outcome.accepted == 0 and not outcome.dropped:
        first = outcome.rejected[0]
        raise ApiError(422, first.code, first.message, first.field)
    return ctx, outcome.accepted, rejected


async def collect(request: Request) -> Response:
    runtime = _runtime(request)
    origin = request.headers.get("origin")
    pixel: Pixel | None = None
    try:
        require_content_type(request, _CONTENT_TYPES)
        body = await read_body(request, MAX_BODY)
        try:
            body_pixel, raws = decode_collect_body(body, max_events=MAX_EVENTS)
        except EventError as exc:
            status = 413 if exc.code == "too_many_events" else 400
            raise ApiError(status, exc.code, exc.message, exc.field or None) from None
        pixel = _pixel(runtime, request.query_params.get("p") or body_pixel)
        if not _origin_allowed(pixel, origin):
            raise ApiError(
                403,
                "origin_not_allowed",
                f"origin {origin[:100]!r} is not registered for this pixel",
            )
        ctx, accepted, rejected = await _ingest(runtime, request, pixel, raws)
    except ApiError as exc:
        runtime.metrics.requests_rejected.labels("collect", exc.code).inc()
        # Let the page's script read the error (it never shows it to shoppers),
        # but only on a page of the pixel's own store.
        known = pixel or runtime.registry.get(request.query_params.get("p", ""))
        if known is not None and origin in known.origins:
            exc.headers = {**_cors_headers(origin), **exc.headers}
        raise
    response = JSONResponse(
        {"accepted": accepted, "rejected": rejected},
        status_code=202,
        headers=_cors_headers(origin),
    )
    anon = ctx.cookie_anonymous_id or _first_anonymous_id(raws)
    if anon and (origin is None or _same_site(origin, request)):
        response.set_cookie(
            COOKIE,
            anon,
            max_age=COOKIE_MAX_AGE,
            httponly=True,
            samesite="lax",
            secure=request.url.scheme == "https",
        )
    return response


def _first_anonymous_id(raws: list[msgspec.Raw]) -> str:
    for raw in raws:
        try:
            user = orjson.loads(bytes(raw)).get("user") or {}
        except (orjson.JSONDecodeError, AttributeError):
            continue
        value = user.get("anonymous_id") if isinstance(user, dict) else None
        if isinstance(value, str) and 0 < len(value) <= 128:
            return value
    return ""


async def collect_gif(request: Request) -> Response:
    """``<img src=".../collect.gif?p=px_...">`` in a <noscript>: a PageView."""
    runtime = _runtime(request)
    q = request.query_params
    try:
        pixel = _pixel(runtime, q.get("p"))
        page_url = q.get("u") or request.headers.get("referer", "")
        event: dict[str, object] = {"event": q.get("e") or "PageView"}
        if q.get("id"):
            event["event_id"] = q["id"]
        if page_url:
            event["page"] = {"url": page_url, "referrer": q.get("r", "")}
        await _ingest(runtime, request, pixel, [orjson.dumps(event)])
    except ApiError as exc:
        runtime.metrics.requests_rejected.labels("collect_gif", exc.code).inc()
        raise
    return Response(
        PIXEL_GIF,
        media_type="image/gif",
        headers={"cache-control": "no-store, max-age=0"},
    )


def routes() -> list[Route]:
    return [
        Route("/collect", collect, methods=["POST"]),
        Route("/collect", collect_preflight, methods=["OPTIONS"]),
        Route("/collect.gif", collect_gif, methods=["GET"]),
    ]
