-- The product catalog: one row per variant (TikTok's sku_id) and version.
-- ReplacingMergeTree(version): the latest version of an item wins (read with
-- FINAL); a deleted item is a row with deleted = true (a tombstone), so the
-- history says when it went and a late, older write cannot bring it back.
-- problems: the TikTok rules the item breaks (empty: valid).
-- ORDER BY (pixel_id, sku_id): the feed streams one pixel's items in order.
CREATE TABLE IF NOT EXISTS catalog_items
(
    pixel_id               LowCardinality(String),
    sku_id                 String,
    version                UInt64,
    deleted                Bool DEFAULT false,
    item_group_id          String,
    title                  String,
    description            String,
    brand                  String,
    link                   String,
    image_link             String,
    additional_image_links Array(String),
    price                  Nullable(Decimal(18, 2)),
    sale_price             Nullable(Decimal(18, 2)),
    currency               LowCardinality(String),
    availability           LowCardinality(String),
    condition              LowCardinality(String),
    product_type           String,
    google_product_category String,
    color                  String,
    size                   String,
    material               String,
    pattern                String,
    gender                 LowCardinality(String),
    options                String,
    gtin                   String,
    mpn                    String,
    problems               Array(LowCardinality(String)),
    content_hash           String,
    sync_id                String,
    updated_at             DateTime64(3, 'UTC')
)
ENGINE = ReplacingMergeTree(version)
ORDER BY (pixel_id, sku_id)
;
-- Items a full pull has read but not yet committed: a pull that cannot finish
-- leaves the catalog as it was. Committed rows are copied into catalog_items;
-- the rest expire. Same columns as catalog_items.
CREATE TABLE IF NOT EXISTS catalog_staging AS catalog_items
ENGINE = MergeTree
ORDER BY (sync_id, sku_id)
TTL toDateTime(updated_at) + INTERVAL 2 DAY
;
-- One row per sync run and state change (running, then ok or failed).
CREATE TABLE IF NOT EXISTS catalog_syncs
(
    pixel_id     LowCardinality(String),
    sync_id      String,
    version      UInt64,
    kind         LowCardinality(String),   -- full, product (a webhook), push
    status       LowCardinality(String),   -- running, ok, failed
    started_at   DateTime64(3, 'UTC'),
    finished_at  Nullable(DateTime64(3, 'UTC')),
    products     UInt32,
    variants     UInt32,
    changed      UInt32,
    deleted      UInt32,
    invalid      UInt32,
    error        String
)
ENGINE = ReplacingMergeTree(version)
ORDER BY (pixel_id, started_at, sync_id)
;
-- TikTok's answers to Catalog API uploads, one row per item and attempt.
CREATE TABLE IF NOT EXISTS catalog_pushes
(
    pixel_id     LowCardinality(String),
    sku_id       String,
    content_hash String,
    action       LowCardinality(String),   -- upload, delete
    outcome      LowCardinality(String),   -- sent, retrying, rejected, dead
    attempt      UInt16,
    http_status  UInt16,
    tiktok_code  Int32,
    tiktok_message String,
    request_id   String,
    attempted_at DateTime64(3, 'UTC')
)
ENGINE = MergeTree
ORDER BY (pixel_id, attempted_at, sku_id)
;
-- Catalog settings per pixel: the feed token's hash (the token is shown once),
-- TikTok catalog and Business Center ids for the Catalog API push, and how
-- often a full pull repairs what webhooks missed (hours; 0: never).
ALTER TABLE pixels ADD COLUMN IF NOT EXISTS feed_token_hash String DEFAULT ''
;
ALTER TABLE pixels ADD COLUMN IF NOT EXISTS tiktok_catalog_id String DEFAULT ''
;
ALTER TABLE pixels ADD COLUMN IF NOT EXISTS tiktok_bc_id String DEFAULT ''
;
ALTER TABLE pixels ADD COLUMN IF NOT EXISTS catalog_sync_hours UInt16 DEFAULT 24
