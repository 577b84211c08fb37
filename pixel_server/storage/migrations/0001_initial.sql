-- Initial schema: events (one row per received copy), deliveries (one row per
-- forwarding attempt), pixels and report tokens (registry).
--
-- Statements are separated by a line holding only ";". Every statement is
-- idempotent (IF NOT EXISTS) so a migration interrupted half-way can be re-run.

-- events: one row per *copy* of an event (docs/architecture.md §2). Identity is
-- (pixel_id, event, event_id); source says which copy (browser/server/webhook).
--
-- Engine: ReplacingMergeTree(received_at). Rows with the same sorting key
-- collapse during background merges, keeping the latest receipt. The sorting
-- key ends with (event_id, source), so identical re-deliveries of one copy
-- (a replayed log batch, a client retry) collapse, while copies from different
-- sources stay separate rows and are merged at query time (see queries.py),
-- which keeps reports exact whatever merges have or have not run yet.
--
-- PARTITION BY month of event_time: reports filter on a date range, so old
-- months are pruned whole; monthly partitions keep the part count low at the
-- volumes one pixel server sees (daily would multiply small parts).
--
-- ORDER BY (pixel_id, event, event_time, event_id, source): every report reads
-- one pixel, usually one or a few event names, over a time range, so this
-- prefix makes that a contiguous range scan of the primary index.
CREATE TABLE IF NOT EXISTS events
(
    pixel_id         LowCardinality(String),
    event            LowCardinality(String),   -- canonical name (Purchase, Lead, ViewCategory, custom)
    received_event   LowCardinality(String),   -- name as the client sent it (CompletePayment, ...)
    event_id         String,
    event_id_assigned Bool DEFAULT false,      -- true when the client sent none and we made one
    source           Enum8('browser' = 1, 'server' = 2, 'webhook' = 3),
    event_time       DateTime64(3, 'UTC'),
    received_at      DateTime64(3, 'UTC'),

    -- identity (browser-side mostly; empty when consent was denied)
    anonymous_id     String,
    ip               String,
    user_agent       String,
    ttclid           String,
    ttp              String,
    locale           LowCardinality(String),
    email_sha256     Array(String),            -- normalised + SHA-256; raw values never stored
    phone_sha256     Array(String),
    external_id_sha256 Array(String),

    -- page and channel
    page_url         String,
    page_referrer    String,
    referrer_host    LowCardinality(String),
    channel          LowCardinality(String),   -- tiktok_paid, tiktok_organic, other_paid, referral, direct
    utm_source       String,
    utm_medium       String,
    utm_campaign     String,
    utm_content      String,
    utm_term         String,

    -- properties
    value            Nullable(Decimal(18, 4)),
    currency         LowCardinality(String),
    order_id         String,
    search_query     String,
    content_type     LowCardinality(String),
    description      String,
    contents Nested
    (
        content_id    String,
        item_group_id String,
        name          String,
        category      String,
        brand         String,
        quantity      UInt32,
        price         Nullable(Decimal(18, 4))
    ),
    properties       String,                   -- unknown property keys, as JSON

    consent          Enum8('unknown' = 0, 'granted' = 1, 'denied' = 2),
    limited_data_use Bool DEFAULT false,
    test_event_code  String DEFAULT ''
)
ENGINE = ReplacingMergeTree(received_at)
PARTITION BY toYYYYMM(event_time)
ORDER BY (pixel_id, event, event_time, event_id, source)
-- Lets the loader's insert_deduplication_token drop a re-sent batch.
SETTINGS non_replicated_deduplication_window = 10000
;
-- deliveries: an append-only ledger, one row per attempt to send events to
-- TikTok. Plain MergeTree: attempts are facts, never replaced.
-- ORDER BY (pixel_id, attempted_at): the dashboard and the CLI read one pixel's
-- recent attempts; monthly partitions make retention a partition drop.
CREATE TABLE IF NOT EXISTS deliveries
(
    pixel_id         LowCardinality(String),
    event            LowCardinality(String),
    event_id         String,
    source           Enum8('browser' = 1, 'server' = 2, 'webhook' = 3),
    event_time       DateTime64(3, 'UTC'),
    attempt          UInt16,
    attempted_at     DateTime64(3, 'UTC'),
    latency_ms       UInt32,
    http_status      UInt16,                   -- 0 when no HTTP answer (timeout, refused)
    tiktok_code      Int32,
    tiktok_message   String,
    request_id       String,
    batch_id         String,
    outcome          Enum8('sent' = 1, 'retrying' = 2, 'dead' = 3)
)
ENGINE = MergeTree
PARTITION BY toYYYYMM(attempted_at)
ORDER BY (pixel_id, attempted_at, event_id)
;
-- pixels: the registry. Small and rarely written; every change inserts a new
-- row with a higher version and readers use FINAL, so an update is one insert
-- (no mutations) and the newest version wins.
CREATE TABLE IF NOT EXISTS pixels
(
    id                   String,
    version              UInt64,
    name                 String,
    platform             LowCardinality(String),
    origins              Array(String),
    enabled              Bool,
    timezone             String,
    default_phone_region LowCardinality(String),
    ip_truncation        Bool,
    forward_browser      Bool,                 -- server-only mode: forward browser copies too
    load_tiktok_pixel    Bool,                 -- browser + server mode in the snippet
    api_key_hash         String,               -- SHA-256 of the issued key; the key is never stored
    tiktok_pixel_code    String,
    tiktok_access_token  String,
    tiktok_test_event_code String,
    tiktok_api_base      String,
    webhook_secret       String,
    store_api_base       String,
    store_api_token      String,
    created_at           DateTime64(3, 'UTC'),
    updated_at           DateTime64(3, 'UTC')
)
ENGINE = ReplacingMergeTree(version)
ORDER BY id
;
-- report_tokens: owner / reader tokens per pixel, stored as SHA-256 hashes.
CREATE TABLE IF NOT EXISTS report_tokens
(
    token_hash   String,
    version      UInt64,
    pixel_id     String,
    role         Enum8('owner' = 1, 'reader' = 2),
    label        String,
    created_at   DateTime64(3, 'UTC'),
    revoked      Bool
)
ENGINE = ReplacingMergeTree(version)
ORDER BY token_hash
