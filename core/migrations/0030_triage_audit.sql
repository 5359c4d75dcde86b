-- Triage: read the audit log per target kind, newest first (audit screen filter, `opswatch audit --kind`).
CREATE INDEX IF NOT EXISTS audit_log_kind_id_idx ON opswatch.audit_log (target_kind, id DESC);
