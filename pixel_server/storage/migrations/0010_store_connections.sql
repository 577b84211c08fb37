-- What `pixel-server connect` created in a store through the platform's API
-- (a script, a web pixel, webhooks), so that connecting again creates nothing
-- new and `disconnect` removes exactly these. One row per purpose (kind + key,
-- e.g. webhook + store/order/created); every change inserts a new version and
-- a removal is a row with removed = 1 (ReplacingMergeTree + FINAL).
CREATE TABLE IF NOT EXISTS store_connections
(
    pixel_id   String,
    kind       LowCardinality(String),   -- script | web_pixel | webhook
    key        String,                   -- what it is for: "storefront", a webhook topic
    platform   LowCardinality(String),
    remote_id  String,                   -- the id the platform gave it
    detail     String,                   -- JSON: destination, topic, ... as created
    created_at DateTime64(3, 'UTC'),
    removed    UInt8 DEFAULT 0,
    version    UInt64
)
ENGINE = ReplacingMergeTree(version)
ORDER BY (pixel_id, kind, key)
