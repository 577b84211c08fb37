"""``GET /feeds/{pixel_id}/tiktok.csv?token=...``: the catalog as TikTok's data feed.

TikTok's catalog manager fetches a scheduled feed (hourly or daily) from a URL
and cannot send headers, so the URL carries the pixel's feed token; only its
SHA-256 is stored (``pixel-server catalog feed-url`` / ``rotate-feed-token``).
An unknown pixel, a disabled one, a pixel without a feed token and a wrong
token all get the same 404, so the URL space reveals nothing.

The body is CSV (RFC 4180, UTF-8, header row) with one row per valid item
(variant), TikTok's nine required columns first (``sku_id``, ``title``,
``description``, ``availability``, ``condition``, ``price``, ``link``,
``image_link``, ``brand``), then the optional ones; prices as ``49.90 USD``;
additional images comma-separated in one field. Invalid items are left out
(``pixel-server catalog status`` lists them).

It is streamed: ClickHouse writes the CSV a page of items at a time
(:meth:`~pixel_server.catalog.store.CatalogStore.feed_csv_pages`), sent as it
comes, gzip-compressed on the fly when the client accepts it, so memory
stays flat whatever the catalog's size. ``ETag`` (from the highest row version
and row count of the pixel's catalog: it changes on every write) and
``Last-Modified`` make an unchanged feed a ``304`` for ``If-None-Match`` /
``If-Modified-Since``, costing one small query.
"""

from __future__ import annotations

import zlib
from collections.abc import AsyncIterator, Iterator
from email.utils import formatdate, parsedate_to_datetime
from typing import Final, Protocol

import anyio
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import BaseRoute, Route

from pixel_server import credentials
from pixel_server.catalog.store import CatalogStore, FeedState
from pixel_server.errors import ApiError
from pixel_server.pixel import Pixel

REQUIRED: Final = ("sku_id", "title", "description", "availability", "condition", "price",
                   "link", "image_link", "brand")  # fmt: skip
OPTIONAL: Final = ("item_group_id", "sale_price", "additional_image_link",
                   "google_product_category", "product_type", "color", "size", "material",
                   "pattern", "gender", "gtin", "mpn")  # fmt: skip
COLUMNS: Final = (*REQUIRED, *OPTIONAL)
FORMAT_VERSION: Final = "1"  # part of the ETag: bump when the columns change


class PixelLookup(Protocol):
    def get(self, pixel_id: str) -> Pixel | None: ...


def csv_chunks(store: CatalogStore, pixel_id: str) -> Iterator[bytes]:
    """The header, then one chunk of rows per page of items."""
    yield (",".join(COLUMNS) + "\n").encode()
    yield from store.feed_csv_pages(pixel_id, COLUMNS)


def _gzip(chunks: Iterator[bytes]) -> Iterator[bytes]:
    compressor = zlib.compressobj(6, zlib.DEFLATED, 31)  # wbits 31: a gzip stream
    for chunk in chunks:
        out = compressor.compress(chunk)
        if out:
            yield out
    yield compressor.flush()


def _not_modified(request: Request, etag: str, state: FeedState) -> bool:
    if_none_match = request.headers.get("if-none-match")
    if if_none_match is not None:
        return etag in [t.strip() for t in if_none_match.split(",")] or if_none_match == "*"
    since = request.headers.get("if-modified-since")
    if since and state.updated_at:
        try:
            return int(state.updated_at) <= parsedate_to_datetime(since).timestamp()
        except (TypeError, ValueError):
            return False
    return False


def routes(pixels: PixelLookup, store: CatalogStore) -> list[BaseRoute]:
    async def tiktok_csv(request: Request) -> Response:
        pixel_id = request.path_params["pixel_id"]
        token = request.query_params.get("token", "")
        pixel = pixels.get(pixel_id)
        if (
            pixel is None
            or not pixel.enabled
            or not pixel.feed_token_hash
            or not credentials.matches(token, pixel.feed_token_hash)
        ):
            raise ApiError(404, "not_found", f"no such endpoint: {request.url.path}")
        state = await anyio.to_thread.run_sync(store.feed_state, pixel.id)
        gzip = "gzip" in request.headers.get("accept-encoding", "").lower()
        etag = f'"{FORMAT_VERSION}-{state.version:x}-{state.rows}{"-gz" if gzip else ""}"'
        headers = {
            "etag": etag,
            "last-modified": formatdate(int(state.updated_at), usegmt=True),
            "cache-control": "private, no-cache",
            "vary": "accept-encoding",
        }
        if _not_modified(request, etag, state):
            return Response(status_code=304, headers=headers)
        chunks = csv_chunks(store, pixel.id)
        if gzip:
            chunks = _gzip(chunks)
            headers["content-encoding"] = "gzip"

        async def body() -> AsyncIterator[bytes]:
            while True:
                chunk = await anyio.to_thread.run_sync(next, chunks, None)
                if chunk is None:
                    return
                yield chunk

        return StreamingResponse(body(), media_type="text/csv; charset=utf-8", headers=headers)

    return [Route("/feeds/{pixel_id}/tiktok.csv", tiktok_csv, methods=["GET"])]
