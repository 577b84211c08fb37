-- Retention per pixel: raw events are deleted `raw_retention_months` after
-- their event time (default 25 months). A TTL cannot read the pixels table,
-- so each row carries its pixel's setting, written by the loader; a change
-- of the setting rewrites the pixel's rows (`pixel update`). Rows stored
-- before this migration read the default.
ALTER TABLE pixels ADD COLUMN IF NOT EXISTS raw_retention_months UInt16 DEFAULT 25
;
ALTER TABLE events ADD COLUMN IF NOT EXISTS retention_months UInt16 DEFAULT 25
;
ALTER TABLE events MODIFY TTL toDateTime(event_time) + toIntervalMonth(retention_months)
