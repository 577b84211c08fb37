"""One row per logical event, resolved when its copies are loaded (migration 0013).

The loader is the only writer of ``events``, so right after it inserts a batch
of copies it can write the merged state of every event the batch touched into
``merged_events``: the merge rules are the query-time ones
(:func:`pixel_server.storage.queries.merged_events_sql`), run over the
copies of just those events. An event whose state changes (a webhook copy
brings the order value, a browser copy the visitor) gets a cancel row of its
old state (sign -1, the old version) and its new state (sign +1, a new
version) in the same insert. The rollups are materialized views of this
table with every measure weighted by ``sign``, so they stay exact at every
insert and nothing rebuilds them (docs/architecture.md §6).

Which copies are merged together: those of one ``event_id`` whose event
times lie within 7 days of the batch's copies (the query-time view's
lookback), grouped into occurrences 48 h apart. An identity reused more than
a week apart yields separate events, as before.

Replays are harmless: a batch loaded twice (a crash before its offset was
saved) cancels the state it wrote and writes it again.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Final

from clickhouse_connect.driver.client import Client

from pixel_server.pipeline.record import RecordKey
from pixel_server.storage import attributed
from pixel_server.storage.queries import merged_events_sql

TABLE: Final = "merged_events"
DEFAULT_RETENTION_MONTHS: Final = 25
#: Copies this close to a batch's copies may belong to the same events.
REACH: Final = timedelta(days=7)
#: A visitor: a 128-bit hash of the anonymous id (0 when there is none).
VISITOR: Final = (
    "if(anonymous_id = '', toUInt128(0), reinterpretAsUInt128(sipHash128(anonymous_id)))"
)
# The merged state kept per event, after (event, event_id, event_time).
STATE: Final = (
    "anonymous_id", "visitor", "channel", "value", "currency", "order_id",
    "`contents.content_id`", "`contents.item_group_id`", "`contents.quantity`",
    "`contents.price`", "`contents.refunded`", "`contents.refunded_share`",
    "sources", "copies", "event_id_assigned", "retention_months",
)  # fmt: skip
COLUMNS: Final = ("event", "event_id", "event_time", *STATE)
# What the merge computes from the copies (visitor and retention are derived).
_INPUTS: Final = tuple(c.strip("`") for c in COLUMNS if c not in ("visitor", "retention_months"))


def retention_expr(retention: Mapping[str, int]) -> str:
    """Each row's pixel's retention in months (the TTL reads it per row)."""
    if not retention:
        return f"toUInt16({DEFAULT_RETENTION_MONTHS})"
    return (
        "transform(pixel_id, {retention_pixels:Array(String)}, {retention_months:Array(UInt16)},"
        f" toUInt16({DEFAULT_RETENTION_MONTHS}))"
    )


def _merge_sql(retention: Mapping[str, int]) -> str:
    """Cancel the current rows of ``{ids}`` in ``[{start}, {end})`` and write
    their state merged again from the copies, as ``{version}``."""
    names = ", ".join(COLUMNS)
    state = ", ".join(f"s.{i} AS {c}" for i, c in enumerate(STATE, 1))
    current = f"""
SELECT event, event_id, event_time, {state}, toInt8(-1), version
FROM
(
    SELECT event, event_id, event_time, version, any(({", ".join(STATE)})) AS s
    FROM {TABLE}
    WHERE pixel_id = {{pixel:String}} AND event_id IN {{ids:Array(String)}}
      AND event_time >= {{start:DateTime64(3)}} AND event_time < {{end:DateTime64(3)}}
    GROUP BY event, event_id, event_time, version
    HAVING sum(sign) > 0
)"""
    derived = {"visitor": VISITOR, "retention_months": retention_expr(retention)}
    values = ", ".join(derived.get(c, c) for c in COLUMNS)
    merged = merged_events_sql("event_id IN {ids:Array(String)}", _INPUTS)
    return f"""
INSERT INTO {TABLE} (pixel_id, {names}, sign, version)
SELECT {{pixel:String}}, * FROM ({current})
UNION ALL
SELECT {{pixel:String}}, {values}, toInt8(1), {{version:UInt64}} FROM ({merged})
"""


@dataclass
class _Touched:
    """The events of one pixel a batch touched, and its copies' time span."""

    ids: set[str] = field(default_factory=set)
    first: float = float("inf")
    last: float = float("-inf")


class MergedEvents:
    """Keeps ``merged_events`` current for the copies inserted into ``events``."""

    def __init__(
        self, client: Callable[[], Client], retention: Callable[[], Mapping[str, int]] = dict
    ) -> None:
        self._client = client
        self._retention = retention
        # Two merges of one event at once would both cancel its old state.
        self._lock = threading.Lock()

    def merge(self, keys: Iterable[RecordKey]) -> None:
        """Re-merge every event the copies ``keys`` belong to (after their insert)."""
        touched: dict[str, _Touched] = {}
        for key in keys:
            t = touched.setdefault(key.pixel_id, _Touched())
            t.ids.add(key.event_id)
            t.first = min(t.first, key.event_time)
            t.last = max(t.last, key.event_time)
        if not touched:
            return
        retention = self._retention()
        sql = _merge_sql(retention)
        with self._lock:
            for pixel_id, t in touched.items():
                parameters = {
                    "pixel": pixel_id,
                    "ids": sorted(t.ids),
                    "start": datetime.fromtimestamp(t.first, UTC) - REACH,
                    "end": datetime.fromtimestamp(t.last, UTC) + REACH,
                    "version": time.time_ns(),
                }
                client = self._client()
                client.command(
                    sql,
                    parameters={
                        **parameters,
                        "retention_pixels": list(retention),
                        "retention_months": list(retention.values()),
                    },
                )
                attributed.update(client, _PURCHASES, parameters)

    def apply_retention(self, pixel_id: str, months: int) -> None:
        self._client().command(
            f"ALTER TABLE {TABLE} UPDATE retention_months = {{m:UInt16}}"
            " WHERE pixel_id = {p:String} AND retention_months != {m:UInt16}",
            parameters={"m": months, "p": pixel_id},
            settings={"mutations_sync": 1},
        )


def current_sql(where: str = "", start: str = "start", end: str = "end") -> str:
    """The current merged rows of ``{pixel}`` with event time in ``[{start}, {end})``
    (``where`` narrows them; literals from our code only): cancelled states
    and the rows cancelling them drop out (FINAL)."""
    narrow = f" AND ({where})" if where else ""
    return f"""
SELECT {", ".join(COLUMNS)}
FROM {TABLE} FINAL
WHERE pixel_id = {{pixel:String}}
  AND event_time >= {{{start}:DateTime64(3)}} AND event_time < {{{end}:DateTime64(3)}}{narrow}
"""


ROLLUP_TABLES: Final = (
    "rollup_counts", "rollup_visitors", "rollup_products", "rollup_touches",
    attributed.TABLE, *attributed.ROLLUP_TABLES,
)  # fmt: skip


def backfill(client: Client) -> None:
    """Merge every stored copy into ``merged_events`` (and so the rollups), a
    pixel and a month at a time to bound the merge's memory. Starts from empty
    tables, so a run cut short is simply run again (migration 0014)."""
    for table in (TABLE, *ROLLUP_TABLES):
        client.command(f"TRUNCATE TABLE IF EXISTS {table}")
    retention = {
        r[0]: int(r[1])
        for r in client.query(
            "SELECT id, raw_retention_months FROM pixels FINAL"
            f" WHERE raw_retention_months != {DEFAULT_RETENTION_MONTHS}"
        ).result_rows
    }
    derived = {"visitor": VISITOR, "retention_months": retention_expr(retention)}
    values = ", ".join(derived.get(c, c) for c in COLUMNS)
    sql = (
        f"INSERT INTO {TABLE} (pixel_id, {', '.join(COLUMNS)}, sign, version)"
        f" SELECT pixel_id, {values}, toInt8(1), toUInt64(1)"
        f" FROM ({merged_events_sql('', _INPUTS, twins_after=True)})"
    )
    months = client.query(
        "SELECT pixel_id, toStartOfMonth(event_time) AS month FROM events"
        " GROUP BY pixel_id, month ORDER BY pixel_id, month"
    ).result_rows
    attribute = attributed.backfill_sql(_PURCHASES)
    for pixel_id, month in months:  # in order: a month's attribution reads the one before
        start = datetime(month.year, month.month, 1, tzinfo=UTC)
        end = datetime(month.year + month.month // 12, month.month % 12 + 1, 1, tzinfo=UTC)
        client.command(
            sql,
            parameters={
                "pixel": pixel_id,
                "start": start,
                "end": end,
                "retention_pixels": list(retention),
                "retention_months": list(retention.values()),
            },
        )
        client.command(attribute, parameters={"pixel": pixel_id, "start": start, "after": end})


# The current purchases from {start} to {after}: what attribution reads.
_PURCHASES: Final = current_sql("event = 'Purchase'", "start", "after")
