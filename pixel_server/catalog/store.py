"""Catalog items and sync runs in ClickHouse: every query of the catalog lives here.

* ``catalog_items`` holds versioned rows per (pixel, sku_id); the highest
  version wins; a deletion is a tombstone row (``deleted``). Writes are
  batched inserts only.
* A full pull writes what it reads to ``catalog_staging`` under its sync id;
  :meth:`CatalogStore.commit` copies the staged rows whose content changed into
  ``catalog_items`` and tombstones the items the pull did not see, in that
  order, so a pull that fails before its commit changes nothing.
* ``catalog_syncs`` records each run (a new version per state change).
* Reads stream: :meth:`CatalogStore.feed_pages` walks a pixel's valid items in
  ``sku_id`` order in pages (keyset paging), so memory stays flat for any
  catalog size.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import asdict, astuple, dataclass, field, fields
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, Final

from clickhouse_connect.driver.client import Client

from pixel_server.catalog.model import Item

ITEM_FIELDS: Final = tuple(f.name for f in fields(Item))
_ITEM_COLUMNS: Final = (*ITEM_FIELDS, "problems", "content_hash")
_IMAGES: Final = ITEM_FIELDS.index("additional_image_links")
_LIVE: Final = "catalog_items FINAL WHERE pixel_id = {p:String} AND NOT deleted"
PAGE_ROWS: Final = 5000
# TikTok's feed columns as SQL over catalog_items: prices as "49.90 USD",
# additional images comma-separated in one field.
_MONEY: Final = "if(isNull({0}), '', concat(toDecimalString(assumeNotNull({0}), 2), ' ', currency))"
FEED_EXPRESSIONS: Final = {
    **{c: c for c in ITEM_FIELDS},
    "price": _MONEY.format("price"),
    "sale_price": _MONEY.format("sale_price"),
    "additional_image_link": "arrayStringConcat(additional_image_links, ',')",
}
INSERT_ROWS: Final = 5000


@dataclass(frozen=True, slots=True)
class Stored:
    """An item with the rules it breaks (empty: valid)."""

    item: Item
    problems: tuple[str, ...] = ()

    def row(self) -> list[Any]:
        values = [getattr(self.item, c) for c in ITEM_FIELDS]
        values[_IMAGES] = list(values[_IMAGES])
        return [*values, list(self.problems), self.item.content_hash()]


def _tombstone(sku_id: str, group: str) -> list[Any]:
    blank = Item(sku_id, group, "", "", "", "", "", None, "", "")
    return Stored(blank).row()


@dataclass(slots=True)
class SyncRun:
    pixel_id: str
    sync_id: str
    kind: str  # full, product, push
    started_at: float = field(default_factory=time.time)
    status: str = "running"
    finished_at: float | None = None
    products: int = 0
    variants: int = 0
    changed: int = 0
    deleted: int = 0
    invalid: int = 0
    error: str = ""

    def public(self) -> dict[str, Any]:
        out = asdict(self)
        out["started_at"] = _iso(self.started_at)
        out["finished_at"] = _iso(self.finished_at) if self.finished_at else None
        return out


_SYNC_COLUMNS: Final = tuple(f.name for f in fields(SyncRun))


@dataclass(frozen=True, slots=True)
class PushAttempt:
    """One item's part in one Catalog API request (a ``catalog_pushes`` row)."""

    pixel_id: str
    sku_id: str
    content_hash: str
    action: str  # upload, delete
    outcome: str  # sent, retrying, rejected, dead
    attempt: int
    http_status: int
    tiktok_code: int
    tiktok_message: str
    request_id: str
    attempted_at: datetime


_PUSH_COLUMNS: Final = tuple(f.name for f in fields(PushAttempt))


def _iso(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).isoformat(timespec="milliseconds")


@dataclass(frozen=True, slots=True)
class FeedState:
    """What the feed's ETag and Last-Modified come from."""

    version: int  # highest row version of the pixel's items (changes on every write)
    rows: int
    updated_at: float


class CatalogStore:
    """Thread-safe; ``client`` returns the migrated ClickHouse client."""

    def __init__(self, client: Callable[[], Client]) -> None:
        self._client = client
        self._lock = threading.Lock()
        self._last_version = 0

    def version(self) -> int:
        with self._lock:
            self._last_version = max(time.time_ns(), self._last_version + 1)
            return self._last_version

    # ------------------------------------------------------------ writing

    def _insert(self, table: str, columns: Sequence[str], rows: list[list[Any]]) -> None:
        for start in range(0, len(rows), INSERT_ROWS):
            self._client().insert(table, rows[start : start + INSERT_ROWS], column_names=columns)

    def live(self, pixel_id: str, group: str | None = None) -> dict[str, tuple[str, str]]:
        """sku_id → (content hash, item_group_id) of the pixel's current items."""
        where = " AND item_group_id = {g:String}" if group is not None else ""
        result = self._client().query(
            f"SELECT sku_id, content_hash, item_group_id FROM {_LIVE}{where}",
            parameters={"p": pixel_id, "g": group},
        )
        return {s: (h, g) for s, h, g in result.result_rows}

    def stage(self, sync_id: str, pixel_id: str, items: Iterable[Stored]) -> None:
        now = datetime.now(UTC)
        rows = [[sync_id, pixel_id, *s.row(), now] for s in items]
        self._insert("catalog_staging", ("sync_id", "pixel_id", *_ITEM_COLUMNS, "updated_at"), rows)

    def commit(self, sync_id: str, pixel_id: str, tombstones: Iterable[tuple[str, str]]) -> None:
        """Make a full pull's staged rows current, then delete what it did not see."""
        self._client().command(
            "INSERT INTO catalog_items (pixel_id, sync_id, version, updated_at, "
            f"{', '.join(_ITEM_COLUMNS)}) SELECT pixel_id, sync_id, {{v:UInt64}}, now64(3), "
            f"{', '.join(_ITEM_COLUMNS)} FROM catalog_staging "
            "WHERE sync_id = {s:String} AND pixel_id = {p:String}",
            parameters={"v": self.version(), "s": sync_id, "p": pixel_id},
        )
        self.write(pixel_id, [], tombstones, sync_id)

    def write(
        self,
        pixel_id: str,
        items: Iterable[Stored],
        tombstones: Iterable[tuple[str, str]] = (),
        sync_id: str = "",
    ) -> None:
        """Upsert items and delete (sku_id, item_group_id) pairs now (webhooks)."""
        version = self.version()
        now = datetime.now(UTC)
        rows = [[pixel_id, version, False, sync_id, now, *s.row()] for s in items]
        rows += [[pixel_id, version, True, sync_id, now, *_tombstone(*t)] for t in tombstones]
        self._insert(
            "catalog_items",
            ("pixel_id", "version", "deleted", "sync_id", "updated_at", *_ITEM_COLUMNS),
            rows,
        )

    # ------------------------------------------------------ Catalog API push

    def push_state(self, pixel_id: str) -> dict[str, tuple[str, bool]]:
        """sku_id → (content hash, valid) of the pixel's current items."""
        result = self._client().query(
            f"SELECT sku_id, content_hash, length(problems) = 0 FROM {_LIVE}",
            parameters={"p": pixel_id},
        )
        return {s: (h, bool(v)) for s, h, v in result.result_rows}

    def pushed(self, pixel_id: str) -> dict[str, tuple[str, str, str]]:
        """sku_id → (content hash, action, outcome) of each item's latest final
        push outcome (sent or rejected)."""
        result = self._client().query(
            "SELECT sku_id, argMax(content_hash, attempted_at), argMax(action, attempted_at), "
            "argMax(outcome, attempted_at) FROM catalog_pushes WHERE pixel_id = {p:String} "
            "AND outcome IN ('sent', 'rejected') GROUP BY sku_id",
            parameters={"p": pixel_id},
        )
        return {s: (h, a, o) for s, h, a, o in result.result_rows}

    def record_pushes(self, rows: list[PushAttempt]) -> None:
        if rows:
            self._insert("catalog_pushes", _PUSH_COLUMNS, [list(astuple(r)) for r in rows])

    def push_log(self, pixel_id: str, limit: int = 50) -> list[dict[str, Any]]:
        result = self._client().query(
            f"SELECT {', '.join(_PUSH_COLUMNS)} FROM catalog_pushes WHERE pixel_id = {{p:String}} "
            "ORDER BY attempted_at DESC, sku_id LIMIT {n:UInt32}",
            parameters={"p": pixel_id, "n": limit},
        )
        return [dict(zip(_PUSH_COLUMNS, r, strict=True)) for r in result.result_rows]

    # --------------------------------------------------------- sync runs

    def record(self, run: SyncRun) -> None:
        values = asdict(run)
        values["started_at"] = datetime.fromtimestamp(run.started_at, UTC)
        if run.finished_at is not None:
            values["finished_at"] = datetime.fromtimestamp(run.finished_at, UTC)
        self._client().insert(
            "catalog_syncs",
            [[self.version(), *(values[c] for c in _SYNC_COLUMNS)]],
            column_names=("version", *_SYNC_COLUMNS),
        )

    def runs(self, pixel_id: str, limit: int = 10, kind: str | None = None) -> list[SyncRun]:
        where = " AND kind = {k:String}" if kind else ""
        result = self._client().query(
            f"SELECT {', '.join(_SYNC_COLUMNS)} FROM catalog_syncs FINAL "
            f"WHERE pixel_id = {{p:String}}{where} ORDER BY started_at DESC LIMIT {{n:UInt32}}",
            parameters={"p": pixel_id, "k": kind, "n": limit},
        )
        out = []
        for row in result.result_rows:
            values = dict(zip(_SYNC_COLUMNS, row, strict=True))
            values["started_at"] = values["started_at"].timestamp()
            if values["finished_at"] is not None:
                values["finished_at"] = values["finished_at"].timestamp()
            out.append(SyncRun(**values))
        return out

    # ------------------------------------------------------------ reading

    def counts(self, pixel_id: str) -> dict[str, int]:
        result = self._client().query(
            f"SELECT count(), uniqExact(item_group_id), countIf(length(problems) > 0) FROM {_LIVE}",
            parameters={"p": pixel_id},
        )
        items, products, invalid = result.result_rows[0]
        return {"items": int(items), "products": int(products), "invalid": int(invalid),
                "valid": int(items) - int(invalid)}  # fmt: skip

    def invalid(self, pixel_id: str, limit: int = 50) -> list[dict[str, Any]]:
        result = self._client().query(
            f"SELECT sku_id, item_group_id, title, problems FROM {_LIVE} "
            "AND length(problems) > 0 ORDER BY sku_id LIMIT {n:UInt32}",
            parameters={"p": pixel_id, "n": limit},
        )
        return [
            {"sku_id": s, "item_group_id": g, "title": t, "problems": list(p)}
            for s, g, t, p in result.result_rows
        ]

    def feed_state(self, pixel_id: str) -> FeedState:
        result = self._client().query(
            "SELECT max(version), count(), max(updated_at) FROM catalog_items "
            "WHERE pixel_id = {p:String}",
            parameters={"p": pixel_id},
        )
        version, rows, updated = result.result_rows[0]
        stamp = updated.timestamp() if rows else 0.0
        return FeedState(int(version), int(rows), stamp)

    def feed_pages(
        self, pixel_id: str, valid_only: bool = True, page_rows: int = PAGE_ROWS
    ) -> Iterator[list[Item]]:
        """The pixel's current items in sku_id order, ``page_rows`` at a time."""
        valid = " AND length(problems) = 0" if valid_only else ""
        after = ""
        columns = ", ".join(ITEM_FIELDS)
        while True:
            result = self._client().query(
                f"SELECT {columns} FROM {_LIVE}{valid} AND sku_id > {{a:String}} "
                "ORDER BY sku_id LIMIT {n:UInt32}",
                parameters={"p": pixel_id, "a": after, "n": page_rows},
            )
            rows = result.result_rows
            if not rows:
                return
            yield [_item(r) for r in rows]
            if len(rows) < page_rows:
                return
            after = rows[-1][0]

    def feed_csv_pages(
        self, pixel_id: str, columns: Sequence[str], page_rows: int = PAGE_ROWS
    ) -> Iterator[bytes]:
        """The pixel's valid items as CSV rows (no header) of TikTok's feed
        ``columns``, in sku_id order, one chunk per page. ClickHouse writes the
        CSV (RFC 4180 quoting): formatting 100k rows in Python costs ten times
        as much."""
        select = ", ".join(f"{FEED_EXPRESSIONS[c]} AS {c}" for c in columns)
        where = f"{_LIVE} AND length(problems) = 0 AND sku_id > {{a:String}}"
        after = ""
        while True:
            params = {"p": pixel_id, "a": after, "n": page_rows}
            last = (
                self._client()
                .query(
                    f"SELECT max(sku_id), count() FROM (SELECT sku_id FROM {where} "
                    "ORDER BY sku_id LIMIT {n:UInt32})",
                    parameters=params,
                )
                .result_rows[0]
            )
            if not last[1]:
                return
            chunk = self._client().raw_query(
                f"SELECT {select} FROM {where} AND sku_id <= {{b:String}} ORDER BY sku_id "
                "FORMAT CSV",
                parameters={**params, "b": last[0]},
            )
            yield chunk
            if last[1] < page_rows:
                return
            after = last[0]

    def items(self, pixel_id: str, sku_ids: Sequence[str]) -> dict[str, Item]:
        """Current items by sku_id (deleted ones are absent)."""
        if not sku_ids:
            return {}
        result = self._client().query(
            f"SELECT {', '.join(ITEM_FIELDS)} FROM {_LIVE} AND sku_id IN {{ids:Array(String)}}",
            parameters={"p": pixel_id, "ids": list(sku_ids)},
        )
        return {r[0]: _item(r) for r in result.result_rows}


# From the products rollup (migration 0013): per variant, the merged events
# naming it, each once however many of its lines do.
_MATCH = """
SELECT variant AS content_id, sum(views_v + carts_v + orders_v) AS events,
       content_id IN (SELECT sku_id FROM catalog_items FINAL
                      WHERE pixel_id = {p:String} AND NOT deleted AND length(problems) = 0)
FROM rollup_products
WHERE pixel_id = {p:String} AND variant != ''
  AND bucket >= {start:DateTime64(3)} AND bucket < {end:DateTime64(3)}
GROUP BY variant
HAVING events > 0
ORDER BY events DESC, content_id
"""


def match_rows(
    client: Client, pixel_id: str, start: datetime, end: datetime
) -> list[tuple[str, int, bool]]:
    """(content_id, events naming it, is a valid catalog item) for the pixel's
    ViewContent, AddToCart and Purchase events in [start, end) (15-minute
    buckets); copies of one event from several sources count once."""
    result = client.query(_MATCH, parameters={"p": pixel_id, "start": start, "end": end})
    return [(c, int(n), bool(m)) for c, n, m in result.result_rows]


def _item(row: Sequence[Any]) -> Item:
    values = dict(zip(ITEM_FIELDS, row, strict=True))
    values["additional_image_links"] = tuple(values["additional_image_links"])
    for money in ("price", "sale_price"):
        if values[money] is not None:
            values[money] = Decimal(values[money]).quantize(Decimal("0.01"))
    return Item(**values)
