-- opswatch's own state. Never touches the monitored application's tables.
CREATE SCHEMA IF NOT EXISTS opswatch;

CREATE TABLE IF NOT EXISTS opswatch.audit_log (
    id          BIGSERIAL PRIMARY KEY,
    at          TIMESTAMPTZ NOT NULL DEFAULT now(),
    actor       TEXT        NOT NULL,
    action      TEXT        NOT NULL,           -- e.g. dlq.retry, events.resolve, alert.ack, silence.create
    target_kind TEXT        NOT NULL,           -- dlq | event | alert | silence | notification
    target_ids  BIGINT[]    NOT NULL DEFAULT '{}',
    target_key  TEXT        NULL,               -- non-numeric targets (alert rule/scope, silence matcher)
    filter      JSONB       NULL,
    reason      TEXT        NULL,
    outcome     TEXT        NOT NULL,           -- applied | skipped | failed | partial | refused
    detail      JSONB       NULL                -- per-id results, from-state, errors
);
CREATE INDEX IF NOT EXISTS audit_log_at_idx ON opswatch.audit_log (at DESC);
CREATE INDEX IF NOT EXISTS audit_log_targets_idx ON opswatch.audit_log USING GIN (target_ids);

CREATE TABLE IF NOT EXISTS opswatch.alert_state (
    rule             TEXT        NOT NULL,
    scope            TEXT        NOT NULL DEFAULT '',
    state            TEXT        NOT NULL,      -- ok | pending | firing | resolved
    severity         TEXT        NULL,          -- warning | critical
    value            DOUBLE PRECISION NULL,
    threshold        DOUBLE PRECISION NULL,
    since            TIMESTAMPTZ NOT NULL DEFAULT now(),
    fired_at         TIMESTAMPTZ NULL,
    resolved_at      TIMESTAMPTZ NULL,
    last_notified_at TIMESTAMPTZ NULL,
    flapping         BOOLEAN     NOT NULL DEFAULT false,
    acknowledged_by  TEXT        NULL,
    acknowledged_at  TIMESTAMPTZ NULL,
    updated_at       TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (rule, scope)
);

CREATE TABLE IF NOT EXISTS opswatch.alert_history (
    id         BIGSERIAL PRIMARY KEY,
    at         TIMESTAMPTZ NOT NULL DEFAULT now(),
    rule       TEXT        NOT NULL,
    scope      TEXT        NOT NULL DEFAULT '',
    from_state TEXT        NOT NULL,
    to_state   TEXT        NOT NULL,
    severity   TEXT        NULL,
    value      DOUBLE PRECISION NULL,
    instance   TEXT        NULL
);
CREATE INDEX IF NOT EXISTS alert_history_at_idx ON opswatch.alert_history (at DESC);
CREATE INDEX IF NOT EXISTS alert_history_rule_idx ON opswatch.alert_history (rule, scope, at DESC);

CREATE TABLE IF NOT EXISTS opswatch.silences (
    id           BIGSERIAL PRIMARY KEY,
    rule         TEXT        NULL,              -- NULL matches any rule
    scope        TEXT        NULL,              -- NULL matches any scope (endpoint)
    starts_at    TIMESTAMPTZ NOT NULL DEFAULT now(),
    ends_at      TIMESTAMPTZ NOT NULL,
    reason       TEXT        NOT NULL,
    created_by   TEXT        NOT NULL,
    created_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
    cancelled_at TIMESTAMPTZ NULL,
    cancelled_by TEXT        NULL,
    CHECK (ends_at > starts_at)
);
CREATE INDEX IF NOT EXISTS silences_active_idx ON opswatch.silences (ends_at) WHERE cancelled_at IS NULL;

CREATE TABLE IF NOT EXISTS opswatch.notification_outbox (
    id              BIGSERIAL PRIMARY KEY,
    dedup_key       TEXT        NOT NULL UNIQUE, -- decides "exactly once" across instances
    channel         TEXT        NOT NULL,        -- slack | pagerduty | email | webhook
    route           TEXT        NOT NULL,        -- which configured target (e.g. slack:critical); never the URL
    severity        TEXT        NOT NULL,
    kind            TEXT        NOT NULL,        -- firing | resolved | repeat | test | grouped
    payload         JSONB       NOT NULL,
    status          TEXT        NOT NULL DEFAULT 'pending', -- pending | delivered | dead
    attempts        INTEGER     NOT NULL DEFAULT 0,
    next_attempt_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    locked_by       TEXT        NULL,
    locked_until    TIMESTAMPTZ NULL,
    last_error      TEXT        NULL,
    created_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    delivered_at    TIMESTAMPTZ NULL,
    CHECK (status IN ('pending', 'delivered', 'dead'))
);
CREATE INDEX IF NOT EXISTS outbox_due_idx ON opswatch.notification_outbox (next_attempt_at) WHERE status = 'pending';
CREATE INDEX IF NOT EXISTS outbox_created_idx ON opswatch.notification_outbox (created_at DESC);

CREATE TABLE IF NOT EXISTS opswatch.probe_samples (
    endpoint    TEXT        NOT NULL,
    at          TIMESTAMPTZ NOT NULL,
    latency_ms  REAL        NULL,
    status_code INTEGER     NULL,
    outcome     TEXT        NOT NULL,
    error       TEXT        NULL
);
CREATE INDEX IF NOT EXISTS probe_samples_endpoint_at_idx ON opswatch.probe_samples (endpoint, at DESC);
CREATE INDEX IF NOT EXISTS probe_samples_at_idx ON opswatch.probe_samples (at);
