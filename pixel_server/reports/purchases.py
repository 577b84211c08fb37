"""Purchases: orders, revenue and average order value per day and currency.

Amounts of different currencies are never added up: every row and total is
per currency. ``Refund`` events (negative value, from the store's webhooks)
count on the day of the refund: ``revenue = gross_revenue + refunded`` (the
refunded amount is negative). ``aov = gross_revenue / orders``: an average
order's value, refunds apart. A purchase without a value counts as an order
of 0.
"""

from __future__ import annotations

import functools
from collections import defaultdict
from decimal import Decimal
from typing import Any

from clickhouse_connect.driver.client import Client

from pixel_server.reports.base import Report, ReportParams, Table, day_expr, money, rollup, rows


@functools.cache
def sql(cached: bool) -> str:
    return f"""
SELECT {day_expr("bucket")} AS day, currency,
       sumIf(events, event = 'Purchase') AS orders,
       sumIf(amount, event = 'Purchase') AS gross,
       sumIf(events, event = 'Refund') AS refunds,
       sumIf(amount, event = 'Refund') AS refunded
FROM ({rollup("report_counts", cached=cached)})
WHERE event IN ('Purchase', 'Refund')
GROUP BY day, currency
ORDER BY day, currency
"""


COLUMNS = ["date", "currency", "orders", "gross_revenue", "refunds", "refunded", "revenue", "aov"]


def _row(
    day: str, currency: str, orders: int, gross: Decimal, refunds: int, refunded: Decimal
) -> list[Any]:
    aov = (gross / orders).quantize(Decimal("0.0001")) if orders else None
    return [day, currency, orders, gross, refunds, refunded, gross + refunded, aov]


def run(client: Client, params: ReportParams, cached: bool = False) -> Report:
    daily = Table(COLUMNS)
    sums: dict[str, list[Any]] = defaultdict(lambda: [0, Decimal(0), 0, Decimal(0)])
    for day, currency, orders, gross, refunds, refunded in rows(
        client, sql(cached), params.query_parameters()
    ):
        g, r = money(gross), money(refunded)
        daily.rows.append(_row(day.isoformat(), currency, int(orders), g, int(refunds), r))
        s = sums[currency]
        s[0] += int(orders)
        s[1] += g
        s[2] += int(refunds)
        s[3] += r
    totals = Table(COLUMNS[1:])
    for currency in sorted(sums):
        totals.rows.append(_row("", currency, *sums[currency])[1:])
    return Report(
        "purchases",
        params,
        {"totals": totals.records(), "days": daily.records()},
        {"daily": daily, "totals": totals},
    )
