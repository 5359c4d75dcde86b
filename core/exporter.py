"""Prometheus exposition: ``/metrics`` served from inside the asyncio loop.

Everything comes from the Monitor's published :class:`~core.snapshot.Snapshot`: a custom
collector turns the latest snapshot into gauges on every scrape, and each new probe result
(seen as a changed ``last_checked`` in a snapshot, or pushed directly by a monitor that has
``add_sample_listener``) is observed into a per-endpoint latency histogram. The registry is
private to the exporter, so several exporters (tests) never collide in the global one.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import time
from collections.abc import Callable, Iterator, Sequence
from datetime import datetime
from typing import Protocol

from aiohttp import web
from loguru import logger
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import choose_encoder
from prometheus_client.process_collector import ProcessCollector

from core.clock import Clock, utcnow
from core.config import MetricConfig
from core.probes import ProbeSample
from core.safe_text import display_text
from core.snapshot import DlqSummary, EndpointState, Snapshot
from core.triage.flows import MAX_EVENT_NAMES

__all__ = [
    "LATENCY_BUCKETS_S",
    "LOOP_LAG_BUCKETS_S",
    "MetricsExporter",
    "SnapshotCollector",
    "SnapshotSource",
]

LATENCY_BUCKETS_S = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0)
LOOP_LAG_BUCKETS_S = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
_LOOP_LAG_EVERY_S = 0.5
ALERT_STATES = ("pending", "firing", "flapping", "resolved")
FIRING_STATES = ("firing", "flapping")


class SnapshotSource(Protocol):
    """What the exporter needs from a Monitor."""

    def subscribe(self, callback: Callable[[Snapshot], None]) -> Callable[[], None]: ...


def _ts(at: datetime | None) -> float | None:
    return at.timestamp() if at is not None else None


def _gauge(name: str, doc: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, doc, value=float(value))


def _family(name: str, doc: str, *labels: str) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, doc, labels=list(labels))


class SnapshotCollector:
    """Gauges computed from the latest snapshot at scrape time (no state between scrapes)."""

    def __init__(
        self,
        latest: Callable[[], Snapshot | None],
        clock: Clock = utcnow,
        custom: Sequence[MetricConfig] = (),
    ) -> None:
        self._latest = latest
        self._clock = clock
        self._custom_configs = {m.name: m for m in custom}

    def collect(self) -> Iterator[Metric]:
        snapshot = self._latest()
        if snapshot is None:
            return
        yield from self._meta(snapshot, self._clock())
        yield from self._endpoints(snapshot)
        yield from self._alerts(snapshot)
        yield from self._database(snapshot)
        yield from self._queues(snapshot)
        yield from self._custom(snapshot)

    def _meta(self, s: Snapshot, now: datetime) -> Iterator[Metric]:
        yield _gauge("opswatch_snapshot_age_seconds", "Seconds since the monitor last published a snapshot",
                     max(0.0, (now - s.taken_at).total_seconds()))  # fmt: skip
        updated = _family("opswatch_source_last_success_timestamp_seconds",
                          "When each monitor loop last produced data (Unix time)", "source")  # fmt: skip
        failing = _family("opswatch_source_failing", "1 while a monitor loop's last run failed", "source")
        for name, fresh in sorted(s.freshness.items()):
            if fresh.updated_at is not None:
                updated.add_metric([name], fresh.updated_at.timestamp())
            failing.add_metric([name], 1.0 if fresh.error else 0.0)
        yield updated
        yield failing

    def _endpoints(self, s: Snapshot) -> Iterator[Metric]:
        ep = "endpoint"
        up = _family("opswatch_endpoint_up", "1 if the last probe succeeded, 0 if it failed", ep, "service")
        status = _family("opswatch_endpoint_last_status_code", "HTTP status of the last probe", ep)
        last = _family("opswatch_endpoint_last_latency_seconds", "Latency of the last probe", ep)
        quantiles = Metric("opswatch_endpoint_window_latency_seconds",
                           "Latency quantiles over the rolling window", "summary")  # fmt: skip
        error_ratio = _family("opswatch_endpoint_error_ratio",
                              "Failed probes / all probes over the rolling window (0..1)", ep)  # fmt: skip
        samples = _family("opswatch_endpoint_window_samples", "Probes counted in the rolling window", ep)
        uptime = _family("opswatch_endpoint_uptime_ratio", "Successful probes / all (0..1)", ep, "window")
        down_since = _family("opswatch_endpoint_down_since_timestamp_seconds",
                             "When a down endpoint went down (Unix time)", ep)  # fmt: skip
        checked = _family("opswatch_endpoint_last_check_timestamp_seconds",
                          "When the last probe started (Unix time)", ep)  # fmt: skip
        for e in s.endpoints:
            name = e.name
            if e.state is not EndpointState.UNKNOWN:
                up.add_metric([name, e.service], 1.0 if e.state is EndpointState.UP else 0.0)
            if e.last_status is not None:
                status.add_metric([name], float(e.last_status))
            if e.last_latency_ms is not None:
                last.add_metric([name], e.last_latency_ms / 1000.0)
            for q, value in (("0.5", e.p50_ms), ("0.95", e.p95_ms), ("0.99", e.p99_ms)):
                if value is not None:  # quantiles only: a rolling window has no monotonic _count/_sum
                    quantiles.add_sample(quantiles.name, {ep: name, "quantile": q}, value / 1000.0)
            if e.error_rate is not None:
                error_ratio.add_metric([name], e.error_rate)
            samples.add_metric([name], float(e.samples_in_window))
            for window, ratio in (("1h", e.uptime_1h), ("24h", e.uptime_24h)):
                if ratio is not None:
                    uptime.add_metric([name, window], ratio)
            if (since := _ts(e.down_since)) is not None:
                down_since.add_metric([name], since)
            if (at := _ts(e.last_checked)) is not None:
                checked.add_metric([name], at)
        yield from (up, status, last, quantiles, error_ratio, samples, uptime, down_since, checked)

    def _alerts(self, s: Snapshot) -> Iterator[Metric]:
        labels = ("rule", "scope", "severity")
        state = _family("opswatch_alert_state",
                        "One series per alert and state: 1 for the alert's current state, else 0", *labels,
                        "state")  # fmt: skip
        active = _family("opswatch_alert_firing",
                         "1 while the alert fires (firing or flapping, silenced or not), 0 once resolved",
                         *labels)  # fmt: skip
        acknowledged = _family("opswatch_alert_acknowledged", "1 if acknowledged", "rule", "scope")
        silenced = _family("opswatch_alert_silenced", "1 if silenced", "rule", "scope")
        firing: dict[str, int] = {"info": 0, "warning": 0, "critical": 0}
        for a in s.alerts:
            key = [a.rule, a.scope, str(a.severity)]
            states = ALERT_STATES if a.state in ALERT_STATES else (*ALERT_STATES, a.state)
            for name in states:
                state.add_metric([*key, name], 1.0 if name == a.state else 0.0)
            active.add_metric(key, 1.0 if a.state in FIRING_STATES else 0.0)
            acknowledged.add_metric([a.rule, a.scope], 1.0 if a.acknowledged_by else 0.0)
            silenced.add_metric([a.rule, a.scope], 1.0 if a.silenced else 0.0)
            if a.state in FIRING_STATES and not a.silenced and str(a.severity) in firing:
                firing[str(a.severity)] += 1
        count = _family("opswatch_alerts_firing", "Firing or flapping unsilenced alerts", "severity")
        for severity, n in firing.items():
            count.add_metric([severity], float(n))
        yield from (state, active, acknowledged, silenced, count)

    def _database(self, s: Snapshot) -> Iterator[Metric]:
        if s.db is not None:
            yield _gauge("opswatch_db_up", "1 if the monitored PostgreSQL answers", s.db.up)
            if s.db.rtt_ms is not None:
                yield _gauge("opswatch_db_rtt_seconds", "Health query round trip", s.db.rtt_ms / 1000.0)
        if (stats := s.db_stats) is None:
            return
        yield _gauge("opswatch_db_connections_used", "Server connections in use", stats.connections_used)
        yield _gauge("opswatch_db_connections_max", "max_connections of the server", stats.max_connections)
        yield _gauge("opswatch_db_size_bytes", "Size of the database", stats.database_bytes)
        if stats.slowest_mean_ms is not None:
            yield _gauge("opswatch_db_slowest_statement_mean_seconds", "Mean time of the slowest statement",
                         stats.slowest_mean_ms / 1000.0)  # fmt: skip

    def _queues(self, s: Snapshot) -> Iterator[Metric]:
        if (dlq := s.dlq) is not None:
            yield _gauge("opswatch_dlq_pending", "Dead-letter messages pending", dlq.pending)
            if dlq.oldest_pending_age_s is not None:
                yield _gauge("opswatch_dlq_oldest_pending_age_seconds", "Oldest pending dead letter's age",
                             dlq.oldest_pending_age_s)  # fmt: skip
            yield CounterMetricFamily("opswatch_dlq_inflow", "Dead letters created since opswatch started",
                                      value=dlq.created_total)  # fmt: skip
            yield CounterMetricFamily("opswatch_dlq_outflow",
                                      "Dead letters that left the pending queue (retried, resolved or "
                                      "abandoned) since opswatch started",
                                      value=dlq.left_pending_total)  # fmt: skip
            yield _by_channel(dlq)
        if (events := s.events) is not None:
            yield CounterMetricFamily("opswatch_event_failures",
                                      "Event failures recorded since opswatch started",
                                      value=events.created_total)  # fmt: skip
            by_event = CounterMetricFamily("opswatch_event_failures_by_event",
                                           "Event failures recorded since opswatch started, by event name "
                                           f"(the first {MAX_EVENT_NAMES} names seen, then \"other\")",
                                           labels=["event"])  # fmt: skip
            for tally in events.created_by_event:
                by_event.add_metric([tally.key], float(tally.count))
            yield by_event
        if (outbox := s.outbox) is not None:
            depth = _family("opswatch_outbox_depth", "Notifications in the outbox by state", "state")
            depth.add_metric(["pending"], float(outbox.pending))
            depth.add_metric(["dead"], float(outbox.dead))
            yield depth
            yield CounterMetricFamily("opswatch_outbox_delivered",
                                      "Notifications this opswatch delivered since it started",
                                      value=outbox.delivered_total)  # fmt: skip

    def _custom(self, s: Snapshot) -> Iterator[Metric]:
        """One gauge family per custom SQL metric, named from it, in base units where known."""
        seen: set[str] = set()
        for name, value in s.custom_metrics:
            family, factor = custom_family(name, self._custom_configs.get(name))
            if family.name in seen:  # "Foo" and "foo": the first one wins
                continue
            seen.add(family.name)
            if value is not None:
                family.add_metric([], value * factor)
            yield family


def _by_channel(dlq: DlqSummary) -> Metric:
    """Pending by channel id for the busiest channels; the rest (and rows without a channel) as
    ``other``, so the series are bounded and sum to ``opswatch_dlq_pending``."""
    family = _family("opswatch_dlq_pending_by_channel",
                     "Pending dead letters by channel id: the busiest channels, then \"other\"",
                     "channel_id")  # fmt: skip
    listed = 0
    for row in dlq.by_channel:
        if row.id is not None:
            family.add_metric([str(row.id)], float(row.count))
            listed += row.count
    family.add_metric(["other"], float(max(0, dlq.pending - listed)))
    return family


# unit text in the config -> (Prometheus base unit, factor to it)
_UNITS: dict[str, tuple[str, float]] = {
    "s": ("seconds", 1.0), "sec": ("seconds", 1.0), "seconds": ("seconds", 1.0),
    "ms": ("seconds", 0.001), "milliseconds": ("seconds", 0.001),
    "b": ("bytes", 1.0), "bytes": ("bytes", 1.0),
    "%": ("ratio", 0.01), "percent": ("ratio", 0.01), "ratio": ("ratio", 1.0),
}  # fmt: skip


def custom_family(name: str, config: MetricConfig | None) -> tuple[GaugeMetricFamily, float]:
    """(``opswatch_custom_<name>`` family, factor to its unit): lower-cased, plus ``_seconds``,
    ``_bytes`` or ``_ratio`` when the configured unit converts to one; help from the description."""
    base = "opswatch_custom_" + re.sub(r"[^a-z0-9_]", "_", name.lower())
    unit_text = config.unit.strip() if config is not None else ""
    unit, factor = _UNITS.get(unit_text.lower(), ("", 1.0))
    doc = (config.description.strip() if config is not None else "") or f"Custom SQL metric {name}"
    if unit_text and not unit:
        doc += f" (unit: {unit_text})"
    return GaugeMetricFamily(base, display_text(doc, 300), unit=unit), factor


class MetricsExporter:
    """``/metrics`` for one Monitor. ``attach`` before or after the monitor starts; ``start`` binds."""

    def __init__(
        self,
        *,
        registry: CollectorRegistry | None = None,
        clock: Clock = utcnow,
        custom_metrics: Sequence[MetricConfig] = (),
    ) -> None:
        """``custom_metrics``: the config's ``metrics``, for their families' help and units."""
        self.registry = registry or CollectorRegistry()
        self._clock = clock
        self._snapshot: Snapshot | None = None
        self._seen: dict[str, datetime] = {}
        self._since = clock()
        self._samples_pushed = False
        self._detach: list[Callable[[], None]] = []
        self._runner: web.AppRunner | None = None
        self._lag_task: asyncio.Task[None] | None = None
        self.port = 0
        self.latency = Histogram(
            "opswatch_probe_latency_seconds", "Probe latency (every probe, failures included)",
            ["endpoint"], buckets=LATENCY_BUCKETS_S, registry=self.registry,
        )  # fmt: skip
        self.probes = Counter(
            "opswatch_probes", "Probes run, by outcome", ["endpoint", "outcome"], registry=self.registry
        )
        self.loop_lag = Histogram(
            "opswatch_event_loop_lag_seconds", "How late opswatch's asyncio loop runs a timer",
            buckets=LOOP_LAG_BUCKETS_S, registry=self.registry,
        )  # fmt: skip
        self.loop_lag_last = Gauge(
            "opswatch_event_loop_lag_last_seconds", "The most recent event-loop lag measurement",
            registry=self.registry,
        )  # fmt: skip
        self.registry.register(SnapshotCollector(lambda: self._snapshot, clock, custom_metrics))
        ProcessCollector(registry=self.registry)

    # -- feeding -------------------------------------------------------------------------------

    def attach(self, source: SnapshotSource) -> None:
        """Follow ``source``'s snapshots; probe results are pushed too if it offers a sample hook."""
        hook = getattr(source, "add_sample_listener", None)
        if callable(hook):
            self._detach.append(hook(self.observe_sample))
            self._samples_pushed = True
        self._detach.append(source.subscribe(self.on_snapshot))

    def on_snapshot(self, snapshot: Snapshot) -> None:
        self._snapshot = snapshot
        if self._samples_pushed:
            return
        for e in snapshot.endpoints:
            at = e.last_checked
            if at is None or e.last_latency_ms is None or at == self._seen.get(e.name):
                continue
            self._seen[e.name] = at
            if at >= self._since:  # restored history is not a new observation
                self._observe(e.name, e.last_latency_ms, e.last_outcome or "other")

    def observe_sample(self, sample: ProbeSample) -> None:
        self._observe(sample.endpoint, sample.latency_ms, str(sample.outcome))

    def _observe(self, endpoint: str, latency_ms: float, outcome: str) -> None:
        self.latency.labels(endpoint).observe(max(0.0, latency_ms) / 1000.0)
        self.probes.labels(endpoint, outcome).inc()

    def render(self, accept: str = "") -> tuple[bytes, str]:
        """(body, content type) for a scrape with this Accept header."""
        encoder, content_type = choose_encoder(accept)
        return encoder(self.registry), content_type

    # -- serving -------------------------------------------------------------------------------

    async def start(self, host: str = "127.0.0.1", port: int = 9464) -> int:
        """Serve ``/metrics``; returns the bound port (``port=0`` picks a free one). OSError if taken."""
        app = web.Application()
        app.router.add_get("/metrics", self._handle_metrics)
        app.router.add_get("/", self._handle_index)
        runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=2.0)
        await runner.setup()
        site = web.TCPSite(runner, host, port)
        try:
            await site.start()
        except BaseException:
            await runner.cleanup()
            raise
        self._runner = runner
        self.port = _bound_port(runner, port)
        self._lag_task = asyncio.ensure_future(self._measure_loop_lag())
        logger.bind(host=host, port=self.port).info("serving Prometheus metrics on {}:{}", host, self.port)
        return self.port

    async def stop(self) -> None:
        for detach in self._detach:
            detach()
        self._detach.clear()
        if self._lag_task is not None:
            self._lag_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._lag_task
            self._lag_task = None
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def _handle_metrics(self, request: web.Request) -> web.Response:
        body, content_type = self.render(request.headers.get("Accept", ""))
        return web.Response(body=body, headers={"Content-Type": content_type})

    async def _handle_index(self, request: web.Request) -> web.Response:
        return web.Response(text="opswatch exporter: metrics at /metrics\n")

    async def _measure_loop_lag(self) -> None:
        while True:
            started = time.monotonic()
            await asyncio.sleep(_LOOP_LAG_EVERY_S)
            lag = max(0.0, time.monotonic() - started - _LOOP_LAG_EVERY_S)
            self.loop_lag.observe(lag)
            self.loop_lag_last.set(lag)


def _bound_port(runner: web.AppRunner, requested: int) -> int:
    for address in runner.addresses:
        if isinstance(address, tuple) and len(address) >= 2:
            return int(address[1])
    return requested
