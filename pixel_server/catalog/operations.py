"""The catalog's management operations (``pixel-server catalog ...``), run by
:class:`~pixel_server.management.Management` directly or through the running
server's admin API. Each takes and returns plain JSON values.

* ``catalog.sync`` ``{pixel, full}``: a full pull now (``full``: write every
  item again); the run's counts, or its error;
* ``catalog.status`` ``{pixel}``: the last runs, item counts, invalid items
  with their reasons, and the match rate of the last 7 days;
* ``catalog.push`` ``{pixel}``: upload what changed to TikTok's Catalog API;
* ``catalog.feed_url`` ``{pixel}``: the feed's path; with its token only when
  this call created the token (it is stored hashed, so it is shown once);
* ``catalog.rotate_feed_token`` ``{pixel}``: a new token (the old feed URL
  stops working at once) and the path with it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final, Protocol

from pixel_server.catalog.match import match_rate
from pixel_server.catalog.push import CatalogPush
from pixel_server.catalog.store import CatalogStore
from pixel_server.catalog.sync import CatalogSync
from pixel_server.storage.database import Database
from pixel_server.storage.pixels import PixelStore


class Management(Protocol):
    """What the catalog's operations use of :class:`pixel_server.management.Management`
    (a protocol, so the two modules do not import each other)."""

    @property
    def database(self) -> Database: ...
    @property
    def store(self) -> PixelStore: ...


FEED_PATH: Final = "/feeds/{pixel_id}/tiktok.csv"


def feed_path(pixel_id: str, token: str | None) -> str:
    path = FEED_PATH.format(pixel_id=pixel_id)
    return f"{path}?token={token}" if token else path


def _store(m: Management) -> CatalogStore:
    return CatalogStore(m.database.client)


def sync(m: Management, args: dict[str, Any]) -> dict[str, Any]:
    pixel = m.store.get(args["pixel"])
    run = CatalogSync(_store(m)).full(pixel, rewrite=bool(args.get("full")))
    return run.public()


def push(m: Management, args: dict[str, Any]) -> dict[str, Any]:
    return CatalogPush(_store(m)).push(m.store.get(args["pixel"])).public()


def status(m: Management, args: dict[str, Any]) -> dict[str, Any]:
    pixel = m.store.get(args["pixel"])
    store = _store(m)
    return {
        "pixel_id": pixel.id,
        "counts": store.counts(pixel.id),
        "last_runs": [r.public() for r in store.runs(pixel.id, limit=5)],
        "rejected_by_tiktok": [
            {k: r[k] for k in ("sku_id", "tiktok_code", "tiktok_message")}
            for r in store.push_log(pixel.id, 200)
            if r["outcome"] == "rejected"
        ][:20],
        "invalid_items": store.invalid(pixel.id, limit=int(args.get("limit", 20))),
        "match_rate": match_rate(m.database.client(), pixel.id).public(),
        "feed_token": bool(pixel.feed_token_hash),
        "push": bool(pixel.tiktok_catalog_id and pixel.tiktok_bc_id),
    }


def feed_url(m: Management, args: dict[str, Any]) -> dict[str, Any]:
    pixel = m.store.get(args["pixel"])
    if pixel.feed_token_hash:
        return {"pixel_id": pixel.id, "path": feed_path(pixel.id, None), "token": None}
    return rotate_feed_token(m, args)


def rotate_feed_token(m: Management, args: dict[str, Any]) -> dict[str, Any]:
    pixel, token = m.store.rotate_feed_token(args["pixel"])
    return {"pixel_id": pixel.id, "path": feed_path(pixel.id, token), "token": token}


OPERATIONS: Final[dict[str, Callable[[Management, dict[str, Any]], Any]]] = {
    "catalog.sync": sync,
    "catalog.push": push,
    "catalog.status": status,
    "catalog.feed_url": feed_url,
    "catalog.rotate_feed_token": rotate_feed_token,
}
READ_ONLY: Final = frozenset({"catalog.status"})
