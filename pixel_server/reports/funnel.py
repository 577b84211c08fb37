"""Funnel: ViewContent → AddToCart → InitiateCheckout → AddPaymentInfo → Purchase.

Definition: a visitor (anonymous id) *reaches* step k when, within the range,
they did steps 1..k in that order (each at or after the one before; other
events in between do not matter). This is ClickHouse's ``windowFunnel`` with
a window as long as the range. Step conversion is reached(k) / reached(k-1);
overall conversion is reached(k) / reached(1). Events without an anonymous id
(consent denied, back-end-only copies) cannot be followed and are left out.
"""

from __future__ import annotations

import functools

from clickhouse_connect.driver.client import Client

from pixel_server.reports.base import Report, ReportParams, Table, merged, ratio, rows

STEPS = ("ViewContent", "AddToCart", "InitiateCheckout", "AddPaymentInfo", "Purchase")


@functools.cache
def sql(span_ms: int, cached: bool) -> str:
    conditions = ", ".join(f"event = '{s}'" for s in STEPS)
    return f"""
SELECT level, count() AS visitors FROM
(
    SELECT visitor,
           windowFunnel({span_ms})(toUInt64(toUnixTimestamp64Milli(event_time)), {conditions})
               AS level
    FROM ({merged(STEPS, cached=cached)})
    WHERE visitor != 0
    GROUP BY visitor
)
GROUP BY level
"""


def run(client: Client, params: ReportParams, cached: bool = False) -> Report:
    span_ms = int((params.end - params.start).total_seconds() * 1000)
    at_level = {
        int(level): int(n)
        for level, n in rows(client, sql(span_ms, cached), params.query_parameters())
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
