"""The hop from an ingest worker to the storage process.

A worker serves the ingest routes itself; every other request (reports,
console and dashboard, webhooks, ``/metrics``) is passed to the storage
process's Unix socket as it came: method, path, query, headers (``Host``
included) and body streamed both ways. The client's address travels in
``x-pixel-peer`` so the storage process sees the real client for rate limits
and ``X-Forwarded-For`` checks. ``/internal/`` paths are the storage
process's own and are never passed on.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import orjson
from starlette.types import Receive, Scope, Send

from pixel_server.processes.storage import PEER_HEADER

# Headers about one connection, not the request (RFC 9110 §7.6.1).
_HOP_BY_HOP = frozenset(
    {b"connection", b"keep-alive", b"proxy-connection", b"te", b"trailer",
     b"transfer-encoding", b"upgrade", PEER_HEADER.encode()}
)  # fmt: skip
INTERNAL_PREFIX = "/internal/"


def storage_link(socket_path: str, timeout: float = 60.0) -> httpx.AsyncClient:
    """An HTTP client for the storage process's Unix socket."""
    return httpx.AsyncClient(
        transport=httpx.AsyncHTTPTransport(uds=socket_path),
        base_url="http://storage",
        timeout=timeout,
    )


async def _error(send: Send, status: int, code: str, message: str) -> None:
    body = orjson.dumps({"error": {"code": code, "message": message, "field": None}})
    await send({
        "type": "http.response.start", "status": status,
        "headers": [(b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode())],
    })  # fmt: skip
    await send({"type": "http.response.body", "body": body})


class StorageHop:
    """ASGI app: the worker's answer to every path it does not serve."""

    def __init__(self, link: httpx.AsyncClient) -> None:
        self._link = link

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        if scope["path"].startswith(INTERNAL_PREFIX):
            await _error(send, 404, "not_found", "no such page")
            return
        target = scope.get("raw_path") or scope["path"].encode()
        if scope.get("query_string"):
            target += b"?" + scope["query_string"]
        headers = [(k, v) for k, v in scope["headers"] if k not in _HOP_BY_HOP]
        client = scope.get("client")
        if client:
            headers.append((PEER_HEADER.encode(), f"{client[0]} {client[1]}".encode()))
        request = self._link.build_request(
            scope["method"],
            "http://storage" + target.decode("latin-1"),
            headers=headers,
            content=_body(receive) if scope["method"] not in ("GET", "HEAD") else None,
        )
        try:
            response = await self._link.send(request, stream=True)
        except httpx.HTTPError:
            await _error(send, 503, "storage_unavailable",
                         "the storage process is not answering; retry shortly")  # fmt: skip
            return
        try:
            await send({
                "type": "http.response.start",
                "status": response.status_code,
                "headers": [(k, v) for k, v in response.headers.raw
                            if k.lower() not in _HOP_BY_HOP],
            })  # fmt: skip
            async for chunk in response.aiter_raw():
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
            await send({"type": "http.response.body", "body": b""})
        finally:
            await response.aclose()


async def _body(receive: Receive) -> AsyncIterator[bytes]:
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return
        if message.get("body"):
            yield message["body"]
        if not message.get("more_body"):
            return
