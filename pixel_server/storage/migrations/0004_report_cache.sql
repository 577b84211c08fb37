-- The report cache (pixel_server/reports/cache.py and rollups.py): derived
-- data, rebuilt from `events` whenever it is missing or stale, so every table
-- here may be dropped and recreated at will.
--
-- Until this migration the cache was created by the application on first use
-- (report_events_v2, report_lines_v2, report_days_v3, report_day_stats,
-- report_inserts and their views). They are replaced: the new `report_days`
-- starts empty, so every day is rebuilt into the new tables on first use.
DROP TABLE IF EXISTS report_day_stats_mv
;
DROP TABLE IF EXISTS report_inserts_mv
;
DROP TABLE IF EXISTS report_events_v2
;
DROP TABLE IF EXISTS report_lines_v2
;
DROP TABLE IF EXISTS report_days_v3
;
-- Change detection, kept by ClickHouse on every insert into `events` whoever
-- inserts: per pixel and UTC day, copies ever inserted and the latest
-- received_at (a day's fingerprint), and which identity was inserted when
-- (for the "late twin" check; 14 days are enough, older builds are redone).
DROP TABLE IF EXISTS report_day_stats
;
CREATE TABLE report_day_stats
(
    pixel_id      LowCardinality(String),
    day           Date,
    copies        AggregateFunction(count),
    last_received AggregateFunction(max, DateTime64(3, 'UTC'))
)
ENGINE = AggregatingMergeTree
ORDER BY (pixel_id, day)
;
CREATE MATERIALIZED VIEW IF NOT EXISTS report_day_stats_mv TO report_day_stats
AS SELECT pixel_id, toDate(event_time) AS day, countState() AS copies,
          maxState(received_at) AS last_received
FROM events GROUP BY pixel_id, day
;
-- Backfill from the copies already stored. A copy inserted between the view's
-- creation and this statement is counted twice: that only changes a
-- fingerprint (a rebuild), never a report's numbers.
INSERT INTO report_day_stats
SELECT pixel_id, toDate(event_time) AS day, countState(), maxState(received_at)
FROM events GROUP BY pixel_id, day
;
CREATE TABLE IF NOT EXISTS report_inserts
(
    pixel_id    LowCardinality(String),
    day         Date,
    event       LowCardinality(String),
    event_id    String,
    inserted_at DateTime64(3, 'UTC')
)
ENGINE = MergeTree
PARTITION BY toYYYYMM(day)
ORDER BY (pixel_id, day, inserted_at)
TTL toDateTime(inserted_at) + INTERVAL 14 DAY
;
CREATE MATERIALIZED VIEW IF NOT EXISTS report_inserts_mv TO report_inserts
AS SELECT pixel_id, toDate(event_time) AS day, event, event_id, now64(3) AS inserted_at
FROM events
;
-- Which generation of each (pixel, UTC day) is current, and the fingerprint
-- of the copies it was built from; readers take each day's newest row. The
-- day's purchases are attributed separately (`attributed`: the generation of
-- its report_attributed rows), from the touches of the 28 days before:
-- `touches` digests the day's own touches, `basis` those of the 28 days its
-- attribution was computed from.
CREATE TABLE IF NOT EXISTS report_days
(
    pixel_id    String,
    day         Date,
    generation  UInt64,
    fingerprint String,
    touches     UInt64,
    basis       UInt64,
    attributed  UInt64,
    version     UInt64
)
ENGINE = ReplacingMergeTree(version)
ORDER BY (pixel_id, day)
;
-- The merged view's output (storage/queries.py), one row per event. Reports
-- read only purchases and refunds from here (attribution); everything else
-- reads the 15-minute rollups below, which are built from these rows.
-- ORDER BY event first: a report reads one or two event names over a range.
CREATE TABLE IF NOT EXISTS report_merged
(
    pixel_id   LowCardinality(String),
    day        Date,
    generation UInt64,
    event      LowCardinality(String),
    event_id   String,
    event_time DateTime64(3, 'UTC'),
    anonymous_id String,
    channel    LowCardinality(String),
    value      Nullable(Decimal(18, 4)),
    currency   LowCardinality(String),
    order_id   String,
    `contents.content_id`    Array(String),
    `contents.item_group_id` Array(String),
    `contents.quantity`      Array(UInt32),
    `contents.price`         Array(Nullable(Decimal(18, 4))),
    sources    Array(String),
    copies     UInt64,
    event_id_assigned Bool,
    visitor    UInt128
)
ENGINE = MergeTree
PARTITION BY toYYYYMM(day)
ORDER BY (pixel_id, event, event_time)
;
-- Rollups per 15-minute bucket (UTC). Every time zone's midnight falls on a
-- 15-minute boundary, so a merchant's calendar day is a whole number of
-- buckets in any zone. Each generation of a day holds one row per key.
--
-- Events per name, currency and source combination: overview, purchases,
-- operations' dedup statistics.
CREATE TABLE IF NOT EXISTS report_counts
(
    pixel_id    LowCardinality(String),
    day         Date,
    generation  UInt64,
    bucket      DateTime('UTC'),
    event       LowCardinality(String),
    currency    LowCardinality(String),
    sources     Array(LowCardinality(String)),
    events      UInt64,
    amount      Decimal(38, 4),
    copies      UInt64,
    same_source UInt64,
    missing_id  UInt64
)
ENGINE = MergeTree
PARTITION BY toYYYYMM(day)
ORDER BY (pixel_id, bucket, event)
;
-- One row per visitor and bucket, and per visitor and UTC day: distinct
-- visitors (overview) and what the visitor's events did to their funnel
-- level (`transitions`, see rollups.py). The day rows serve the days a range
-- covers whole, the bucket rows its edges and per-day counts in any zone.
CREATE TABLE IF NOT EXISTS report_visitors
(
    pixel_id    LowCardinality(String),
    day         Date,
    generation  UInt64,
    bucket      DateTime('UTC'),
    visitor     UInt128,
    transitions UInt32
)
ENGINE = MergeTree
PARTITION BY toYYYYMM(day)
ORDER BY (pixel_id, bucket)
;
CREATE TABLE IF NOT EXISTS report_visitor_days
(
    pixel_id    LowCardinality(String),
    day         Date,
    generation  UInt64,
    visitor     UInt128,
    transitions UInt32
)
ENGINE = MergeTree
PARTITION BY toYYYYMM(day)
ORDER BY (pixel_id, day)
;
-- Content lines per product, variant and currency (products).
CREATE TABLE IF NOT EXISTS report_products
(
    pixel_id     LowCardinality(String),
    day          Date,
    generation   UInt64,
    bucket       DateTime('UTC'),
    product      String,
    variant      String,
    currency     LowCardinality(String),
    views_v      UInt64,
    views_p      UInt64,
    carts_v      UInt64,
    carts_p      UInt64,
    orders_v     UInt64,
    orders_p     UInt64,
    units        UInt64,
    money_lines  UInt64,
    revenue      Decimal(38, 4)
)
ENGINE = MergeTree
PARTITION BY toYYYYMM(day)
ORDER BY (pixel_id, bucket, product, variant)
;
-- Touches (events with a non-direct channel and a visitor): attribution.
CREATE TABLE IF NOT EXISTS report_touches
(
    pixel_id   LowCardinality(String),
    day        Date,
    generation UInt64,
    visitor    UInt128,
    event_time DateTime64(3, 'UTC'),
    channel    LowCardinality(String)
)
ENGINE = MergeTree
PARTITION BY toYYYYMM(day)
ORDER BY (pixel_id, event_time)
;
-- One row per purchase with its channel under each attribution model and
-- click window (`channels`, in the order of reports/attribution.py), so an
-- attribution report reads purchases, not touches.
CREATE TABLE IF NOT EXISTS report_attributed
(
    pixel_id   LowCardinality(String),
    day        Date,
    generation UInt64,
    event_time DateTime64(3, 'UTC'),
    order_id   String,
    currency   LowCardinality(String),
    value      Nullable(Decimal(18, 4)),
    ids        Array(String),
    groups     Array(String),
    qtys       Array(UInt32),
    prices     Array(Nullable(Decimal(18, 4))),
    channels   Array(LowCardinality(String)),
    -- A refund finds its order's purchase among 90 days of purchases.
    INDEX order_id_idx order_id TYPE bloom_filter GRANULARITY 1
)
ENGINE = MergeTree
PARTITION BY toYYYYMM(day)
ORDER BY (pixel_id, event_time)
;
-- Attributed purchases per 15-minute bucket, currency and channels (orders,
-- revenue), and their lines per product (orders containing it, units, line
-- revenue): what an attribution report reads.
CREATE TABLE IF NOT EXISTS report_attribution
(
    pixel_id   LowCardinality(String),
    day        Date,
    generation UInt64,
    bucket     DateTime('UTC'),
    currency   LowCardinality(String),
    channels   Array(LowCardinality(String)),
    orders     UInt64,
    revenue    Decimal(38, 4)
)
ENGINE = MergeTree
PARTITION BY toYYYYMM(day)
ORDER BY (pixel_id, bucket)
;
CREATE TABLE IF NOT EXISTS report_attribution_lines
(
    pixel_id   LowCardinality(String),
    day        Date,
    generation UInt64,
    bucket     DateTime('UTC'),
    currency   LowCardinality(String),
    channels   Array(LowCardinality(String)),
    product    String,
    orders     UInt64,
    units      UInt64,
    amount     Decimal(38, 4)
)
ENGINE = MergeTree
PARTITION BY toYYYYMM(day)
ORDER BY (pixel_id, bucket)
