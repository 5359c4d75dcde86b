"""The metric catalogue (``core.config.METRICS``) computed from windows and source readings.

One function feeds both the continuous Monitor and the one-shot ``opswatch check``, so a
rule means the same thing in both.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from datetime import datetime

from core.alerting import MetricSample
from core.snapshot import DbHealthView, DbStats, DlqSummary, EndpointState, EventSummary, OutboxSummary
from core.windows import EndpointWindow


def _pct(ratio: float | None) -> float | None:
    return None if ratio is None else ratio * 100.0


def _up(window: EndpointWindow, _now: datetime) -> float | None:
    state = window.state
    return None if state is EndpointState.UNKNOWN else (1.0 if state is EndpointState.UP else 0.0)


def _down_for(window: EndpointWindow, now: datetime) -> float | None:
    return None if window.state is EndpointState.UNKNOWN else window.down_for_s(now)


_ENDPOINT: dict[str, Callable[[EndpointWindow, datetime], float | None]] = {
    "endpoint.up": _up,
    "endpoint.down_for": _down_for,
    "endpoint.latency_ms": lambda w, _now: w.last_latency_ms,
    "endpoint.latency_p50_ms": lambda w, now: w.p50_ms(now),
    "endpoint.latency_p95_ms": lambda w, now: w.p95_ms(now),
    "endpoint.latency_p99_ms": lambda w, now: w.p99_ms(now),
    "endpoint.error_rate": lambda w, now: _pct(w.error_rate(now)),
    "endpoint.uptime_1h": lambda w, now: _pct(w.uptime_1h(now)),
    "endpoint.uptime_24h": lambda w, now: _pct(w.uptime_24h(now)),
}
ENDPOINT_METRICS: tuple[str, ...] = tuple(_ENDPOINT)


def endpoint_metrics(
    name: str, window: EndpointWindow, now: datetime, wanted: Collection[str] = ENDPOINT_METRICS
) -> list[MetricSample]:
    """The ``endpoint.*`` metrics in ``wanted`` (default all): the Monitor asks only for those rules use."""
    return [MetricSample(m, name, _ENDPOINT[m](window, now)) for m in wanted if m in _ENDPOINT]


def global_metrics(
    *,
    now: datetime,
    db: DbHealthView | None,
    stats: DbStats | None,
    events: EventSummary | None,
    dlq: DlqSummary | None,
    outbox: OutboxSummary | None,
    custom: Mapping[str, float | None],
) -> list[MetricSample]:
    values: dict[str, float | None] = {}
    if db is not None:
        values["db.unreachable"] = 0.0 if db.up else 1.0
        values["db.down_for"] = (now - db.down_since).total_seconds() if db.down_since and not db.up else 0.0
        values["db.rtt_ms"] = db.rtt_ms
    if stats is not None:
        values["db.connections_used_pct"] = (
            stats.connections_used * 100.0 / stats.max_connections if stats.max_connections else None
        )
        values["db.slowest_mean_ms"] = stats.slowest_mean_ms
        values["db.size_bytes"] = float(stats.database_bytes)
    if events is not None:
        values["events.failures_last_hour"] = float(events.last_hour)
        values["events.failures_last_24h"] = float(events.last_24h)
    if dlq is not None:
        values["dlq.pending"] = float(dlq.pending)
        values["dlq.oldest_pending_age"] = dlq.oldest_pending_age_s
        values["dlq.inflow_per_hour"] = float(dlq.inflow_per_hour)
    if outbox is not None:
        values["outbox.dead"] = float(outbox.dead)
    samples = [MetricSample(metric, "", value) for metric, value in values.items()]
    samples.extend(MetricSample(f"custom.{name}", "", value) for name, value in custom.items())
    return samples
