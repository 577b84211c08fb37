-- The store a pixel belongs to, as its platform names it: Ecwid store id,
-- BigCommerce store hash, Shopify shop domain, WooCommerce site URL. The
-- catalog sync and the one-step store connection address the store's admin
-- API with it. A new column with a default: existing rows read '', no rewrite.
ALTER TABLE pixels ADD COLUMN IF NOT EXISTS store_id String DEFAULT ''
