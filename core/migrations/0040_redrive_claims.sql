-- HTTP redrive claims a row here, commits, and replays it to the backend without holding a row
-- lock (the backend's own worker may need those rows meanwhile). Other operators' actions skip a
-- claimed row until the claim is released, or until it expires if that opswatch died.
CREATE TABLE IF NOT EXISTS opswatch.redrive_claims (
    kind       TEXT        NOT NULL,  -- dlq | event
    row_id     BIGINT      NOT NULL,
    claimed_by TEXT        NOT NULL,  -- the operator, shown to the others
    token      TEXT        NOT NULL,  -- one batch: only it releases its claims
    claimed_at TIMESTAMPTZ NOT NULL DEFAULT clock_timestamp(),
    expires_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (kind, row_id)
);
