"""Bounds on a request's size that no route should have to think about.

Request headers: at most :data:`MAX_HEADER_BYTES` in total (names, values and
the request line's target), else ``431 Request Header Fields Too Large``
before any route runs. Browsers send 1-4 KB; 16 KB is what nginx and Node
allow by default, so nothing legitimate comes close.

uvicorn's httptools parser buffers a request's headers without a limit of its
own before the application sees them, so this bounds what the application
works on, not what one connection may make the parser hold: run the public
port behind a proxy that bounds headers too (`docs/security.md`). Bodies are
bounded per route while they are read (:func:`pixel_server.ingest.http.read_body`).
"""

from __future__ import annotations

from typing import Final

from starlette.types import ASGIApp, Receive, Scope, Send

from pixel_server.errors import error_response

MAX_HEADER_BYTES: Final = 16 * 1024


class HeaderLimitMiddleware:
    def __init__(self, app: ASGIApp, max_bytes: int = MAX_HEADER_BYTES) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            size = len(scope.get("raw_path") or b"") + len(scope.get("query_string") or b"")
            for name, value in scope["headers"]:
                size += len(name) + len(value) + 4  # ": " and CRLF
            if size > self.max_bytes:
                response = error_response(
                    431,
                    "headers_too_large",
                    f"request headers are {size} bytes; at most {self.max_bytes}",
                )
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)
