-- Instances sharing the outbox may send one route (e.g. slack:critical) to different places.
-- Each row records a short one-way fingerprint of the destination it was queued for (never the
-- URL or key itself); an instance only claims rows whose fingerprint matches its own destination.
-- NULL: queued before this column existed, any instance with the route may send it.

ALTER TABLE opswatch.notification_outbox
    ADD COLUMN IF NOT EXISTS target TEXT NULL;

CREATE INDEX IF NOT EXISTS outbox_target_head_idx
    ON opswatch.notification_outbox (route, target, id) WHERE status = 'pending';
DROP INDEX IF EXISTS opswatch.outbox_route_head_idx;  -- heads are per (route, target) now
