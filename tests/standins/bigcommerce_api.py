"""A local stand-in for BigCommerce's REST API: one store's orders.

A real HTTP server on 127.0.0.1 (``ThreadingHTTPServer`` on a free port, one
thread per request), serving under ``/stores/{store_hash}``:

* ``GET /v2/orders/{id}``: the order (v2 shape: ``status_id``, ``date_created``
  in RFC 2822, amounts as strings);
* ``GET /v2/orders/{id}/products``: its lines (204 No Content when none, as
  BigCommerce answers empty v2 lists);
* ``GET /v3/orders/{id}/payment_actions/refunds``: ``{"data": [...], "meta": {}}``.

Checked strictly: ``X-Auth-Token`` must be exactly the token (else 401 with
BigCommerce's error shape), ``Accept`` must admit ``application/json`` (v2
answers XML otherwise: 406 here), the store hash must be this store's (404).
An unknown order is 404.

Faults (:meth:`BigCommerceApi.inject`): the next *n* requests answer a status
or hang for some seconds first; or :meth:`BigCommerceApi.fail_always` until
:meth:`BigCommerceApi.heal`.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any

from tests.standins.store_api import StoreApi


@dataclass
class StoredOrder:
    order: dict[str, Any]
    products: list[dict[str, Any]] = field(default_factory=list)
    refunds: list[dict[str, Any]] = field(default_factory=list)


class BigCommerceApi(StoreApi):
    ORDER_PATH = "/v2/orders/{order_id}"

    def __init__(self, token: str, store_hash: str = "abc123xyz") -> None:
        super().__init__(token)
        self.store_hash = store_hash
        self.orders: dict[str, StoredOrder] = {}

    # ---------------------------------------------------------------- control

    def add_order(
        self,
        order: dict[str, Any],
        products: list[dict[str, Any]] | None = None,
        refunds: list[dict[str, Any]] | None = None,
    ) -> None:
        self.orders[str(order["id"])] = StoredOrder(order, products or [], refunds or [])

    def _handle(self, request: BaseHTTPRequestHandler) -> None:
        path = request.path.split("?", 1)[0]
        with self._lock:
            self.requests.append(path)
        if request.headers.get("X-Auth-Token") != self.token:
            return _send(request, 401, {"status": 401, "title": "Unauthorized"})
        accept = request.headers.get("Accept", "")
        if "application/json" not in accept and "*/*" not in accept:
            return _send(request, 406, {"status": 406, "title": "Not Acceptable"})
        fault = self._next_fault()
        if fault is not None:
            time.sleep(fault.delay)
            if fault.status is not None:
                return _send(request, fault.status, {"status": fault.status, "title": "injected"})
        parts = path.strip("/").split("/")
        if len(parts) < 5 or parts[0] != "stores" or parts[1] != self.store_hash:
            return _not_found(request)
        version, rest = parts[2], parts[3:]
        if rest[:1] != ["orders"] or len(rest) < 2 or rest[1] not in self.orders:
            return _not_found(request)
        stored = self.orders[rest[1]]
        tail = rest[2:]
        if version == "v2" and not tail:
            return _send(request, 200, stored.order)
        if version == "v2" and tail == ["products"]:
            if not stored.products:
                return _send(request, 204, None)
            return _send(request, 200, stored.products)
        if version == "v3" and tail == ["payment_actions", "refunds"]:
            return _send(request, 200, {"data": stored.refunds, "meta": {}})
        return _not_found(request)


def _not_found(request: BaseHTTPRequestHandler) -> None:
    _send(request, 404, [{"status": 404, "message": "The requested resource was not found."}])


def _send(request: BaseHTTPRequestHandler, status: int, body: Any) -> None:
    data = b"" if status == 204 else json.dumps(body).encode()
    request.send_response(status)
    if status != 204:
        request.send_header("Content-Type", "application/json")
    request.send_header("Content-Length", str(len(data)))
    request.end_headers()
    request.wfile.write(data)


@contextmanager
def running(token: str, **kwargs: Any) -> Iterator[BigCommerceApi]:
    api = BigCommerceApi(token, **kwargs).start()
    try:
        yield api
    finally:
        api.stop()
