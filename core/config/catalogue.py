"""What a rule can watch (the metric catalogue) and the seed's alerting plan, as plain data."""

from __future__ import annotations

from typing import Any

__all__ = ["DEFAULT_RULE_SPECS", "METRICS"]

METRICS: dict[str, str] = {
    "endpoint.up": "1 while the endpoint's last probe succeeded, else 0",
    "endpoint.down_for": "seconds since the endpoint went down (0 while up)",
    "endpoint.latency_ms": "latency of the last probe, ms",
    "endpoint.latency_p50_ms": "median latency over probes.window, ms",
    "endpoint.latency_p95_ms": "95th percentile latency over probes.window, ms",
    "endpoint.latency_p99_ms": "99th percentile latency over probes.window, ms",
    "endpoint.error_rate": "failed probes over probes.window, percent (0-100)",
    "endpoint.uptime_1h": "uptime over the last hour, percent",
    "endpoint.uptime_24h": "uptime over the last 24 hours, percent",
    "db.unreachable": "1 while the monitored database is unreachable, else 0",
    "db.down_for": "seconds since the database became unreachable",
    "db.rtt_ms": "database round-trip time, ms",
    "db.connections_used_pct": "connections in use vs max_connections, percent",
    "db.slowest_mean_ms": "mean time of the slowest statement (pg_stat_statements), ms",
    "db.size_bytes": "database size, bytes",
    "events.failures_last_hour": "event failures created in the last hour",
    "events.failures_last_24h": "event failures created in the last 24 hours",
    "dlq.pending": "dead-letter messages pending",
    "dlq.oldest_pending_age": "age of the oldest pending dead letter, seconds",
    "dlq.inflow_per_hour": "dead letters created in the last hour",
    "outbox.dead": "notifications that gave up delivering (dead-lettered)",
}
"""Built-in metrics a rule can watch (plus ``custom.<name>`` for ``metrics``)."""


DEFAULT_RULE_SPECS: tuple[dict[str, Any], ...] = (
    {
        "name": "api-down",
        "metric": "endpoint.down_for",
        "description": "Endpoint down for more than 5 minutes",
        "critical": 300,
        "runbook": "Check the POS backend process and host; GET /test/health must answer 200.",
    },
    {
        "name": "slow-response",
        "metric": "endpoint.latency_ms",
        "description": "Response time above 2 s (warning) / 5 s (critical)",
        "warning": 2000,
        "critical": 5000,
        "depends_on": ["api-down"],
    },
    {
        "name": "error-rate",
        "metric": "endpoint.error_rate",
        "description": "Error rate above 5 % (warning) / 10 % (critical)",
        "warning": 5,
        "critical": 10,
        "depends_on": ["api-down", "db-unreachable"],
    },
    {
        "name": "auth-failures",
        "metric": "custom.auth_failure_rate",
        "description": "Authentication failures above 10 %",
        "critical": 10,
        "depends_on": ["db-unreachable"],
    },
    {
        "name": "db-unreachable",
        "metric": "db.unreachable",
        "description": "Database connection failures",
        "critical": 0,
        "runbook": "Check PostgreSQL, the network path and connection limits.",
    },
    {
        "name": "slow-queries",
        "metric": "db.slowest_mean_ms",
        "description": "Database query time above 1 s",
        "warning": 1000,
        "depends_on": ["db-unreachable"],
    },
    {
        "name": "event-failures",
        "metric": "events.failures_last_hour",
        "description": "More than 5 event failures per hour",
        "warning": 5,
        "depends_on": ["db-unreachable"],
    },
)
"""The seed's alerting plan (validated into ``DEFAULT_RULES``); auth-failures only with its metric."""
