"""``POST /webhooks/{platform}/{pixel_id}/catalog``: product webhooks.

Subscribe the store's product events to this URL: Ecwid ``product.created``,
``product.updated``, ``product.deleted``; BigCommerce
``store/product/created|updated|deleted`` (and ``store/product/inventory/*``);
Shopify ``PRODUCTS_CREATE``, ``PRODUCTS_UPDATE``, ``PRODUCTS_DELETE``;
WooCommerce ``product.created``, ``product.updated``, ``product.deleted``,
``product.restored``.

Checks, each refusal a JSON error counted in
``pixel_webhooks_rejected_total{platform, reason}`` like the order webhooks':
platform known and pixel known and enabled (404/403), body at most 1 MB, the
platform's authentication with the pixel's webhook secret — exactly the order
webhooks' verification (:mod:`pixel_server.ingest.webhooks`) — before anything
else of the body is read (401), then the product id (422 when missing), and
for Ecwid and BigCommerce the store the delivery names must be the pixel's
(422).

Every delivery, whatever its event, re-reads that product from the store's
admin API and writes what it finds (:meth:`CatalogSync.product`): a product
the store no longer has, or has hidden, is deleted. So a delivery that arrives
late, twice or out of order still converges on the store's state, and a
replayed Ecwid signature (which does not cover the body) can only make us
read the truth again. A pixel with a TikTok catalog then gets the change
pushed in the background (after the answer). The answer is 200 once the
catalog is written; when the
store's API fails it is 503 with Retry-After, so the platform delivers again.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Final

import anyio
from prometheus_client import Counter
from starlette.background import BackgroundTask
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from pixel_server.catalog.feed import PixelLookup
from pixel_server.catalog.push import CatalogPush, configured
from pixel_server.catalog.sync import CatalogSync
from pixel_server.errors import ApiError
from pixel_server.ingest.http import read_body
from pixel_server.ingest.webhooks import bigcommerce, ecwid, shopify, woocommerce
from pixel_server.ingest.webhooks.common import (
    InvalidBody,
    Unauthorized,
    header,
    obj,
    parse_json_object,
    safe_id,
    text,
)
from pixel_server.pixel import Pixel

MAX_BODY: Final = 1024 * 1024
Verify = Callable[[Mapping[str, str], bytes, str], None]
VERIFY: Final[dict[str, Verify]] = {
    "ecwid": ecwid.verify, "bigcommerce": bigcommerce.verify, "shopify": shopify.verify,
    "woocommerce": woocommerce.verify,
}  # fmt: skip


def product_id(platform: str, pixel: Pixel, headers: Mapping[str, str], body: bytes) -> str:
    """The product a verified delivery is about."""
    data = parse_json_object(body)
    if platform == "ecwid":
        if text(data.get("storeId"), 64) != pixel.store_id:
            raise InvalidBody("wrong_store", "storeId is not this pixel's store", "storeId")
        return safe_id(data.get("entityId") or obj(data.get("data")).get("productId"), "entityId")
    if platform == "bigcommerce":
        if text(data.get("producer"), 128) != f"stores/{pixel.store_id}":
            raise InvalidBody("wrong_store", "producer is not this pixel's store", "producer")
        return safe_id(obj(data.get("data")).get("id"), "data.id")
    return safe_id(shopify.numeric_id(data.get("id")), "id")


def routes(
    pixels: PixelLookup, sync: CatalogSync, rejected: Counter, pusher: CatalogPush | None = None
) -> list[BaseRoute]:
    """``rejected``: the counter of refused webhooks, labelled (platform, reason)."""

    async def receive(request: Request) -> Response:
        name = request.path_params["platform"]
        try:
            return await _receive(request, name)
        except ApiError as exc:
            rejected.labels(name if name in VERIFY else "unknown", exc.code).inc()
            raise

    async def _receive(request: Request, name: str) -> Response:
        verify = VERIFY.get(name)
        if verify is None:
            raise ApiError(404, "unknown_platform", f"no catalog webhooks for {name[:32]!r}",
                           "platform")  # fmt: skip
        pixel = pixels.get(request.path_params["pixel_id"])
        if pixel is None:
            raise ApiError(404, "unknown_pixel", "no such pixel", "pixel_id")
        if not pixel.enabled:
            raise ApiError(403, "pixel_disabled", "this pixel is disabled", "pixel_id")
        body = await read_body(request, MAX_BODY)
        headers = request.headers
        if name == "woocommerce" and woocommerce.is_ping(headers, body):
            return JSONResponse({"status": "ping"})
        try:
            verify(headers, body, pixel.webhook_secret)
            pid = product_id(name, pixel, headers, body)
        except Unauthorized as exc:
            raise ApiError(401, exc.reason, exc.message) from None
        except InvalidBody as exc:
            raise ApiError(exc.status, exc.code, exc.message, exc.field or None) from None
        run = await anyio.to_thread.run_sync(sync.product, pixel, pid)
        if run.status != "ok":
            raise ApiError(503, "store_unavailable", run.error, headers={"retry-after": "30"})
        answer: dict[str, Any] = {"status": "ok", "product_id": pid,
                                  "topic": _topic(name, headers, body),
                                  "changed": run.changed, "deleted": run.deleted}  # fmt: skip
        background = None
        if pusher is not None and configured(pixel) and (run.changed or run.deleted):
            background = BackgroundTask(anyio.to_thread.run_sync, pusher.push, pixel)
        return JSONResponse(answer, background=background)

    return [Route("/webhooks/{platform}/{pixel_id}/catalog", receive, methods=["POST"])]


def _topic(platform: str, headers: Mapping[str, str], body: bytes) -> str:
    name = {"shopify": "X-Shopify-Topic", "woocommerce": "X-WC-Webhook-Topic"}.get(platform)
    if name:
        return (header(headers, name) or "")[:64]
    data = parse_json_object(body)
    return text(data.get("eventType") or data.get("scope"), 64)
