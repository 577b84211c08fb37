"""What the reports keep of the merged events: small rollups per 15-minute bucket.

Reports never scan events. Each rollup below is a ``SELECT`` over merged
events (one row per event, DESIGN §2) that groups them by 15-minute bucket
(UTC) and a few keys. The same ``SELECT`` is used twice:

* by the cache (:mod:`.cache`), which stores its output per UTC day and
  generation in the table of the same name (migration 0004);
* at query time over the live merged view (``cached=False``), which the tests
  compare with the stored rows and with the generator's truth.

A merchant's calendar day in any time zone starts on a 15-minute boundary (in
UTC), so summing buckets by ``toDate(bucket, tz)`` gives exact days. Distinct
visitors and the funnel stay exact because the visitor rollup keeps one row
per visitor and bucket (not a sketch), with the visitor's funnel steps in
time order, consecutive repeats dropped (a repeat never moves a visitor on).
"""

from __future__ import annotations

from typing import Final

FUNNEL: Final = ("ViewContent", "AddToCart", "InitiateCheckout", "AddPaymentInfo", "Purchase")
BUCKET_SECONDS: Final = 900
BUCKET: Final = "toStartOfFifteenMinutes(event_time)"

# The merged view's columns the rollups and attribution read.
MERGED_COLUMNS: Final = (
    "event",
    "event_id",
    "event_time",
    "anonymous_id",
    "channel",
    "value",
    "currency",
    "order_id",
    "`contents.content_id`",
    "`contents.item_group_id`",
    "`contents.quantity`",
    "`contents.price`",
    "sources",
    "copies",
    "event_id_assigned",
    "visitor",
)
# A visitor as a 128-bit hash of the anonymous id (0: none): what uniqExact
# keeps of a string anyway, and cheap to group and join on.
VISITOR: Final = (
    "if(anonymous_id = '', toUInt128(0), reinterpretAsUInt128(sipHash128(anonymous_id)))"
)

_STEPS: Final = "[" + ", ".join(f"'{s}'" for s in FUNNEL) + "]"
_ORDERED: Final = f"""arrayMap(x -> x.2, arraySort(groupArrayIf((event_time,
    toUInt8(indexOf({_STEPS}, event))), has({_STEPS}, event))))"""

# Each rollup: its columns after (pixel_id, day, generation), and the SELECT
# producing them from a subquery of merged events (``{source}``).
SQL: Final[dict[str, tuple[tuple[str, ...], str]]] = {
    "report_counts": (
        (
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
        f"""SELECT {BUCKET} AS bucket, event, currency, sources, count() AS events,
       sum(ifNull(value, toDecimal64(0, 4))) AS amount, sum(n) AS copies,
       countIf(n > length(sources)) AS same_source, countIf(event_id_assigned) AS missing_id
FROM (SELECT *, copies AS n FROM ({{source}}))
GROUP BY bucket, event, currency, sources""",
    ),
    "report_visitors": (
        ("bucket", "visitor", "steps"),
        f"""SELECT bucket, visitor,
       arrayFilter((s, i) -> i = 1 OR s != ordered[i - 1], ordered, arrayEnumerate(ordered))
           AS steps
FROM (SELECT {BUCKET} AS bucket, visitor, {_ORDERED} AS ordered
      FROM ({{source}}) WHERE visitor != 0 GROUP BY bucket, visitor)""",
    ),
    # A line names a variant (content_id) of a product (item_group_id, or the
    # variant itself). An event counts once per variant and once per product
    # however many lines name it: *_v / *_p count only a line that is the
    # event's first of its variant / product (arrayEnumerateUniq).
    "report_products": (
        (
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
        ),
        f"""SELECT {BUCKET} AS bucket, line.5 AS product, line.1 AS variant, currency,
       countIf(event = 'ViewContent' AND line.6 = 1) AS views_v,
       countIf(event = 'ViewContent' AND line.7 = 1) AS views_p,
       countIf(event = 'AddToCart' AND line.6 = 1) AS carts_v,
       countIf(event = 'AddToCart' AND line.7 = 1) AS carts_p,
       countIf(event = 'Purchase' AND line.6 = 1) AS orders_v,
       countIf(event = 'Purchase' AND line.7 = 1) AS orders_p,
       sumIf(line.3, event = 'Purchase') AS units,
       countIf(event IN ('Purchase', 'Refund')) AS money_lines,
       sum(multiIf(event = 'Purchase', 1, event = 'Refund', -1, 0)
           * ifNull(line.4, toDecimal64(0, 4)) * line.3) AS revenue
FROM (SELECT *, arrayMap((i, g) -> if(g != '', g, i), `contents.content_id`,
                         `contents.item_group_id`) AS products
      FROM ({{source}}) WHERE event IN ('ViewContent', 'AddToCart', 'Purchase', 'Refund'))
ARRAY JOIN arrayZip(`contents.content_id`, `contents.item_group_id`, `contents.quantity`,
                    `contents.price`, products, arrayEnumerateUniq(`contents.content_id`),
                    arrayEnumerateUniq(products)) AS line
GROUP BY bucket, product, variant, currency""",
    ),
    "report_touches": (
        ("visitor", "event_time", "channel"),
        """SELECT visitor, event_time, channel FROM ({source})
WHERE visitor != 0 AND channel != 'direct'""",
    ),
}
