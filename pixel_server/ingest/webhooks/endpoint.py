"""``POST /webhooks/{platform}/{pixel_id}``: order webhooks from the store platforms.

Order of checks, each refusal a JSON error counted in
``pixel_webhooks_rejected_total{platform, reason}``:

1. platform known (404 ``unknown_platform``), pixel known (404
   ``unknown_pixel``), enabled (403 ``pixel_disabled``) and given a webhook
   secret (401 ``no_secret``), all before the body is read;
2. body within the platform's limit (:data:`MAX_BODY`; 413), not empty (400);
3. WooCommerce's unsigned ``webhook_id=N`` ping: 200, nothing stored;
4. authentication with the pixel's webhook secret, before the body's content
   is used (401 ``missing_signature`` / ``bad_signature``);
5. the body: malformed JSON 400, unusable order 422;
6. the delivery: a repeat is 200 ``duplicate``; events are stored (200
   ``stored``), or the order fetch is queued durably (200 ``queued``), or
   nothing counts (200 ``ignored`` with a note). A 2xx means on disk.
   A full event or job log is 503 with Retry-After, so the platform retries.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Final, Protocol

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from pixel_server.errors import ApiError
from pixel_server.ingest.http import read_body
from pixel_server.ingest.webhooks import bigcommerce, ecwid, shopify, woocommerce
from pixel_server.ingest.webhooks.common import (
    PLATFORMS,
    Delivery,
    InvalidBody,
    Unauthorized,
    check_secret,
)
from pixel_server.ingest.webhooks.service import Webhooks
from pixel_server.metrics import Metrics
from pixel_server.pipeline.wal import LogFull
from pixel_server.registry import PixelRegistry

log = logging.getLogger("pixel_server.webhooks")

#: Body limits per platform. Ecwid and BigCommerce send ids only (a few hundred
#: bytes). Shopify and WooCommerce send the whole order: about 2-3 KB per line
#: item with its price sets, taxes and discount allocations, plus 5-10 KB for
#: the rest, so 1 MiB holds an order of some 300 lines, far beyond real carts.
MAX_BODY: Final[dict[str, int]] = {
    "ecwid": 64 * 1024,
    "bigcommerce": 64 * 1024,
    "shopify": 1024 * 1024,
    "woocommerce": 1024 * 1024,
}


class Platform(Protocol):
    NAME: str

    def verify(self, headers: Mapping[str, str], body: bytes, secret: str) -> None: ...
    def parse(self, headers: Mapping[str, str], body: bytes) -> Delivery: ...


HANDLERS: Final[dict[str, Platform]] = {
    m.NAME: m  # type: ignore[misc]
    for m in (ecwid, bigcommerce, shopify, woocommerce)
}
assert tuple(sorted(HANDLERS)) == tuple(sorted(PLATFORMS))


class WebhookIntake:
    """The webhook route, over the pixel registry, the webhook service and the metrics."""

    def __init__(self, *, registry: PixelRegistry, webhooks: Webhooks, metrics: Metrics) -> None:
        self._registry = registry
        self._webhooks = webhooks
        self._metrics = metrics

    def routes(self) -> list[Route]:
        return [Route("/webhooks/{platform}/{pixel_id}", self.receive, methods=["POST"])]

    async def receive(self, request: Request) -> Response:
        name = request.path_params["platform"]
        label = name if name in HANDLERS else "unknown"  # bounded label values
        try:
            return await self._receive(request, name)
        except ApiError as exc:
            self._metrics.webhooks_rejected.labels(label, exc.code).inc()
            raise

    async def _receive(self, request: Request, name: str) -> Response:
        platform = HANDLERS.get(name)
        if platform is None:
            raise ApiError(
                404, "unknown_platform",
                f"no webhooks for platform {name[:32]!r}; use one of {', '.join(PLATFORMS)}",
                "platform",
            )  # fmt: skip
        pixel_id = request.path_params["pixel_id"]
        pixel = self._registry.get(pixel_id)
        if pixel is None:
            raise ApiError(404, "unknown_pixel", f"no pixel {pixel_id[:64]!r}", "pixel_id")
        if not pixel.enabled:
            raise ApiError(403, "pixel_disabled", "this pixel is disabled", "pixel_id")
        try:  # before reading a byte of the body: pixel ids are public
            check_secret(pixel.webhook_secret)
        except Unauthorized as exc:
            raise ApiError(401, exc.reason, exc.message) from None
        body = await read_body(request, MAX_BODY[name])
        headers = request.headers
        if platform is woocommerce and woocommerce.is_ping(headers, body):
            self._metrics.webhook_deliveries.labels(name, "ping").inc()
            return JSONResponse({"status": "ping"})
        try:
            platform.verify(headers, body, pixel.webhook_secret)
        except Unauthorized as exc:
            log.warning(
                "webhook refused",
                extra={"platform": name, "pixel_id": pixel.id, "reason": exc.reason},
            )
            raise ApiError(401, exc.reason, exc.message) from None
        except InvalidBody as exc:  # Ecwid: the signed fields could not be read
            raise ApiError(exc.status, exc.code, exc.message, exc.field or None) from None
        try:
            delivery = platform.parse(headers, body)
        except InvalidBody as exc:
            raise ApiError(exc.status, exc.code, exc.message, exc.field or None) from None
        try:
            result = await self._webhooks.accept(pixel, name, delivery)
        except LogFull as exc:
            retry = str(max(1, round(exc.retry_after)))
            raise ApiError(
                503, "log_full", "the server's log is full; retry later",
                headers={"retry-after": retry},
            ) from None  # fmt: skip
        if result.status == "in_progress":
            raise ApiError(
                409, "delivery_in_progress", "this delivery is being handled; retry later",
                headers={"retry-after": "1"},
            )  # fmt: skip
        return JSONResponse(result.as_json(delivery))
