"""Overview: events per name per day, and unique visitors (anonymous ids).

One scan of the merged view with GROUPING SETS gives (day, event) counts,
visitors per day and visitors over the whole range: unique visitors are not
additive across days, so the range total is its own ``uniqExact``.
"""

from __future__ import annotations

import functools
from collections import defaultdict

from clickhouse_connect.driver.client import Client

from pixel_server.reports.base import Report, ReportParams, Table, day_expr, merged, rows


@functools.cache
def sql(cached: bool) -> str:
    return f"""
SELECT grouping(day, event) AS level, day, event, count() AS events,
       uniqExactIf(anonymous_id, anonymous_id != '') AS visitors
FROM (SELECT {day_expr()} AS day, event, anonymous_id FROM ({merged(cached=cached)}))
GROUP BY GROUPING SETS ((day, event), (day), ())
ORDER BY level, day, event
"""


def run(client: Client, params: ReportParams, cached: bool = False) -> Report:
    by_day: dict[str, dict[str, int]] = defaultdict(dict)
    visitors_by_day: dict[str, int] = {}
    totals: dict[str, int] = defaultdict(int)
    total_events = total_visitors = 0
    for level, day, event, events, visitors in rows(client, sql(cached), params.query_parameters()):
        if level == 0:  # (day, event)
            by_day[day][event] = int(events)
            totals[event] += int(events)
        elif level == 1:  # (day)
            visitors_by_day[day] = int(visitors)
        else:  # ()
            total_events, total_visitors = int(events), int(visitors)
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
