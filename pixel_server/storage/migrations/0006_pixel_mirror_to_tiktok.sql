-- Whether the snippet also feeds the store's own TikTok pixel (the one
-- TikTok's sales channel or the merchant installed) with the events our
-- platform adapters see, under the same event_ids. Off by default: TikTok's
-- channel fires its own. A new column with a default: existing rows read
-- false, no rewrite.
ALTER TABLE pixels ADD COLUMN IF NOT EXISTS mirror_to_tiktok_pixel Bool DEFAULT false
