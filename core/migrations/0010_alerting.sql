-- Alerting engine state beyond 0001: notification bookkeeping per alert, flapping history,
-- the evaluation leader lease (+ state version), and outbox delivery details.

ALTER TABLE opswatch.alert_state
    ADD COLUMN IF NOT EXISTS started_at        TIMESTAMPTZ NULL,      -- when the current breach began
    ADD COLUMN IF NOT EXISTS announced         BOOLEAN     NOT NULL DEFAULT false, -- people were told it fires
    ADD COLUMN IF NOT EXISTS notified_severity TEXT        NULL,      -- severity (route) of that announcement
    ADD COLUMN IF NOT EXISTS eligible_since    TIMESTAMPTZ NULL,      -- waiting for group_wait to announce
    ADD COLUMN IF NOT EXISTS transitions       TIMESTAMPTZ[] NOT NULL DEFAULT '{}', -- recent firing/resolved flips
    ADD COLUMN IF NOT EXISTS flapping_since    TIMESTAMPTZ NULL,
    ADD COLUMN IF NOT EXISTS good_samples      INTEGER     NOT NULL DEFAULT 0,
    ADD COLUMN IF NOT EXISTS repeat_count      INTEGER     NOT NULL DEFAULT 0,
    ADD COLUMN IF NOT EXISTS silenced          BOOLEAN     NOT NULL DEFAULT false,
    ADD COLUMN IF NOT EXISTS suppressed_by     TEXT        NULL,
    ADD COLUMN IF NOT EXISTS instance          TEXT        NULL;

-- One row per engine name: who evaluates (lease) and a version bumped on every state change,
-- so other instances know when to reload. Writers lock this row first.
CREATE TABLE IF NOT EXISTS opswatch.alert_leader (
    name        TEXT        PRIMARY KEY,
    holder      TEXT        NULL,
    lease_until TIMESTAMPTZ NULL,
    acquired_at TIMESTAMPTZ NULL,
    version     BIGINT      NOT NULL DEFAULT 0
);

ALTER TABLE opswatch.notification_outbox
    ADD COLUMN IF NOT EXISTS summary         TEXT        NULL,          -- one line for lists
    ADD COLUMN IF NOT EXISTS alerts          TEXT[]      NOT NULL DEFAULT '{}', -- rule/scope covered
    ADD COLUMN IF NOT EXISTS last_status     INTEGER     NULL,
    ADD COLUMN IF NOT EXISTS last_attempt_at TIMESTAMPTZ NULL;

CREATE INDEX IF NOT EXISTS outbox_route_head_idx
    ON opswatch.notification_outbox (route, id) WHERE status = 'pending';
CREATE INDEX IF NOT EXISTS outbox_status_idx ON opswatch.notification_outbox (status, created_at DESC);
