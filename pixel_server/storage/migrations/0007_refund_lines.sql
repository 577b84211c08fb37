-- Refund lines (issue 20): per content row of a Refund, the money returned
-- for the line as the store assigned it (`refunded`) and its share of money
-- returned without lines (`refunded_share`, spread over the order's lines in
-- proportion to their value). Members of the `contents` Nested: parts written
-- before read arrays of zeros of the right length, no rewrite.
ALTER TABLE events ADD COLUMN IF NOT EXISTS `contents.refunded` Array(Decimal(18, 4))
;
ALTER TABLE events ADD COLUMN IF NOT EXISTS `contents.refunded_share` Array(Decimal(18, 4))
;
-- The report cache is derived data (migration 0004): its merged rows gain the
-- two columns, and `report_days` is emptied so every day is rebuilt, with
-- refund lines, on first use. The rollup of products gains refunded amounts
-- and units; its rows are rebuilt with the days.
ALTER TABLE report_merged ADD COLUMN IF NOT EXISTS `contents.refunded` Array(Decimal(18, 4))
;
ALTER TABLE report_merged ADD COLUMN IF NOT EXISTS `contents.refunded_share` Array(Decimal(18, 4))
;
TRUNCATE TABLE IF EXISTS report_days
;
ALTER TABLE report_products ADD COLUMN IF NOT EXISTS refunded_units UInt64 DEFAULT 0
;
ALTER TABLE report_products ADD COLUMN IF NOT EXISTS refunded Decimal(38, 4) DEFAULT 0
;
ALTER TABLE report_products ADD COLUMN IF NOT EXISTS refunded_share Decimal(38, 4) DEFAULT 0
