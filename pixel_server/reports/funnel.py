"""Funnel: ViewContent → AddToCart → InitiateCheckout → AddPaymentInfo → Purchase.

Definition: a visitor (anonymous id) *reaches* step k when, within the range,
they did steps 1..k in that order (each at or after the one before; other
events in between do not matter). Step conversion is reached(k) / reached(k-1);
overall conversion is reached(k) / reached(1). Events without an anonymous id
(consent denied, back-end-only copies) cannot be followed and are left out.

Computed from the visitor rollup: each visitor's steps in the range, in time
order, walked from level 0 (see :mod:`.rollups`).
"""

from __future__ import annotations

import functools

from clickhouse_connect.driver.client import Client

from pixel_server.reports.base import Report, ReportParams, Table, ratio, rows, visitor_rows
from pixel_server.reports.rollups import FUNNEL as STEPS
from pixel_server.reports.rollups import FUNNEL_LEVEL, STORED_FUNNEL_LEVELS


@functools.cache
def sql(cached: bool, parts: tuple[bool, bool, bool] = (True, True, True)) -> str:
    levels = (
        STORED_FUNNEL_LEVELS
        if cached
        else f"SELECT {FUNNEL_LEVEL} AS level FROM ({visitor_rows(parts)}) GROUP BY visitor"
    )
    return f"SELECT level, count() AS visitors FROM ({levels}) WHERE level > 0 GROUP BY level"


def run(client: Client, params: ReportParams, cached: bool = False) -> Report:
    at_level = {
        int(level): int(n)
        for level, n in rows(client, sql(cached, params.parts), params.query_parameters())
    }
    reached = [sum(n for level, n in at_level.items() if level >= k) for k in range(1, 6)]
    table = Table(["step", "event", "visitors", "step_conversion", "overall_conversion"])
    for i, (name, n) in enumerate(zip(STEPS, reached, strict=True)):
        previous = reached[i - 1] if i else n
        table.rows.append([i + 1, name, n, ratio(n, previous) if i else None, ratio(n, reached[0])])
    return Report(
        "funnel",
        params,
        {
            "definition": "visitors who did steps 1..k in order within the range",
            "steps": table.records(),
        },
        {"steps": table},
    )
