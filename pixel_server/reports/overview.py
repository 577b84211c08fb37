"""Overview: events per name per day, and unique visitors (anonymous ids).

Counts per (day, event); visitors per day and over the whole range: unique
visitors are not additive across days, so the range total is its own
``uniqExact``.
"""

from __future__ import annotations

import functools
from collections import defaultdict

from clickhouse_connect.driver.client import Client

from pixel_server.reports.base import (
    Report,
    ReportParams,
    Table,
    day_expr,
    rollup,
    rows,
    visitor_rows,
)
from pixel_server.reports.rollups import STORED_VISITOR_BUCKETS


@functools.cache
def sql(cached: bool, parts: tuple[bool, bool, bool] = (True, True, True)) -> str:
    # Events per (day, event) are sums of bucket counts; distinct visitors are
    # counted only per day and over the range (not per event: nobody reads them).
    counts = f"""
SELECT 0 AS level, {day_expr("bucket")} AS day, event, sum(events) AS n
FROM ({rollup("report_counts", cached=cached)})
GROUP BY day, event
UNION ALL
"""
    if cached:
        # One pass: each visitor's days in the zone, distinct per day and overall.
        day = day_expr("toDateTime(b, 'UTC')")
        days = f"arrayDistinct(arrayMap(b -> {day}, keys))"
        return f"""{counts}
SELECT 1 + grouping(day), day, '', uniqExact(visitor)
FROM (SELECT visitor, arrayJoin({days}) AS day FROM ({STORED_VISITOR_BUCKETS}))
GROUP BY GROUPING SETS ((day), ())
"""
    return f"""{counts}
SELECT 1, {day_expr("bucket")} AS day, '', uniqExact(visitor)
FROM ({rollup("report_visitors", cached=cached)})
GROUP BY day
UNION ALL
SELECT 2, toDate(0), '', uniqExact(visitor) FROM ({visitor_rows(parts)})
"""


def run(client: Client, params: ReportParams, cached: bool = False) -> Report:
    by_day: dict[str, dict[str, int]] = defaultdict(dict)
    visitors_by_day: dict[str, int] = {}
    totals: dict[str, int] = defaultdict(int)
    total_events = total_visitors = 0
    for level, date_, event, n in rows(
        client, sql(cached, params.parts), params.query_parameters()
    ):
        day = date_.isoformat()
        if level == 0:  # (day, event)
            by_day[day][event] = int(n)
            totals[event] += int(n)
            total_events += int(n)
        elif level == 1:  # visitors that day
            visitors_by_day[day] = int(n)
        else:  # visitors over the range
            total_visitors = int(n)
    names = sorted(totals, key=lambda n: (-totals[n], n))
    daily = Table(["date", "visitors", "events", *names])
    for day in params.days():
        counts = by_day.get(day, {})
        daily.rows.append(
            [
                day,
                visitors_by_day.get(day, 0),
                sum(counts.values()),
                *(counts.get(n, 0) for n in names),
            ]
        )
    return Report(
        "overview",
        params,
        {
            "totals": {
                "events": total_events,
                "visitors": total_visitors,
                "by_event": {n: totals[n] for n in names},
            },
            "days": [
                {
                    "date": r[0],
                    "visitors": r[1],
                    "events": r[2],
                    "by_event": dict(zip(names, r[3:], strict=True)),
                }
                for r in daily.rows
            ],
        },
        {"daily": daily},
    )
