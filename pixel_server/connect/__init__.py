"""Connecting a store in one step: the pixel's script (or web pixel) and its
webhooks, installed through the platform's own API, checked, and removed again.

* ``plan``: the shared model (what is wanted, what the store has, what we
  made), the connect / disconnect steps and the store API client;
* one module per platform (``bigcommerce``, ``shopify``, ``woocommerce``,
  ``ecwid``): its endpoints, scopes and payloads (each docstring states them);
* ``status``: the live installation check;
* ``woo_plugin``: the WordPress plugin zip served for WooCommerce.

What was made is recorded in ClickHouse (``storage.connections``) as soon as
the platform answers, so a second connect creates nothing and disconnect
removes exactly that. The management operations below are what the CLI runs.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from clickhouse_connect.driver.client import Client

from pixel_server.connect import plan, status
from pixel_server.connect.bigcommerce import BigCommerce
from pixel_server.connect.ecwid import Ecwid
from pixel_server.connect.plan import ConnectError, Connector, Target
from pixel_server.connect.shopify import Shopify
from pixel_server.connect.woocommerce import WooCommerce
from pixel_server.pixel import Pixel
from pixel_server.storage.connections import ConnectionStore

__all__ = ["ConnectError", "Target", "connect", "connector_for", "disconnect", "health"]

CONNECTORS: dict[str, Callable[[Target], Connector]] = {
    "bigcommerce": BigCommerce,
    "shopify": Shopify,
    "woocommerce": WooCommerce,
    "ecwid": Ecwid,
}


def connector_for(target: Target) -> Connector:
    make = CONNECTORS.get(target.pixel.platform)
    if make is None:
        raise ConnectError(
            "unsupported",
            f"platform {target.pixel.platform} has no store API to connect: use "
            "`pixel-server install` (theme patching) instead",
        )
    return make(target)


def _with(pixel: Pixel, base_url: str, run: Callable[[Connector], Any]) -> Any:
    connector = connector_for(Target(pixel, base_url.rstrip("/")))
    try:
        return run(connector)
    finally:
        connector.close()


def connect(client: Client, pixel: Pixel, base_url: str) -> dict[str, Any]:
    records = ConnectionStore(client)
    outcome = _with(pixel, base_url, lambda c: plan.connect(pixel, c, records))
    return {"pixel_id": pixel.id, **outcome.as_json()}


def disconnect(client: Client, pixel: Pixel, base_url: str) -> dict[str, Any]:
    records = ConnectionStore(client)
    outcome = _with(pixel, base_url, lambda c: plan.disconnect(pixel, c, records))
    return {"pixel_id": pixel.id, **outcome.as_json()}


def health(client: Client, pixel: Pixel, base_url: str) -> dict[str, Any]:
    target = Target(pixel, base_url.rstrip("/"))
    return _with(pixel, base_url, lambda c: status.status(target, c, client))
