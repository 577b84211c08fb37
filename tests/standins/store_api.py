"""What the store API stand-ins share: a real HTTP server on 127.0.0.1
(``ThreadingHTTPServer`` on a free port, one thread per request, so a request
told to hang never blocks another), a strict token, the requests seen, and
fault injection (the next *n* requests answer a status or hang first; or fail
until healed). Subclasses serve their platform's resources in ``_handle``."""

from __future__ import annotations

import contextlib
import json
import threading
from collections import deque
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self


@dataclass(frozen=True)
class Fault:
    status: int | None = None  # answer this instead of the resource
    delay: float = 0.0  # seconds to wait before answering


class StoreApi:
    # The end of an order's path, for order_requests().
    ORDER_PATH = "/orders/{order_id}"
    METHODS: tuple[str, ...] = ("GET",)  # the admin stand-ins add POST, PUT, DELETE

    def __init__(self, token: str) -> None:
        self.token = token
        self.orders: dict[str, Any] = {}
        self.requests: list[str] = []  # paths, in arrival order (auth failures included)
        self._faults: deque[Fault] = deque()
        self._always: Fault | None = None
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None

    # ---------------------------------------------------------------- control

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
        suffix = self.ORDER_PATH.format(order_id=order_id)
        return sum(p.endswith(suffix) for p in self.requests)

    @property
    def base_url(self) -> str:
        assert self._server is not None, "not started"
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    # ------------------------------------------------------------- lifecycle

    def start(self) -> Self:
        api = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                # A client that gave up (a hang longer than its timeout) is no error.
                with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                    if self.command not in api.METHODS:
                        return send(self, 405, {"error": f"{self.command} not allowed"})
                    api._handle(self)

            # Admin writes (scripts, webhooks) go through the same dispatch.
            do_POST = do_PUT = do_DELETE = do_GET

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
        raise NotImplementedError


def read_json(request: BaseHTTPRequestHandler) -> Any:
    """The request's JSON body; None when it is missing or not JSON."""
    length = int(request.headers.get("Content-Length") or 0)
    raw = request.rfile.read(length) if length else b""
    try:
        return json.loads(raw) if raw else None
    except ValueError:
        return None


def send(request: BaseHTTPRequestHandler, status: int, body: Any,
         content_type: str = "application/json") -> None:  # fmt: skip
    """Answer ``body`` (JSON unless it is already text); 204 has no body."""
    if status == 204:
        data = b""
    elif isinstance(body, str):
        data = body.encode()
    else:
        data = json.dumps(body).encode()
    request.send_response(status)
    if data:
        request.send_header("Content-Type", content_type)
    request.send_header("Content-Length", str(len(data)))
    request.end_headers()
    request.wfile.write(data)
