-- deliveries: let the forwarder's ledger retry a batch insert whose outcome is
-- unknown (a timeout after ClickHouse took it) without duplicating rows. The
-- ledger sends one insert_deduplication_token per batch and reuses it on the
-- retry; a plain MergeTree honours the token only with this window set.
-- (On a cluster, Replicated* engines deduplicate by default.)
-- Idempotent: setting the same value again is a no-op.
ALTER TABLE deliveries MODIFY SETTING non_replicated_deduplication_window = 10000
