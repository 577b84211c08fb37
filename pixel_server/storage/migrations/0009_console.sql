-- The merchant console: tokens that span several pixels or expire, and the
-- audit log of settings and team changes.
--
-- report_tokens.pixel_ids: every pixel an agency token may read (pixel_id
-- stays the first of them, so older rows, which read [], mean [pixel_id]).
-- report_tokens.expires_at: 0 means never. New columns with defaults: existing
-- rows read the defaults, no rewrite.
ALTER TABLE report_tokens ADD COLUMN IF NOT EXISTS pixel_ids Array(String) DEFAULT []
;
ALTER TABLE report_tokens ADD COLUMN IF NOT EXISTS expires_at DateTime64(3, 'UTC') DEFAULT 0
;
-- audit_log: one row per change made through the console or the command line:
-- who (the token's label and id, or "command line"), when, which pixel, what
-- (action and a JSON object of the changed settings; secrets appear only as
-- "set" / "cleared", never their values). Append-only facts: plain MergeTree.
CREATE TABLE IF NOT EXISTS audit_log
(
    pixel_id   LowCardinality(String),
    at         DateTime64(3, 'UTC'),
    actor      String,
    action     LowCardinality(String),
    changes    String
)
ENGINE = MergeTree
ORDER BY (pixel_id, at)
