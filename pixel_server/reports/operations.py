"""Operations: forwarding outcomes (the ``deliveries`` ledger) and dedup statistics.

* forwarding: each (event, event_id, source) sent to TikTok in the range is
  counted once by its latest attempt's outcome (sent, retrying, dead), with
  the attempt count and the latest non-``sent`` TikTok messages;
* dedup, over the merged events of the range: events by the combination of
  sources whose copies were merged (``browser+server``, ``browser+webhook``,
  ...), events with more stored copies than sources (same-source duplicates
  ClickHouse has not collapsed yet: identical re-deliveries collapse in
  background merges, copies with another event time stay), and events whose
  ``event_id`` the server had to assign (they can never merge);
* catalog match: the share of the range's ViewContent / AddToCart / Purchase
  content ids that are valid catalog items, and the top unmatched ids
  (``pixel_server.catalog.match``; what Dynamic Showcase Ads need);
* the running process's counters (since it started):
  ``pixel_duplicates_collapsed_total`` (same-source copies dropped at ingest)
  and ``pixel_events_missing_event_id_total``, by source.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping

from clickhouse_connect.driver.client import Client

from pixel_server.catalog.match import match_rate
from pixel_server.reports.base import Report, ReportParams, Table, rollup, rows

_DELIVERIES = """
SELECT outcome, count() AS events, sum(attempts) AS attempts FROM
(
    SELECT event, event_id, source, count() AS attempts,
           argMax(toString(outcome), (attempted_at, attempt)) AS outcome
    FROM deliveries
    WHERE pixel_id = {pixel:String}
      AND attempted_at >= {start:DateTime64(3)} AND attempted_at < {end:DateTime64(3)}
    GROUP BY event, event_id, source
)
GROUP BY outcome ORDER BY outcome
"""

_MESSAGES = """
SELECT toString(attempted_at), event, event_id, toString(source), toString(outcome), attempt,
       http_status, tiktok_code, tiktok_message
FROM deliveries
WHERE pixel_id = {pixel:String}
  AND attempted_at >= {start:DateTime64(3)} AND attempted_at < {end:DateTime64(3)}
  AND outcome != 'sent'
ORDER BY attempted_at DESC
LIMIT 20
"""


@functools.cache
def _dedup(cached: bool) -> str:
    return f"""
SELECT sources, sum(events), sum(same_source), sum(copies), sum(missing_id)
FROM ({rollup("report_counts", cached=cached)})
GROUP BY sources
"""


OUTCOMES = ("sent", "retrying", "dead")
Counters = Mapping[str, Mapping[str, float]]


def run(
    client: Client,
    params: ReportParams,
    counters: Counters | None = None,
    cached: bool = False,
) -> Report:
    qp = params.query_parameters()
    outcome = {o: {"events": 0, "attempts": 0} for o in OUTCOMES}
    for name, events, attempts in rows(client, _DELIVERIES, qp):
        outcome[name] = {"events": int(events), "attempts": int(attempts)}
    forwarding = Table(
        ["outcome", "events", "attempts"],
        [[o, v["events"], v["attempts"]] for o, v in outcome.items()],
    )
    messages = Table(
        [
            "attempted_at",
            "event",
            "event_id",
            "source",
            "outcome",
            "attempt",
            "http_status",
            "tiktok_code",
            "tiktok_message",
        ],
        [list(r) for r in rows(client, _MESSAGES, qp)],
    )
    dedup = Table(
        ["sources", "events", "same_source_duplicates", "copies", "missing_event_id"],
        sorted(
            (
                ["+".join(c), int(e), int(d), int(n), int(m)]
                for c, e, d, n, m in rows(client, _dedup(cached), qp)
            ),
            key=lambda r: (-r[1], r[0]),
        ),
    )
    totals = {
        "events": sum(r[1] for r in dedup.rows),
        "copies": sum(r[3] for r in dedup.rows),
        "merged_across_sources": sum(r[1] for r in dedup.rows if "+" in r[0]),
        "same_source_duplicates": sum(r[2] for r in dedup.rows),
        "missing_event_id": sum(r[4] for r in dedup.rows),
    }
    process = {name: dict(values) for name, values in (counters or {}).items()}
    return Report(
        "operations",
        params,
        {
            "forwarding": forwarding.records(),
            "last_messages": messages.records(),
            "dedup": {"totals": totals, "by_sources": dedup.records()},
            "process_counters": process,
            "catalog_match": match_rate(
                client, params.pixel_id, params.end, params.end - params.start
            ).public(),
        },
        {"forwarding": forwarding, "messages": messages, "dedup": dedup},
    )
