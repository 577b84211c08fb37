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

import contextlib
import json
import threading
import time
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass(frozen=True)
class Fault:
    status: int | None = None  # answer this instead of the resource
    delay: float = 0.0  # seconds to wait before answering


class EcwidApi:
    def __init__(self, token: str, store_id: str = "1003", currency: str = "USD") -> None:
        self.token = token
        self.store_id = store_id
        self.currency = currency
        self.orders: dict[str, dict[str, Any]] = {}
        self.requests: list[str] = []  # paths, in arrival order (auth failures included)
        self._faults: deque[Fault] = deque()
        self._always: Fault | None = None
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None

    # ---------------------------------------------------------------- control

    def add_order(self, order: dict[str, Any]) -> None:
        """Serve ``order`` under its ``id`` (the webhook's ``data.orderId``)."""
        self.orders[str(order["id"])] = order

    def inject(self, count: int, status: int | None = None, delay: float = 0.0) -> None:
        with self._lock:
            self._faults.extend(Fault(status, delay) for _ in range(count))

    def fail_always(self, status: int = 503) -> None:
        self._always = Fault(status)

    def heal(self) -> None:
        with self._lock:
            self._faults.clear()
        self._always = None

    def reset(self) -> None:
        """No orders, no faults, no requests seen (between tests sharing a server)."""
        self.heal()
        with self._lock:
            self.orders.clear()
            self.requests.clear()

    def order_requests(self, order_id: str) -> int:
        return sum(p.endswith(f"/orders/{order_id}") for p in self.requests)

    @property
    def base_url(self) -> str:
        assert self._server is not None, "not started"
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    # ------------------------------------------------------------- lifecycle

    def start(self) -> EcwidApi:
        api = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                # A client that gave up (a hang longer than its timeout) is no error.
                with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                    api._handle(self)

            def log_message(self, format: str, *args: Any) -> None:
                pass  # quiet tests

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    # --------------------------------------------------------------- serving

    def _next_fault(self) -> Fault | None:
        with self._lock:
            if self._faults:
                return self._faults.popleft()
        return self._always

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
    data = json.dumps(body).encode()
    request.send_response(status)
    request.send_header("Content-Type", "application/json;charset=utf-8")
    request.send_header("Content-Length", str(len(data)))
    request.end_headers()
    request.wfile.write(data)


@contextmanager
def running(token: str, **kwargs: Any) -> Iterator[EcwidApi]:
    api = EcwidApi(token, **kwargs).start()
    try:
        yield api
    finally:
        api.stop()
