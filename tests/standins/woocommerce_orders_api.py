"""A stand-in for the WooCommerce REST API (v3) orders, as the refund-line fetch uses it:
``GET /wp-json/wc/v3/orders/{id}`` and ``.../orders/{id}/refunds``, with the
consumer key and secret as HTTP Basic auth (401 ``woocommerce_rest_cannot_view``
otherwise, as WooCommerce answers)."""

from __future__ import annotations

import base64
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler
from typing import Any

from tests.standins.store_api import StoreApi, send


class WooCommerceApi(StoreApi):
    ORDER_PATH = "/wp-json/wc/v3/orders/{order_id}"

    def __init__(self, token: str) -> None:
        super().__init__(token)  # "<consumer key>:<consumer secret>"
        self.orders: dict[str, tuple[dict[str, Any], list[dict[str, Any]]]] = {}

    def add_order(self, order: dict[str, Any], refunds: list[dict[str, Any]]) -> None:
        self.orders[str(order["id"])] = (order, refunds)

    def _handle(self, request: BaseHTTPRequestHandler) -> None:
        path = request.path.split("?", 1)[0]
        with self._lock:
            self.requests.append(path)
        expected = "Basic " + base64.b64encode(self.token.encode()).decode()
        if request.headers.get("Authorization") != expected:
            return _send(request, 401, {"code": "woocommerce_rest_cannot_view",
                                        "message": "Sorry, you cannot view this resource.",
                                        "data": {"status": 401}})  # fmt: skip
        fault = self._next_fault()
        if fault is not None:
            time.sleep(fault.delay)
            if fault.status is not None:
                return _send(request, fault.status, {"code": "injected", "data": {}})
        parts = path.strip("/").split("/")
        if parts[:4] != ["wp-json", "wc", "v3", "orders"] or len(parts) < 5:
            return _send(request, 404, {"code": "rest_no_route", "data": {"status": 404}})
        stored = self.orders.get(parts[4])
        if stored is None:
            invalid = {"code": "woocommerce_rest_shop_order_invalid_id", "message": "Invalid ID.",
                       "data": {"status": 404}}  # fmt: skip
            return _send(request, 404, invalid)
        if len(parts) == 5:
            return _send(request, 200, stored[0])
        if parts[5:] == ["refunds"]:
            return _send(request, 200, stored[1])
        return _send(request, 404, {"code": "rest_no_route", "data": {"status": 404}})


def _send(request: BaseHTTPRequestHandler, status: int, body: Any) -> None:
    send(request, status, body, "application/json; charset=UTF-8")


@contextmanager
def running(token: str) -> Iterator[WooCommerceApi]:
    api = WooCommerceApi(token).start()
    try:
        yield api
    finally:
        api.stop()
