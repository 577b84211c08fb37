"""Request plumbing shared by the ingest endpoints: bounded body reading,
content types, the client's address behind trusted proxies."""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence

from starlette.requests import ClientDisconnect, Request

from pixel_server.config import Network
from pixel_server.errors import ApiError
from pixel_server.pipeline.wal import LogFull


async def read_body(request: Request, limit: int) -> bytes:
    """The body, refusing with 413 as soon as it is known to exceed ``limit``:
    from Content-Length before reading, or while streaming (chunked bodies)."""
    declared = request.headers.get("content-length")
    if declared is not None:
        try:
            size = int(declared)
        except ValueError:
            raise ApiError(
                400, "invalid_content_length", "Content-Length is not a number"
            ) from None
        if size > limit:
            raise ApiError(413, "body_too_large", f"body is {size} bytes; at most {limit}")
    chunks: list[bytes] = []
    received = 0
    try:
        async for chunk in request.stream():
            received += len(chunk)
            if received > limit:
                raise ApiError(413, "body_too_large", f"body exceeds {limit} bytes")
            chunks.append(chunk)
    except ClientDisconnect:
        raise ApiError(400, "client_disconnected", "the client went away mid-body") from None
    body = b"".join(chunks)
    if not body:
        raise ApiError(400, "empty_body", "the request body is empty")
    return body


def require_content_type(request: Request, allowed: Sequence[str]) -> None:
    media = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if media not in allowed:
        shown = media or "none"
        raise ApiError(
            415,
            "unsupported_media_type",
            f"Content-Type {shown} is not accepted; use {' or '.join(allowed)}",
        )


def client_ip(request: Request, trusted: Sequence[Network]) -> str:
    """The browser's address: the peer, or X-Forwarded-For's nearest untrusted
    hop when the peer is a trusted proxy (earlier hops can be forged)."""
    peer = request.client.host if request.client else ""
    if not trusted or not _is_trusted(peer, trusted):
        return peer
    forwarded = request.headers.get("x-forwarded-for", "")
    hops = [h.strip() for h in forwarded.split(",") if h.strip()]
    for hop in reversed(hops):
        if not _is_trusted(hop, trusted):
            return hop
    return hops[0] if hops else peer


def _is_trusted(address: str, trusted: Sequence[Network]) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in net for net in trusted)


def _retry_seconds(wait: float) -> int:
    return max(1, round(wait + 0.5))


def rate_limited(wait: float) -> ApiError:
    """429 for a token bucket that needs ``wait`` more seconds."""
    seconds = _retry_seconds(wait)
    return ApiError(429, "rate_limited", f"too many events; retry in {seconds}s",
                    headers={"retry-after": str(seconds)})  # fmt: skip


def log_full(exc: LogFull) -> ApiError:
    """503 when the write-ahead log's disk budget is reached: nothing was accepted."""
    return ApiError(503, "log_full", "the server's event log is full; retry later",
                    headers={"retry-after": str(_retry_seconds(exc.retry_after))})  # fmt: skip
