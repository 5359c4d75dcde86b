-- Alert history rows decided while the database was away are replayed from a local spool when it
-- returns, possibly by two instances or twice: a deterministic key makes the replay idempotent.
ALTER TABLE opswatch.alert_history ADD COLUMN IF NOT EXISTS dedup_key TEXT NULL;
CREATE UNIQUE INDEX IF NOT EXISTS alert_history_dedup_key_idx ON opswatch.alert_history (dedup_key);
