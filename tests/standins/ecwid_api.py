"""A local stand-in for Ecwid's REST API v3: one store's orders and profile.

A real HTTP server on 127.0.0.1 (``ThreadingHTTPServer`` on a free port, one
thread per request, so a request told to hang never blocks another), serving:

* ``GET /api/v3/{storeId}/orders/{orderId}``: the order (as Ecwid documents it;
  no currency field);
* ``GET /api/v3/{storeId}/profile``: ``{"generalInfo": {...},
  "formatsAndUnits": {"currency": ...}}``.

The token is checked strictly: exactly ``Authorization: Bearer <token>``, or
403 with Ecwid's error shape ``{"errorMessage": ...}``. Another store id is
403 too (a token belongs to one store); an unknown order is 404.

Faults (:meth:`EcwidApi.inject`): the next *n* requests answer a status (503,
500, 404, ...) or hang for some seconds before answering normally; or
:meth:`EcwidApi.fail_always` until :meth:`EcwidApi.heal`.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler
from typing import Any

from tests.standins.store_api import StoreApi, send


class EcwidApi(StoreApi):
    ORDER_PATH = "/orders/{order_id}"

    def __init__(self, token: str, store_id: str = "1003", currency: str = "USD") -> None:
        super().__init__(token)
        self.store_id = store_id
        self.currency = currency
        self.orders: dict[str, dict[str, Any]] = {}

    # ---------------------------------------------------------------- control

    def add_order(self, order: dict[str, Any]) -> None:
        """Serve ``order`` under its ``id`` (the webhook's ``data.orderId``)."""
        self.orders[str(order["id"])] = order

    def _handle(self, request: BaseHTTPRequestHandler) -> None:
        path = request.path.split("?", 1)[0]
        with self._lock:
            self.requests.append(path)
        if request.headers.get("Authorization") != f"Bearer {self.token}":
            return _send(request, 403, {"errorMessage": "Invalid access token"})
        fault = self._next_fault()
        if fault is not None:
            time.sleep(fault.delay)
            if fault.status is not None:
                return _send(request, fault.status, {"errorMessage": "injected fault"})
        parts = path.strip("/").split("/")
        if parts[:2] != ["api", "v3"] or len(parts) < 4:
            return _send(request, 404, {"errorMessage": "Not found"})
        if parts[2] != self.store_id:
            return _send(request, 403, {"errorMessage": "Token is not valid for this store"})
        if parts[3:] == ["profile"]:
            return _send(request, 200, self._profile())
        if len(parts) == 5 and parts[3] == "orders":
            order = self.orders.get(parts[4])
            if order is None:
                return _send(request, 404, {"errorMessage": f"Order #{parts[4]} not found"})
            return _send(request, 200, order)
        return _send(request, 404, {"errorMessage": "Not found"})

    def _profile(self) -> dict[str, Any]:
        return {
            "generalInfo": {"storeId": int(self.store_id), "storeUrl": "https://shop.example.com"},
            "formatsAndUnits": {"currency": self.currency, "currencyPrefix": "$"},
        }


def _send(request: BaseHTTPRequestHandler, status: int, body: Any) -> None:
    send(request, status, body, "application/json;charset=utf-8")


@contextmanager
def running(token: str, **kwargs: Any) -> Iterator[EcwidApi]:
    api = EcwidApi(token, **kwargs).start()
    try:
        yield api
    finally:
        api.stop()
