"""Attribution: purchases and revenue by channel, last-touch or first-touch.

Definitions:

* a **touch** is a merged event (any name) whose channel is not ``direct``
  (``tiktok_paid`` via ttclid, ``tiktok_organic``, ``other_paid``,
  ``referral``), by the purchase's anonymous id, at or before the purchase and
  no more than ``window`` days (1, 7 or 28) before it; a touch's time is the
  merged event's time (its earliest copy's) and its channel the merged
  channel (a browser copy's, which saw the landing page);
* **last touch** credits the latest touch, **first touch** the earliest one;
  a purchase with no touch in the window (or without an anonymous id) is
  ``direct``;
* a ``Refund`` in the range nets revenue out of the channel its order's
  purchase (same ``order_id``, looked up to 90 days before ``from``) is
  credited to, with that purchase's touches; a refund whose order is not found
  is ``direct``.

Per product, purchase lines (``price × quantity``) are credited the same way,
less what refunds returned for the line (by line and its share of money
returned without lines, see :mod:`.products`). Amounts stay per currency.

Stored, each purchase's channel under every model and window is worked out
by the loader, again whenever a batch brings its buyer a touch
(:mod:`pixel_server.storage.attributed`), and the report sums its rollups.
Live, the same definition runs at query time over the merged copies.
"""

from __future__ import annotations

import functools
from collections import defaultdict
from datetime import timedelta
from decimal import Decimal
from typing import Any, Final

from clickhouse_connect.driver.client import Client

from pixel_server.pipeline.steps import CHANNELS
from pixel_server.reports.base import (
    Report,
    ReportParams,
    Table,
    merged,
    money,
    rollup,
    rows,
)
from pixel_server.reports.rollups import (
    ATTRIBUTION_LOOKBACK_DAYS,
    attributed_select,
    channel_slot,
)
from pixel_server.storage import attributed

ORDER_LOOKBACK = timedelta(days=90)


def _attributed(cached: bool, start: str = "start", where: str = "") -> str:
    """Purchases from ``{start}`` to ``{end}`` (narrowed by ``where``) with their
    ``channels``; only their buyers' touches are read."""
    purchases = merged(("Purchase",), cached=cached, start=start)
    if where:
        purchases = f"SELECT * FROM ({purchases}) WHERE {where}"
    touches = rollup("report_touches", cached=cached, start=f"{start}_touches")
    touches = f"SELECT * FROM ({touches}) WHERE visitor IN (SELECT visitor FROM ({purchases}))"
    return attributed_select(purchases, touches)


@functools.cache
def refunds_sql(cached: bool) -> str:
    """The range's refunds: few rows, netted in Python."""
    return f"""
SELECT order_id, currency, value, `contents.content_id`, `contents.item_group_id`,
       `contents.quantity`, `contents.price`, `contents.refunded`, `contents.refunded_share`
FROM ({merged(("Refund",), cached=cached)})
"""


@functools.cache
def orders_sql(cached: bool) -> str:
    """The channel of each refunded order's first purchase, up to 90 days
    before the range (``{pstart}``)."""
    orders = "order_id IN {orders:Array(String)}"
    source = (
        f"SELECT * FROM {attributed.TABLE} FINAL WHERE pixel_id = {{pixel:String}}"
        " AND event_time >= {pstart:DateTime64(3)} AND event_time < {end:DateTime64(3)}"
        f" AND {orders}"
        if cached
        else _attributed(cached, start="pstart", where=orders)
    )
    return f"""
SELECT order_id, argMin(channels[{{slot:UInt8}}], event_time)
FROM ({source})
GROUP BY order_id
"""


@functools.cache
def sql(cached: bool) -> str:
    """Purchases per (channel, currency): orders and revenue (level 1); per
    (channel, currency, product): orders containing it, units and line
    revenue, ``price × quantity`` (level 0). One pass over the attributed
    purchases: each gives a row for itself and one per content line. A line's
    product is its item_group_id, else its content_id; an order counts once
    per product however many of its lines name it. Refunds apart
    (:func:`refunds_sql`). Stored: the same sums, from the rollups of the
    attributed purchases the loader keeps (:mod:`pixel_server.storage.attributed`)."""
    if cached:
        return _STORED
    zero = "toDecimal64(0, 4)"
    return f"""
SELECT x.1 AS level, channels[{{slot:UInt8}}] AS channel, currency, x.2 AS product,
       sum(x.3), sum(x.4), sum(x.5), sum(x.6)
FROM
(
    SELECT channels, currency, arrayJoin(arrayConcat(
        [(toUInt8(1), '', toUInt64(1), ifNull(value, {zero}), toUInt64(0), {zero})],
        arrayMap((g, n, q, pr) -> (toUInt8(0), g, toUInt64(n = 1), {zero}, toUInt64(q),
                                   ifNull(pr, {zero}) * q),
                 products, arrayEnumerateUniq(products), qtys, prices))) AS x
    FROM (SELECT *, arrayMap((i, g) -> if(g != '', g, i), ids, groups) AS products
          FROM ({_attributed(cached)}))
)
GROUP BY level, channel, currency, product
"""


_STORED: Final = """
SELECT 1 AS level, channels[{slot:UInt8}] AS channel, currency, '' AS product,
       sum(orders), sum(revenue), toInt64(0), toDecimal128(0, 4)
FROM rollup_attribution
WHERE pixel_id = {pixel:String} AND bucket >= {start:DateTime64(3)} AND bucket < {end:DateTime64(3)}
GROUP BY channel, currency
HAVING sum(orders) != 0
UNION ALL
SELECT 0, channels[{slot:UInt8}] AS channel, currency, product,
       sum(orders), toDecimal128(0, 4), sum(units), sum(amount)
FROM rollup_attribution_lines
WHERE pixel_id = {pixel:String} AND bucket >= {start:DateTime64(3)} AND bucket < {end:DateTime64(3)}
GROUP BY channel, currency, product
HAVING sum(orders) != 0
"""


def run(client: Client, params: ReportParams, cached: bool = False) -> Report:
    lookback = timedelta(days=ATTRIBUTION_LOOKBACK_DAYS)
    pstart = params.start - ORDER_LOOKBACK
    qp = params.query_parameters(
        pstart=pstart,
        start_touches=params.start - lookback,
        pstart_touches=pstart - lookback,
        slot=channel_slot(params.model, params.window),
    )
    channels: dict[tuple[str, str], dict[str, Any]] = {}
    products: dict[tuple[str, str, str], dict[str, Any]] = {}

    def channel_row(channel: str, currency: str) -> dict[str, Any]:
        return channels.setdefault(
            (channel, currency),
            {"channel": channel, "currency": currency, "orders": 0, "revenue": Decimal(0)},
        )

    def product_row(channel: str, currency: str, product: str) -> dict[str, Any]:
        return products.setdefault(
            (channel, product, currency),
            {
                "channel": channel,
                "product": product,
                "currency": currency,
                "orders": 0,
                "units": 0,
                "revenue": Decimal(0),
            },
        )

    for level, channel, currency, product, orders, revenue, units, amount in rows(
        client, sql(cached), qp
    ):
        if level == 1:
            row = channel_row(channel, currency)
            row["orders"] += int(orders)
            row["revenue"] += money(revenue)
        else:
            row = product_row(channel, currency, product)
            row["orders"] += int(orders)
            row["units"] += int(units)
            row["revenue"] += money(amount)
    refunds = rows(client, refunds_sql(cached), qp)
    orders = sorted({r[0] for r in refunds if r[0]})
    channel_of = dict(rows(client, orders_sql(cached), {**qp, "orders": orders})) if orders else {}
    for order_id, currency, value, ids, groups, qtys, prices, by_line, shares in refunds:
        channel = channel_of.get(order_id, "direct")  # an order not found is direct
        channel_row(channel, currency)["revenue"] += money(value)
        for content_id, group, quantity, price, refunded, share in zip(
            ids, groups, qtys, prices, by_line, shares, strict=True
        ):
            line = product_row(channel, currency, group or content_id)
            if refunded or share:
                line["revenue"] -= money(refunded) + money(share)
            else:  # a Refund without amounts (a back end's): its lines at their price
                line["revenue"] -= money(price) * quantity
    for row in channels.values():
        row["revenue"] = money(row["revenue"])
    per_product = list(products.values())
    for row in per_product:
        row["revenue"] = money(row["revenue"])
    order = {c: i for i, c in enumerate(CHANNELS)}
    channel_rows = sorted(
        channels.values(), key=lambda r: (order.get(r["channel"], 9), r["currency"])
    )
    totals: dict[str, dict[str, Any]] = defaultdict(lambda: {"orders": 0, "revenue": Decimal(0)})
    for r in channel_rows:
        totals[r["currency"]]["orders"] += r["orders"]
        totals[r["currency"]]["revenue"] += r["revenue"]
    for r in channel_rows:
        whole = totals[r["currency"]]["revenue"]
        r["revenue_share"] = float(round(r["revenue"] / whole, 6)) if whole else None
    per_product.sort(key=lambda r: (order.get(r["channel"], 9), r["product"], r["currency"]))
    channel_table = Table(
        ["channel", "currency", "orders", "revenue", "revenue_share"],
        [
            [r[c] for c in ("channel", "currency", "orders", "revenue", "revenue_share")]
            for r in channel_rows
        ],
    )
    product_table = Table(
        ["channel", "product", "currency", "orders", "units", "revenue"],
        [list(r.values()) for r in per_product],
    )
    return Report(
        "attribution",
        params,
        {
            "model": params.model,
            "window_days": params.window,
            "channels": channel_rows,
            "totals": [{"currency": c, **v} for c, v in sorted(totals.items())],
            "products": per_product,
        },
        {"channels": channel_table, "products": product_table},
    )
