"""Immutable views that cross the core -> TUI boundary.

The Monitor publishes a :class:`Snapshot` after every change; faces (TUI, CLI, metrics
exporter) only read these plain frozen dataclasses. All text fields that originate in
the monitored system are already passed through :func:`core.safe_text.display_text`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum


class Severity(StrEnum):
    OK = "ok"
    INFO = "info"
    WARNING = "warning"
    CRITICAL = "critical"

    @property
    def rank(self) -> int:
        return {"ok": 0, "info": 1, "warning": 2, "critical": 3}[self.value]


class EndpointState(StrEnum):
    UNKNOWN = "unknown"
    UP = "up"
    FAILING = "failing"  # the last probe failed, not yet ``probes.down_after`` in a row
    DOWN = "down"


@dataclass(frozen=True)
class EndpointView:
    name: str
    url: str  # masked for display
    service: str
    state: EndpointState
    last_status: int | None = None
    last_outcome: str = ""  # ok | http_status | timeout | connect_refused | dns | tls | body_mismatch | other
    last_error: str = ""
    last_latency_ms: float | None = None
    p50_ms: float | None = None
    p95_ms: float | None = None
    p99_ms: float | None = None
    error_rate: float | None = None  # 0..1 over the configured window
    uptime_1h: float | None = None  # 0..1
    uptime_24h: float | None = None
    down_since: datetime | None = None
    last_checked: datetime | None = None
    latency_history: tuple[float, ...] = ()  # most recent last, for sparklines
    samples_in_window: int = 0


@dataclass(frozen=True)
class ProbeFailure:
    at: datetime
    outcome: str
    status_code: int | None
    error: str
    latency_ms: float | None


@dataclass(frozen=True)
class AlertView:
    rule: str
    scope: str  # endpoint name or "" for global rules
    state: str  # pending | firing | flapping | resolved
    severity: Severity
    value: float | None
    threshold: float | None
    since: datetime
    summary: str
    acknowledged_by: str | None = None
    silenced: bool = False
    suppressed_by: str | None = None  # rule name whose firing holds this one back


@dataclass(frozen=True)
class DbHealthView:
    up: bool
    rtt_ms: float | None
    error: str | None
    down_since: datetime | None
    checked_at: datetime | None


@dataclass(frozen=True)
class CountBy:
    key: str
    count: int
    id: int | None = None  # the row id behind ``key`` (channel or business), when there is one


@dataclass(frozen=True)
class DlqSummary:
    pending: int
    oldest_pending_age_s: float | None
    inflow_per_hour: int
    outflow_per_hour: int
    by_channel: tuple[CountBy, ...] = ()
    by_business: tuple[CountBy, ...] = ()
    max_id: int = 0
    created_total: int = 0  # running totals since this process first looked (core.triage.flows)
    left_pending_total: int = 0


@dataclass(frozen=True)
class EventTally:
    event_name: str
    status: str
    last_hour: int
    last_24h: int


@dataclass(frozen=True)
class EventSummary:
    last_hour: int
    last_24h: int
    tallies: tuple[EventTally, ...] = ()
    hourly: tuple[int, ...] = ()  # 24 buckets, oldest first
    max_id: int = 0
    created_total: int = 0  # running totals since this process first looked (core.triage.flows)
    created_by_event: tuple[CountBy, ...] = ()  # bounded: the first names seen, then "other"


@dataclass(frozen=True)
class SlowStatement:
    query: str
    mean_ms: float
    calls: int


@dataclass(frozen=True)
class TableSize:
    name: str
    bytes: int


@dataclass(frozen=True)
class DbStats:
    connections_used: int
    max_connections: int
    database_bytes: int
    tables: tuple[TableSize, ...] = ()
    slow_statements: tuple[SlowStatement, ...] | None = None  # None: pg_stat_statements unavailable
    slowest_mean_ms: float | None = None


@dataclass(frozen=True)
class OutboxSummary:
    pending: int
    dead: int
    delivered_last_hour: int
    delivered_total: int = 0  # delivered by this process since it started


@dataclass(frozen=True)
class Freshness:
    """When a source last produced data; the UI marks tiles STALE when this lags."""

    updated_at: datetime | None
    error: str | None = None


@dataclass(frozen=True)
class Snapshot:
    taken_at: datetime
    endpoints: tuple[EndpointView, ...] = ()
    alerts: tuple[AlertView, ...] = ()
    db: DbHealthView | None = None
    dlq: DlqSummary | None = None
    events: EventSummary | None = None
    db_stats: DbStats | None = None
    outbox: OutboxSummary | None = None
    custom_metrics: tuple[tuple[str, float | None], ...] = ()
    freshness: dict[str, Freshness] = field(default_factory=dict)
    read_only: bool = False

    @property
    def worst_severity(self) -> Severity:
        firing = [
            a.severity
            for a in self.alerts
            if a.state in ("firing", "flapping") and not a.silenced and a.suppressed_by is None
        ]
        return max(firing, key=lambda s: s.rank, default=Severity.OK)
