"""``POST /collect`` (browsers) and ``GET /collect.gif`` (the no-JavaScript fallback).

The browser body is one event or ``{"pixel_id", "events": [...]}`` (at most 50
events, 64 KB), as ``application/json`` or ``text/plain`` (what
``navigator.sendBeacon`` sends). CORS admits only the pixel's registered
origins. A 202 means the events are on disk.
"""

from __future__ import annotations

import functools
import ipaddress
import time
from collections.abc import Sequence
from urllib.parse import urlsplit

import msgspec
import orjson
from publicsuffixlist import PublicSuffixList
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from pixel_server.config import Network
from pixel_server.errors import ApiError
from pixel_server.events.schema import EventError, decode_collect_body
from pixel_server.ingest.http import (
    client_ip,
    log_full,
    rate_limited,
    read_body,
    require_content_type,
)
from pixel_server.ingest.ratelimit import RateLimiter, client_key
from pixel_server.ingest.service import Ingestor
from pixel_server.metrics import Metrics
from pixel_server.pipeline.steps import Context
from pixel_server.pipeline.wal import LogFull
from pixel_server.pixel import Pixel
from pixel_server.registry import PixelRegistry

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


def _origin_allowed(pixel: Pixel, origin: str | None) -> bool:
    return origin is None or origin in pixel.origins


def _origin_of(url: str) -> str:
    try:
        parts = urlsplit(url)
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        return ""
    return f"{parts.scheme}://{(parts.hostname or '').lower()}{port}"


def _cors_headers(origin: str | None) -> dict[str, str]:
    if origin is None:
        return {}
    return {
        "access-control-allow-origin": origin,
        "access-control-allow-credentials": "true",
        "vary": "Origin",
    }


@functools.cache
def _suffixes() -> PublicSuffixList:
    return PublicSuffixList()  # the list the package ships: no network


@functools.lru_cache(maxsize=4096)
def registrable_domain(host: str) -> str:
    """``shop.co.uk`` for ``www.shop.co.uk``; an address or a bare name as it is."""
    host = host.lower().rstrip(".")
    try:
        ipaddress.ip_address(host.strip("[]"))
        return host
    except ValueError:
        pass
    return _suffixes().privatesuffix(host) or host


def _same_site(origin: str, request: Request) -> bool:
    """Whether the browser treats our host as first-party for the store's page
    (same registrable domain, by the Public Suffix List): only then does our
    cookie help."""
    ours = request.url.hostname or ""
    try:
        theirs = urlsplit(origin).hostname or ""
    except ValueError:
        return False
    return bool(ours and theirs) and registrable_domain(ours) == registrable_domain(theirs)


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


class BrowserIntake:
    """The browser routes, over what they need: the pixel registry, the
    ingestor, the two rate limiters, the rejection counter and the proxies
    whose ``X-Forwarded-For`` is believed."""

    def __init__(
        self,
        *,
        registry: PixelRegistry,
        ingestor: Ingestor,
        ip_limiter: RateLimiter,
        pixel_limiter: RateLimiter,
        metrics: Metrics,
        trusted_proxies: Sequence[Network] = (),
    ) -> None:
        self._registry = registry
        self._ingestor = ingestor
        self._ip_limiter = ip_limiter
        self._pixel_limiter = pixel_limiter
        self._rejected = metrics.requests_rejected
        self._trusted = tuple(trusted_proxies)

    def routes(self) -> list[Route]:
        return [
            Route("/collect", self.collect, methods=["POST"]),
            Route("/collect", self.preflight, methods=["OPTIONS"]),
            Route("/collect.gif", self.collect_gif, methods=["GET"]),
        ]

    def _pixel(self, pixel_id: str | None) -> Pixel:
        if not pixel_id:
            raise ApiError(
                400, "missing_pixel_id", "no pixel id: put it in ?p= or the body", "pixel_id"
            )
        pixel = self._registry.get(pixel_id)
        if pixel is None:
            raise ApiError(404, "unknown_pixel", f"no pixel {pixel_id[:64]!r}", "pixel_id")
        if not pixel.enabled:
            raise ApiError(403, "pixel_disabled", "this pixel is disabled", "pixel_id")
        return pixel

    def _check_rate(self, pixel: Pixel, ip: str, cost: int) -> None:
        wait = max(
            self._ip_limiter.allow(client_key(ip), cost),
            self._pixel_limiter.allow(pixel.id, cost),
        )
        if wait > 0:
            raise rate_limited(wait)

    async def preflight(self, request: Request) -> Response:
        origin = request.headers.get("origin")
        pixel = self._registry.get(request.query_params.get("p", ""))
        if pixel is None or not pixel.enabled or origin is None or origin not in pixel.origins:
            self._rejected.labels("collect", "origin_not_allowed").inc()
            raise ApiError(
                403, "origin_not_allowed", "this origin may not send events to this pixel"
            )
        return Response(
            status_code=204,
            headers={
                **_cors_headers(origin),
                "access-control-allow-methods": "POST, OPTIONS",
                "access-control-allow-headers": "content-type",
                "access-control-max-age": "86400",
            },
        )

    def _context(self, request: Request, pixel: Pixel) -> Context:
        return Context(
            pixel=pixel,
            source="browser",
            now=time.time(),
            client_ip=client_ip(request, self._trusted),
            user_agent=request.headers.get("user-agent", ""),
            cookie_anonymous_id=request.cookies.get(COOKIE, "")[:128],
        )

    async def _ingest(
        self, request: Request, pixel: Pixel, raws: list[msgspec.Raw] | list[bytes]
    ) -> tuple[Context, int, list[dict[str, object]]]:
        ctx = self._context(request, pixel)
        self._check_rate(pixel, ctx.client_ip, len(raws))
        try:
            outcome = await self._ingestor.ingest(raws, ctx, "events")
        except LogFull as exc:
            raise log_full(exc) from None
        rejected = [r.as_json() for r in outcome.rejected]
        if rejected and outcome.accepted == 0 and not outcome.dropped:
            first = outcome.rejected[0]
            raise ApiError(422, first.code, first.message, first.field)
        return ctx, outcome.accepted, rejected

    async def collect(self, request: Request) -> Response:
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
            pixel = self._pixel(request.query_params.get("p") or body_pixel)
            if not _origin_allowed(pixel, origin):
                raise ApiError(
                    403,
                    "origin_not_allowed",
                    f"origin {origin[:100]!r} is not registered for this pixel",
                )
            ctx, accepted, rejected = await self._ingest(request, pixel, raws)
        except ApiError as exc:
            self._rejected.labels("collect", exc.code).inc()
            # Let the page's script read the error (it never shows it to shoppers),
            # but only on a page of the pixel's own store.
            known = pixel or self._registry.get(request.query_params.get("p", ""))
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

    async def collect_gif(self, request: Request) -> Response:
        """``<img src=".../collect.gif?p=px_...">`` in a <noscript>: a PageView."""
        q = request.query_params
        try:
            pixel = self._pixel(q.get("p"))
            if q.get("e", "PageView") != "PageView":
                raise ApiError(
                    422, "pageview_only", "an image pixel can only report a PageView", "e"
                )
            page_url = q.get("u") or request.headers.get("referer", "")
            if page_url and _origin_of(page_url) not in pixel.origins:
                raise ApiError(
                    403,
                    "origin_not_allowed",
                    "the page is not on one of this pixel's storefront origins",
                    "u",
                )
            event: dict[str, object] = {"event": "PageView"}
            if q.get("id"):
                event["event_id"] = q["id"]
            if page_url:
                event["page"] = {"url": page_url, "referrer": q.get("r", "")}
            await self._ingest(request, pixel, [orjson.dumps(event)])
        except ApiError as exc:
            self._rejected.labels("collect_gif", exc.code).inc()
            raise
        return Response(
            PIXEL_GIF,
            media_type="image/gif",
            headers={"cache-control": "no-store, max-age=0"},
        )
