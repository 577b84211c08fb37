"""Purchases with their channel under every attribution model and window, kept
current at load time (migration 0013), and the definitions they follow.

A purchase's channel depends on its buyer's touches (events with a channel
other than direct) in the 28 days before it, and a touch may arrive after the
purchase it precedes. So after each merge (:mod:`.merged`) the loader
attributes again every purchase the batch could change: the batch's own
purchases, and those of every visitor the batch's events belong to, up to
28 days after them. Like the merged rows, a changed attribution is a cancel
row plus the new state in ``attributed_purchases``, whose materialized views
(``rollup_attribution``, ``rollup_attribution_lines``) the attribution report
reads.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any, Final

from clickhouse_connect.driver.client import Client

TABLE: Final = "attributed_purchases"
ROLLUP_TABLES: Final = ("rollup_attribution", "rollup_attribution_lines")

# Attribution: a purchase's channel under each model and click window, in this
# order (reports/attribution.py picks one).
MODELS: Final = ("last_touch", "first_touch")
WINDOWS: Final = (1, 7, 28)
LOOKBACK_DAYS: Final = max(WINDOWS)


def channel_slot(model: str, window: int) -> int:
    """The 1-based index of (model, window) in ``channels``."""
    return MODELS.index(model) * len(WINDOWS) + (WINDOWS.index(window) + 1)


def attributed_select(purchases: str, touches: str) -> str:
    """Purchases (merged rows) with their ``channels``: a touch is a row of
    ``touches`` (visitor, event_time, channel) by the purchase's visitor at or
    before it and within the window; last touch takes the latest, first touch
    the earliest; no touch (or no visitor) is ``direct``."""
    slots = []
    for model in MODELS:
        for window in WINDOWS:
            pick = "-1" if model == "last_touch" else "1"
            slots.append(f"if(empty(in{window}), 'direct', in{window}[{pick}].2)")
    windows = ", ".join(
        f"arrayFilter(x -> x.1 >= p_at - toIntervalDay({w}), ts) AS in{w}" for w in WINDOWS
    )
    return f"""
SELECT toDate(p_at) AS day, p_id AS event_id, p_at AS event_time, p_buyer AS visitor,
       p_order AS order_id, p_currency AS currency, p_value AS value, p_ids AS ids,
       p_groups AS groups, p_qtys AS qtys, p_prices AS prices,
       [{", ".join(slots)}] AS channels
FROM
(
    SELECT p_id, p_at, any(p_visitor) AS p_buyer, any(p_order) AS p_order,
           any(p_currency) AS p_currency,
           any(p_value) AS p_value, any(p_ids) AS p_ids, any(p_groups) AS p_groups,
           any(p_qtys) AS p_qtys, any(p_prices) AS p_prices,
           arraySort(groupArrayIf((t_at, t_channel), t_visitor != 0 AND t_at <= p_at
               AND t_at >= p_at - toIntervalDay({LOOKBACK_DAYS}))) AS ts,
           {windows}
    FROM (SELECT event_id AS p_id, event_time AS p_at, visitor AS p_visitor,
                 order_id AS p_order, currency AS p_currency, value AS p_value,
                 `contents.content_id` AS p_ids, `contents.item_group_id` AS p_groups,
                 `contents.quantity` AS p_qtys, `contents.price` AS p_prices
          FROM ({purchases}) WHERE event = 'Purchase') AS p
    LEFT JOIN (SELECT visitor AS t_visitor, event_time AS t_at, channel AS t_channel
               FROM ({touches})) AS t ON p_visitor = t_visitor
    GROUP BY p_id, p_at
)
"""


# What a stored attributed purchase keeps, after (event_id, event_time).
STATE: Final = ("visitor", "order_id", "currency", "value", "ids", "groups", "qtys", "prices",
                "channels")  # fmt: skip
COLUMNS: Final = ("event_id", "event_time", *STATE)

# The visitors of the batch's purchases and touches, in any state (a
# cancelled state's visitor lost one). Only those can change an attribution:
# an event that is neither moves no purchase's channel.
_AFFECTED: Final = """SELECT DISTINCT visitor FROM merged_events
    WHERE pixel_id = {pixel:String} AND event_id IN {ids:Array(String)} AND visitor != 0
      AND event_time >= {start:DateTime64(3)} AND event_time < {end:DateTime64(3)}
      AND (event = 'Purchase' OR channel != 'direct')"""
# Looked up once per batch and passed as {visitors}: each use would scan again.
_VISITORS: Final = "{visitors:Array(UInt128)}"
_WHICH: Final = f"(event_id IN {{ids:Array(String)}} OR visitor IN {_VISITORS})"


def update_sql(purchases_sql: str) -> str:
    """Cancel the attributed rows the batch may change and write them again.
    ``purchases_sql``: the current merged purchases of ``{pixel}`` in
    ``[{start}, {after})`` (:func:`.merged.current_sql`)."""
    state = ", ".join(f"s.{i} AS {c}" for i, c in enumerate(STATE, 1))
    current = f"""
SELECT event_id, event_time, {state}, toInt8(-1), version
FROM
(
    SELECT event_id, event_time, version, any(({", ".join(STATE)})) AS s
    FROM {TABLE}
    WHERE pixel_id = {{pixel:String}} AND {_WHICH}
      AND event_time >= {{start:DateTime64(3)}} AND event_time < {{after:DateTime64(3)}}
    GROUP BY event_id, event_time, version
    HAVING sum(sign) > 0
)"""
    purchases = f"SELECT * FROM ({purchases_sql}) WHERE {_WHICH}"
    return f"""
INSERT INTO {TABLE} (pixel_id, {", ".join(COLUMNS)}, sign, version)
SELECT {{pixel:String}}, * FROM ({current})
UNION ALL
SELECT {{pixel:String}}, {", ".join(COLUMNS)}, toInt8(1), {{version:UInt64}}
FROM ({attributed_select(purchases, touches_sql(_VISITORS))})
"""


def touches_sql(visitors: str) -> str:
    """The stored touches of ``visitors`` (a subquery) from 28 days before
    ``{start}`` to ``{after}`` (a touch after a purchase never counts)."""
    return f"""
SELECT visitor, event_time, channel FROM rollup_touches
WHERE pixel_id = {{pixel:String}} AND visitor IN {visitors}
  AND event_time >= {{start:DateTime64(3)}} - INTERVAL {LOOKBACK_DAYS} DAY
  AND event_time < {{after:DateTime64(3)}}
GROUP BY visitor, event_time, channel
HAVING sum(n) > 0"""


def update(client: Client, purchases_sql: str, parameters: dict[str, Any]) -> None:
    """After a merge with ``parameters`` (pixel, ids, start, end, version)."""
    after = parameters["end"] + timedelta(days=LOOKBACK_DAYS)
    visitors = [int(r[0]) for r in client.query(_AFFECTED, parameters=parameters).result_rows]
    client.command(
        update_sql(purchases_sql),
        parameters={**parameters, "after": after, "visitors": visitors},
    )


def backfill_sql(purchases_sql: str) -> str:
    """Attribute every current purchase of ``{pixel}`` in ``[{start}, {after})``."""
    return f"""
INSERT INTO {TABLE} (pixel_id, {", ".join(COLUMNS)}, sign, version)
SELECT {{pixel:String}}, {", ".join(COLUMNS)}, toInt8(1), toUInt64(1)
FROM ({attributed_select(purchases_sql, touches_sql(f"(SELECT visitor FROM ({purchases_sql}))"))})
"""
