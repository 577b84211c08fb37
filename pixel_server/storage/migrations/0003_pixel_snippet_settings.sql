-- Snippet settings per pixel: whether the snippet waits for the store's
-- consent banner (ttq.grantConsent) before sending anything, the store's
-- currency (Ecwid's storefront events carry none), and how long a ttclid is
-- kept first-party after an ad click. New columns with defaults: existing
-- rows read the defaults, no rewrite.
ALTER TABLE pixels ADD COLUMN IF NOT EXISTS consent_mode LowCardinality(String) DEFAULT 'granted'
;
ALTER TABLE pixels ADD COLUMN IF NOT EXISTS currency LowCardinality(String) DEFAULT ''
;
ALTER TABLE pixels ADD COLUMN IF NOT EXISTS click_window_days UInt16 DEFAULT 7
