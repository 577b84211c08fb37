-- erasure_log: one row per `pixel-server erase` (or owner API erasure): who,
-- when, which kind of identifier, what was removed (JSON counts per place),
-- and only the first hex digits of the identifier's SHA-256, never the
-- identifier itself. Append-only facts: plain MergeTree.
CREATE TABLE IF NOT EXISTS erasure_log
(
    pixel_id        LowCardinality(String),
    at              DateTime64(3, 'UTC'),
    actor           String,
    kind            LowCardinality(String),
    subject_prefix  String,
    removed         String
)
ENGINE = MergeTree
ORDER BY (pixel_id, at)
