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
less refund lines. Amounts stay per currency.
"""

from __future__ import annotations

import functools
from collections import defaultdict
from datetime import UTC, timedelta
from decimal import Decimal
from typing import Any

from clickhouse_connect.driver.client import Client

from pixel_server.reports.base import (
    CHANNELS,
    Report,
    ReportParams,
    Table,
    merged,
    money,
    rollup,
    rows,
)

ORDER_LOOKBACK = timedelta(days=90)

_LINES = (
    "`contents.content_id` AS ids, `contents.item_group_id` AS groups, "
    "`contents.quantity` AS qtys, `contents.price` AS prices"
)


def _refunds(cached: bool) -> str:
    return f"""
SELECT event_id, event_time, order_id, value, currency, {_LINES}
FROM ({merged(("Refund",), cached=cached)})
"""


def _orders(cached: bool) -> str:
    """The purchase each refunded order id of the range was placed with."""
    return f"""
SELECT order_id, min(event_time) AS t, argMin(visitor, event_time) AS anon
FROM ({merged(("Purchase",), start="pstart", cached=cached)})
WHERE order_id != '' AND order_id IN (SELECT order_id FROM ({_refunds(cached)}))
GROUP BY order_id
"""


@functools.cache
def refunded_orders_sql(cached: bool) -> str:
    """The purchase (time, visitor) of each order refunded in the range."""
    return _orders(cached)


@functools.cache
def _items(cached: bool) -> str:
    """Purchases of the range, and refunds with their order's purchase time and
    visitor (looked up beforehand, passed in as arrays: refunds are few)."""
    return f"""
SELECT 'Purchase' AS kind, event_time AS at, visitor AS anon, value, currency, {_LINES}
FROM ({merged(("Purchase",), cached=cached)})
UNION ALL
SELECT 'Refund', if(n > 0, {{ref_t:Array(DateTime64(3, 'UTC'))}}[n], toDateTime64(0, 3, 'UTC')),
       if(n > 0, {{ref_visitor:Array(UInt128)}}[n], toUInt128(0)), value, currency, ids, groups,
       qtys, prices
FROM (SELECT *, indexOf({{ref_order:Array(String)}}, order_id) AS n FROM ({_refunds(cached)}))
"""


def _touches(cached: bool) -> str:
    """Touches of the visitors who bought in the range or whose refunded order
    was bought: the join's right side stays small however busy the shop is."""
    return f"""
SELECT visitor AS anon, event_time AS t, channel
FROM ({rollup("report_touches", cached=cached, start="tstart")})
WHERE visitor IN (SELECT visitor FROM ({merged(("Purchase",), cached=cached)}))
   OR has({{ref_visitor:Array(UInt128)}}, visitor)
"""


@functools.cache
def sql(model: str, cached: bool) -> str:
    # ASOF JOIN finds one touch per item: for last touch the latest at or before
    # the item, for first touch the earliest at or after the window's start; the
    # other bound is checked after the join. No touch: direct.
    if model == "last_touch":
        join, check = "i.anon = t.anon AND i.at >= t.t", "t.t >= i.lo"
    else:
        join, check = "i.anon = t.anon AND i.lo <= t.t", "t.t <= i.at"
    attributed = f"""
SELECT i.kind AS kind, i.currency AS currency, i.value AS value, i.ids AS ids,
       i.groups AS groups, i.qtys AS qtys, i.prices AS prices,
       if(t.anon != 0 AND {check}, t.channel, 'direct') AS channel
FROM (SELECT *, at - toIntervalSecond({{w:UInt32}}) AS lo FROM ({_items(cached)})) AS i
ASOF LEFT JOIN ({_touches(cached)}) AS t ON {join}
"""
    return f"""
SELECT grouping(product) AS level, channel, currency, product,
       countIf(kind = 'Purchase' AND k = 1) AS orders,
       countIf(kind = 'Purchase' AND first_of_product) AS product_orders,
       sumIf(ifNull(value, 0), k = 1) AS revenue,
       sumIf(quantity, kind = 'Purchase') AS units,
       sum(amount) AS line_revenue
FROM
(
    SELECT kind, channel, currency, value, k,
           if(has_lines, products[k], '') AS product,
           has_lines AND arrayEnumerateUniq(products)[k] = 1 AS first_of_product,
           if(has_lines, qtys[k], 0) AS quantity,
           if(has_lines, if(kind = 'Refund', -1, 1) * ifNull(prices[k], toDecimal64(0, 4))
                         * qtys[k], toDecimal64(0, 4)) AS amount
    FROM (SELECT *, length(ids) > 0 AS has_lines,
                 arrayMap((i, g) -> if(g != '', g, i), ids, groups) AS products
          FROM ({attributed}))
    ARRAY JOIN arrayEnumerate(if(has_lines, ids, [''])) AS k
)
GROUP BY GROUPING SETS ((channel, currency), (channel, currency, product))
ORDER BY level, channel, currency, product
"""


def run(client: Client, params: ReportParams, cached: bool = False) -> Report:
    window = timedelta(days=params.window)
    qp = params.query_parameters(pstart=params.start - ORDER_LOOKBACK)
    refunded = rows(client, refunded_orders_sql(cached), qp)
    qp.update(
        ref_order=[r[0] for r in refunded],
        ref_t=[r[1] for r in refunded],
        ref_visitor=[int(r[2]) for r in refunded],
    )
    touch_from = min([params.start, *(r[1].replace(tzinfo=r[1].tzinfo or UTC) for r in refunded)])
    qp.update(tstart=touch_from - window, w=params.window * 86400)
    channels: dict[tuple[str, str], dict[str, Any]] = {}
    per_product: list[dict[str, Any]] = []
    for (
        level,
        channel,
        currency,
        product,
        orders,
        product_orders,
        revenue,
        units,
        line_revenue,
    ) in rows(client, sql(params.model, cached), qp):
        if level == 1:  # (channel, currency)
            channels[(channel, currency)] = {
                "channel": channel,
                "currency": currency,
                "orders": int(orders),
                "revenue": money(revenue),
            }
        elif product:  # lines without a product (no contents) only count in the totals
            per_product.append(
                {
                    "channel": channel,
                    "product": product,
                    "currency": currency,
                    "orders": int(product_orders),
                    "units": int(units),
                    "revenue": money(line_revenue),
                }
            )
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
