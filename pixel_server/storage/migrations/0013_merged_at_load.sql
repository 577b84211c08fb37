-- Reports from rows ClickHouse keeps current on every insert, instead of the
-- per-day report cache (migration 0004) and its warmer.
--
-- merged_events: one row per logical event, its copies merged by the merge
-- rules (docs/architecture.md §2), written by the loader after each insert of
-- copies (pixel_server/storage/merged.py). When a later copy changes an
-- event's merged state, the loader writes a cancel row (sign -1, the old
-- state and version) and the new state (sign +1, a new version), in one
-- insert. VersionedCollapsingMergeTree drops such pairs in its merges; until
-- then a reader sums `sign` (or uses FINAL), so every read is exact whatever
-- merges have run. Sorted like `events`: a report reads one pixel, one or a
-- few event names, a time range.
--
-- The rollups below are materialized views of merged_events, so a cancel row
-- takes its event out of every rollup at the same insert: all their measures
-- are sums weighted by `sign`.
DROP TABLE IF EXISTS report_day_stats_mv
;
DROP TABLE IF EXISTS report_inserts_mv
;
DROP TABLE IF EXISTS report_day_stats
;
DROP TABLE IF EXISTS report_inserts
;
DROP TABLE IF EXISTS report_days
;
DROP TABLE IF EXISTS report_merged
;
DROP TABLE IF EXISTS report_counts
;
DROP TABLE IF EXISTS report_visitors
;
DROP TABLE IF EXISTS report_visitor_days
;
DROP TABLE IF EXISTS report_products
;
DROP TABLE IF EXISTS report_touches
;
DROP TABLE IF EXISTS report_attributed
;
DROP TABLE IF EXISTS report_attribution
;
DROP TABLE IF EXISTS report_attribution_lines
;
CREATE TABLE IF NOT EXISTS merged_events
(
    pixel_id         LowCardinality(String),
    event            LowCardinality(String),
    event_id         String,
    event_time       DateTime64(3, 'UTC'),
    anonymous_id     String,
    visitor          UInt128,                  -- sipHash128 of anonymous_id, 0 without one
    channel          LowCardinality(String),
    value            Nullable(Decimal(18, 4)),
    currency         LowCardinality(String),
    order_id         String,
    contents Nested
    (
        content_id     String,
        item_group_id  String,
        quantity       UInt32,
        price          Nullable(Decimal(18, 4)),
        refunded       Decimal(18, 4),
        refunded_share Decimal(18, 4)
    ),
    sources          Array(LowCardinality(String)),
    copies           UInt32,
    event_id_assigned Bool,
    retention_months UInt16 DEFAULT 25,
    sign             Int8,
    version          UInt64
)
ENGINE = VersionedCollapsingMergeTree(sign, version)
PARTITION BY toYYYYMM(event_time)
ORDER BY (pixel_id, event, event_time, event_id)
-- Raw data, kept as long as the copies it is made of; the rollups stay.
TTL toDateTime(event_time) + toIntervalMonth(retention_months)
;
-- Events per 15-minute bucket (UTC), name, currency and combination of
-- sources: the overview, purchases and operations reports.
CREATE TABLE IF NOT EXISTS rollup_counts
(
    pixel_id    LowCardinality(String),
    bucket      DateTime('UTC'),
    event       LowCardinality(String),
    currency    LowCardinality(String),
    sources     Array(LowCardinality(String)),
    events      Int64,
    amount      Decimal(38, 4),
    copies      Int64,
    same_source Int64,
    missing_id  Int64
)
ENGINE = SummingMergeTree
ORDER BY (pixel_id, bucket, event, currency, sources)
;
CREATE MATERIALIZED VIEW IF NOT EXISTS rollup_counts_mv TO rollup_counts
AS SELECT pixel_id, toStartOfFifteenMinutes(event_time) AS bucket, event, currency, sources,
       sum(sign) AS events,
       sum(ifNull(value, toDecimal64(0, 4)) * sign) AS amount,
       sum(n * sign) AS copies,
       sum((n > length(sources)) * sign) AS same_source,
       sum(event_id_assigned * sign) AS missing_id
FROM (SELECT *, copies AS n FROM merged_events)
GROUP BY pixel_id, bucket, event, currency, sources
;
-- Per visitor and UTC day: the 15-minute buckets they were seen in, and
-- their funnel steps as (event time in ms × 8 + step number) — each a
-- sumMap of signs, so a key counts when its sum is positive. Distinct
-- visitors and the funnel stay exact (no sketch), and a range that cuts a
-- UTC day (another zone's midnight) filters the keys.
CREATE TABLE IF NOT EXISTS rollup_visitors
(
    pixel_id LowCardinality(String),
    day      Date,
    visitor  UInt128,
    buckets  SimpleAggregateFunction(sumMap, Tuple(Array(UInt32), Array(Int64))),
    steps    SimpleAggregateFunction(sumMap, Tuple(Array(UInt64), Array(Int64)))
)
ENGINE = AggregatingMergeTree
ORDER BY (pixel_id, day, visitor)
;
CREATE MATERIALIZED VIEW IF NOT EXISTS rollup_visitors_mv TO rollup_visitors
AS SELECT pixel_id, toDate(event_time) AS day, visitor,
       sumMap(([toUInt32(toStartOfFifteenMinutes(event_time))], [toInt64(sign)])) AS buckets,
       sumMap((if(step = 0, [], [toUInt64(toUnixTimestamp64Milli(event_time)) * 8 + step]),
               if(step = 0, [], [toInt64(sign)]))) AS steps
FROM
(
    SELECT *, indexOf(['ViewContent', 'AddToCart', 'InitiateCheckout', 'AddPaymentInfo',
                       'Purchase'], event) AS step
    FROM merged_events WHERE visitor != 0
)
GROUP BY pixel_id, day, visitor
;
-- Content lines per product, variant and currency (the products report; see
-- pixel_server/reports/rollups.py for each measure's definition).
CREATE TABLE IF NOT EXISTS rollup_products
(
    pixel_id       LowCardinality(String),
    bucket         DateTime('UTC'),
    product        String,
    variant        String,
    currency       LowCardinality(String),
    views_v        Int64,
    views_p        Int64,
    carts_v        Int64,
    carts_p        Int64,
    orders_v       Int64,
    orders_p       Int64,
    units          Int64,
    money_lines    Int64,
    revenue        Decimal(38, 4),
    refunded_units Int64,
    refunded       Decimal(38, 4),
    refunded_share Decimal(38, 4)
)
ENGINE = SummingMergeTree
ORDER BY (pixel_id, bucket, product, variant, currency)
;
CREATE MATERIALIZED VIEW IF NOT EXISTS rollup_products_mv TO rollup_products
AS SELECT pixel_id, toStartOfFifteenMinutes(event_time) AS bucket, line.5 AS product,
       line.1 AS variant, currency,
       sumIf(sign, event = 'ViewContent' AND line.6 = 1) AS views_v,
       sumIf(sign, event = 'ViewContent' AND line.7 = 1) AS views_p,
       sumIf(sign, event = 'AddToCart' AND line.6 = 1) AS carts_v,
       sumIf(sign, event = 'AddToCart' AND line.7 = 1) AS carts_p,
       sumIf(sign, event = 'Purchase' AND line.6 = 1) AS orders_v,
       sumIf(sign, event = 'Purchase' AND line.7 = 1) AS orders_p,
       sumIf(line.3 * sign, event = 'Purchase') AS units,
       sumIf(sign, event IN ('Purchase', 'Refund')) AS money_lines,
       sumIf(line.3 * ifNull(line.4, toDecimal64(0, 4)) * sign, event = 'Purchase')
           - refunded - refunded_share AS revenue,
       sumIf(line.3 * sign, event = 'Refund') AS refunded_units,
       sumIf(if(line.8 = 0 AND line.9 = 0, line.3 * ifNull(line.4, toDecimal64(0, 4)), line.8)
             * sign, event = 'Refund') AS refunded,
       sumIf(line.9 * sign, event = 'Refund') AS refunded_share
FROM
(
    SELECT *, arrayMap((i, g) -> if(g != '', g, i), `contents.content_id`,
                       `contents.item_group_id`) AS products
    FROM merged_events WHERE event IN ('ViewContent', 'AddToCart', 'Purchase', 'Refund')
)
ARRAY JOIN arrayZip(`contents.content_id`, `contents.item_group_id`, `contents.quantity`,
                    `contents.price`, products, arrayEnumerateUniq(`contents.content_id`),
                    arrayEnumerateUniq(products), `contents.refunded`,
                    `contents.refunded_share`) AS line
GROUP BY pixel_id, bucket, product, variant, currency
;
-- Touches (events with a visitor and a channel other than direct), by
-- visitor: attribution looks up the touches of the range's buyers.
CREATE TABLE IF NOT EXISTS rollup_touches
(
    pixel_id   LowCardinality(String),
    visitor    UInt128,
    event_time DateTime64(3, 'UTC'),
    channel    LowCardinality(String),
    n          Int64
)
ENGINE = SummingMergeTree
ORDER BY (pixel_id, visitor, event_time, channel)
;
CREATE MATERIALIZED VIEW IF NOT EXISTS rollup_touches_mv TO rollup_touches
AS SELECT pixel_id, visitor, event_time, channel, toInt64(sign) AS n
FROM merged_events WHERE visitor != 0 AND channel != 'direct'
;
-- Purchases with their channel under every model and window (the
-- `channels` array, in the order of pixel_server/storage/attributed.py),
-- attributed again by the loader whenever a batch may change them (a late
-- touch, a merged purchase's new state): a cancel row plus the new state,
-- as in merged_events.
CREATE TABLE IF NOT EXISTS attributed_purchases
(
    pixel_id   LowCardinality(String),
    event_id   String,
    event_time DateTime64(3, 'UTC'),
    visitor    UInt128,
    order_id   String,
    currency   LowCardinality(String),
    value      Nullable(Decimal(18, 4)),
    ids        Array(String),
    groups     Array(String),
    qtys       Array(UInt32),
    prices     Array(Nullable(Decimal(18, 4))),
    channels   Array(LowCardinality(String)),
    sign       Int8,
    version    UInt64
)
ENGINE = VersionedCollapsingMergeTree(sign, version)
PARTITION BY toYYYYMM(event_time)
ORDER BY (pixel_id, event_time, event_id)
;
-- Orders and revenue per bucket, currency and channels.
CREATE TABLE IF NOT EXISTS rollup_attribution
(
    pixel_id LowCardinality(String),
    bucket   DateTime('UTC'),
    currency LowCardinality(String),
    channels Array(LowCardinality(String)),
    orders   Int64,
    revenue  Decimal(38, 4)
)
ENGINE = SummingMergeTree
ORDER BY (pixel_id, bucket, currency, channels)
;
CREATE MATERIALIZED VIEW IF NOT EXISTS rollup_attribution_mv TO rollup_attribution
AS SELECT pixel_id, toStartOfFifteenMinutes(event_time) AS bucket, currency, channels,
       sum(sign) AS orders, sum(ifNull(value, toDecimal64(0, 4)) * sign) AS revenue
FROM attributed_purchases
GROUP BY pixel_id, bucket, currency, channels
;
-- Per product too (item_group_id, else content_id): orders containing it
-- (once however many of their lines name it), units, price × quantity.
CREATE TABLE IF NOT EXISTS rollup_attribution_lines
(
    pixel_id LowCardinality(String),
    bucket   DateTime('UTC'),
    currency LowCardinality(String),
    channels Array(LowCardinality(String)),
    product  String,
    orders   Int64,
    units    Int64,
    amount   Decimal(38, 4)
)
ENGINE = SummingMergeTree
ORDER BY (pixel_id, bucket, currency, channels, product)
;
CREATE MATERIALIZED VIEW IF NOT EXISTS rollup_attribution_lines_mv TO rollup_attribution_lines
AS SELECT pixel_id, toStartOfFifteenMinutes(event_time) AS bucket, currency, channels,
       line.1 AS product, sum((line.2 = 1) * sign) AS orders, sum(line.3 * sign) AS units,
       sum(ifNull(line.4, toDecimal64(0, 4)) * line.3 * sign) AS amount
FROM
(
    SELECT *, arrayMap((i, g) -> if(g != '', g, i), ids, groups) AS products
    FROM attributed_purchases WHERE notEmpty(ids)
)
ARRAY JOIN arrayZip(products, arrayEnumerateUniq(products), qtys, prices) AS line
GROUP BY pixel_id, bucket, currency, channels, product
