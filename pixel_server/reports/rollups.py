"""What the reports read of the merged events: small rollups per 15-minute bucket.

Each rollup is kept twice, with the same definition:

* stored: a materialized view of ``merged_events`` (migration 0013), with every
  measure a sum weighted by the row's sign, so a cancelled state leaves it at
  the insert that cancels it. :func:`stored_sql` reads those rows; the
  visitor rollup keeps, per visitor and UTC day, maps of buckets and of
  funnel steps (:data:`STORED_VISITOR_BUCKETS`, :data:`STORED_FUNNEL_LEVELS`);
* live: each ``SELECT`` below over merged events computed at query time from
  the copies (``cached=False``): the definition, which the tests compare with
  the stored rows and with the generator's truth.

A merchant's calendar day in any time zone starts on a 15-minute boundary (in
UTC), so summing buckets by ``toDate(bucket, tz)`` gives exact days. Distinct
visitors and the funnel stay exact because the visitor rollups keep one row
per visitor and bucket (and per visitor and UTC day, fewer rows for the days
a range covers whole), not a sketch.

The funnel needs each visitor's steps in time order, but not the steps
themselves: a stretch of a visitor's events acts on "how many steps done so
far" (0..5) like a function, and the function of two stretches is the
composition of theirs. A row keeps that function, ``transitions``: for each
level l, the level after its events starting from l, 3 bits at bit 3·l. A
report walks a visitor's rows in time order from level 0 — the greedy walk
(match each next step as early as possible), which finds the longest prefix
of the steps done in order, as ``windowFunnel`` does with the range as window
(ties in step order).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from pixel_server.storage import attributed, merged

FUNNEL: Final = ("ViewContent", "AddToCart", "InitiateCheckout", "AddPaymentInfo", "Purchase")
BUCKET_SECONDS: Final = 900
BUCKET: Final = "toStartOfFifteenMinutes(event_time)"

# A visitor as a 128-bit hash of the anonymous id (0: none): what uniqExact
# keeps of a string anyway, and cheap to group and join on.
VISITOR: Final = merged.VISITOR

_STEPS: Final = "[" + ", ".join(f"'{s}'" for s in FUNNEL) + "]"
# Funnel steps of a group's events in time order (ties in step order).
_ORDERED: Final = f"""arrayMap(x -> x.2, arraySort(groupArrayIf((event_time,
    toUInt8(indexOf({_STEPS}, event))), has({_STEPS}, event))))"""
_WALK: Final = "(level, step) -> if(step = level + 1, toUInt8(level + 1), level)"
# The transitions of a stretch whose steps are ``ordered``.
_TRANSITIONS: Final = f"""arraySum(arrayMap(l -> bitShiftLeft(toUInt32(
    arrayFold({_WALK}, ordered, toUInt8(l))), 3 * l), range({len(FUNNEL) + 1})))"""
# A visitor's level: rows (at, transitions) applied in time order from level 0.
FUNNEL_LEVEL: Final = """arrayFold((level, t) -> toUInt8(bitAnd(bitShiftRight(t, 3 * level), 7)),
    arrayMap(r -> r.2, arraySort(groupArray((at, transitions)))), toUInt8(0))"""


@dataclass(frozen=True)
class Rollup:
    """A stored rollup: its columns after ``(pixel_id, generation)`` (``day``, the
    UTC day, first), the SELECT producing them from a subquery of merged events
    (``{source}``), and the column a range is read by."""

    columns: tuple[str, ...]
    select: str
    time_column: str = "bucket"


_VISITORS: Final = f"""SELECT k AS day_or_bucket, visitor, {_TRANSITIONS} AS transitions
FROM (SELECT {{key}} AS k, visitor, {_ORDERED} AS ordered
      FROM ({{{{source}}}}) WHERE visitor != 0 GROUP BY k, visitor)"""

ROLLUPS: Final[dict[str, Rollup]] = {
    # Events per name, currency and source combination: overview, purchases,
    # operations' dedup statistics.
    "report_counts": Rollup(
        (
            "day",
            "bucket",
            "event",
            "currency",
            "sources",
            "events",
            "amount",
            "copies",
            "same_source",
            "missing_id",
        ),
        f"""SELECT toDate(bucket) AS day, {BUCKET} AS bucket, event, currency, sources,
       count() AS events, sum(ifNull(value, toDecimal64(0, 4))) AS amount, sum(n) AS copies,
       countIf(n > length(sources)) AS same_source, countIf(event_id_assigned) AS missing_id
FROM (SELECT *, copies AS n FROM ({{source}}))
GROUP BY bucket, event, currency, sources""",
    ),
    # One row per visitor and bucket / UTC day: distinct visitors (overview)
    # and the funnel.
    "report_visitors": Rollup(
        ("day", "bucket", "visitor", "transitions"),
        "SELECT toDate(bucket) AS day, day_or_bucket AS bucket, visitor, transitions FROM ("
        + _VISITORS.format(key=BUCKET)
        + ")",
    ),
    "report_visitor_days": Rollup(
        ("day", "visitor", "transitions"),
        "SELECT day_or_bucket AS day, visitor, transitions FROM ("
        + _VISITORS.format(key="toDate(event_time)")
        + ")",
        time_column="day",
    ),
    # Content lines per product, variant and currency (products). A Refund's
    # line returns ``refunded`` (by line; price × quantity when it carries no
    # amounts: a Refund sent by a back end) and ``refunded_share`` (its part of
    # money returned without lines); ``revenue`` is net of both. A line names
    # a variant (content_id) of a product (item_group_id, or the variant
    # itself). An event counts once per variant and once per product however
    # many lines name it: *_v / *_p count only a line that is the event's first
    # of its variant / product (arrayEnumerateUniq).
    "report_products": Rollup(
        (
            "day",
            "bucket",
            "product",
            "variant",
            "currency",
            "views_v",
            "views_p",
            "carts_v",
            "carts_p",
            "orders_v",
            "orders_p",
            "units",
            "money_lines",
            "revenue",
            "refunded_units",
            "refunded",
            "refunded_share",
        ),
        f"""SELECT toDate(bucket) AS day, {BUCKET} AS bucket, line.5 AS product,
       line.1 AS variant, currency,
       countIf(event = 'ViewContent' AND line.6 = 1) AS views_v,
       countIf(event = 'ViewContent' AND line.7 = 1) AS views_p,
       countIf(event = 'AddToCart' AND line.6 = 1) AS carts_v,
       countIf(event = 'AddToCart' AND line.7 = 1) AS carts_p,
       countIf(event = 'Purchase' AND line.6 = 1) AS orders_v,
       countIf(event = 'Purchase' AND line.7 = 1) AS orders_p,
       sumIf(line.3, event = 'Purchase') AS units,
       countIf(event IN ('Purchase', 'Refund')) AS money_lines,
       sumIf(line.3 * ifNull(line.4, toDecimal64(0, 4)), event = 'Purchase')
           - refunded - refunded_share AS revenue,
       sumIf(line.3, event = 'Refund') AS refunded_units,
       sumIf(if(line.8 = 0 AND line.9 = 0, line.3 * ifNull(line.4, toDecimal64(0, 4)), line.8),
             event = 'Refund') AS refunded,
       sumIf(line.9, event = 'Refund') AS refunded_share
FROM (SELECT *, arrayMap((i, g) -> if(g != '', g, i), `contents.content_id`,
                         `contents.item_group_id`) AS products
      FROM ({{source}}) WHERE event IN ('ViewContent', 'AddToCart', 'Purchase', 'Refund'))
ARRAY JOIN arrayZip(`contents.content_id`, `contents.item_group_id`, `contents.quantity`,
                    `contents.price`, products, arrayEnumerateUniq(`contents.content_id`),
                    arrayEnumerateUniq(products), `contents.refunded`,
                    `contents.refunded_share`) AS line
GROUP BY bucket, product, variant, currency""",
    ),
    # Touches (events with a non-direct channel and a visitor): attribution.
    "report_touches": Rollup(
        ("day", "visitor", "event_time", "channel"),
        """SELECT toDate(event_time) AS day, visitor, event_time, channel FROM ({source})
WHERE visitor != 0 AND channel != 'direct'""",
        time_column="event_time",
    ),
}

# Attribution's definitions live with its stored rows.
ATTRIBUTION_MODELS: Final = attributed.MODELS
ATTRIBUTION_WINDOWS: Final = attributed.WINDOWS
ATTRIBUTION_LOOKBACK_DAYS: Final = attributed.LOOKBACK_DAYS
channel_slot = attributed.channel_slot
attributed_select = attributed.attributed_select


# ---------------------------------------------------------------- stored rows

_RANGE: Final = "{{{start}:DateTime64(3)}} AND {column} < {{{end}:DateTime64(3)}}"
_STORED: Final[dict[str, str]] = {
    # Partial sums of a bucket's measures: readers sum them again.
    "report_counts": """SELECT toDate(bucket) AS day, bucket, event, currency, sources, events,
       amount, copies, same_source, missing_id
FROM rollup_counts WHERE pixel_id = {{pixel:String}} AND bucket >= """,
    "report_products": """SELECT toDate(bucket) AS day, * EXCEPT pixel_id
FROM rollup_products WHERE pixel_id = {{pixel:String}} AND bucket >= """,
    # One row per distinct touch; attribution reads only the first and last.
    "report_touches": """SELECT toDate(event_time) AS day, visitor, event_time, channel
FROM rollup_touches WHERE pixel_id = {{pixel:String}} AND event_time >= """,
}
_TAIL: Final = {"report_touches": " GROUP BY visitor, event_time, channel HAVING sum(n) > 0"}


def stored_sql(table: str, start: str = "start", end: str = "end") -> str:
    """The stored rows of rollup ``table`` in ``[{start}, {end})``."""
    column = ROLLUPS[table].time_column
    return (
        _STORED[table].format()
        + _RANGE.format(start=start, end=end, column=column)
        + _TAIL.get(table, "")
    )


# Per visitor and UTC day of the range, their map's keys whose signs sum above 0.
# FINAL merges a row's parts in key order: a third of a GROUP BY's cost here.
_VISITOR_MAP: Final = """
SELECT visitor, arrayFilter((k, n) -> n > 0 AND {keep}, {column}.1, {column}.2) AS keys
FROM rollup_visitors FINAL
WHERE pixel_id = {{pixel:String}} AND day >= toDate({{start:DateTime64(3)}}, 'UTC')
  AND day <= toDate({{end:DateTime64(3)}}, 'UTC')"""
_IN_RANGE_S: Final = (
    "k >= toUnixTimestamp({start:DateTime64(3)}) AND k < toUnixTimestamp({end:DateTime64(3)})"
)
_IN_RANGE_MS: Final = (
    "intDiv(k, 8) >= toUnixTimestamp64Milli({start:DateTime64(3)})"
    " AND intDiv(k, 8) < toUnixTimestamp64Milli({end:DateTime64(3)})"
)
#: ``(visitor, keys)``: per visitor and UTC day, the 15-minute buckets (Unix
#: seconds) of the range the visitor had an event in (none: not in the range).
STORED_VISITOR_BUCKETS: Final = (
    "SELECT * FROM (" + _VISITOR_MAP.format(column="buckets", keep=_IN_RANGE_S) + ")"
    " WHERE notEmpty(keys)"
)
#: ``level``: per visitor, the funnel steps done in order within the range.
#: A step's key, time in ms × 8 + step, orders by time and then by step, so
#: ``windowFunnel`` over the keys, with a window wider than any range, finds
#: the longest prefix of the steps done in order (ties in step order): what
#: the greedy walk of :data:`FUNNEL_LEVEL` finds.
STORED_FUNNEL_LEVELS: Final = (
    f"SELECT windowFunnel({1 << 62})(k, {', '.join(f's = {i + 1}' for i in range(len(FUNNEL)))})"
    " AS level"
    " FROM (SELECT visitor, arrayJoin(keys) AS k, k % 8 AS s FROM ("
    + _VISITOR_MAP.format(column="steps", keep=_IN_RANGE_MS)
    + ")) GROUP BY visitor"
)
