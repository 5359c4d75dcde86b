"""Prometheus exposition: a fixed snapshot renders every family; a live Monitor scrapes right.

The live tests run a real Monitor against real PostgreSQL and a local FleetServer, scrape
``/metrics`` over HTTP and parse it with prometheus-client's own parser.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import socket
import sys
import time
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import yaml
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

from core.config import Config
from core.db import Database, PoolSettings
from core.exporter import MetricsExporter
from core.monitor import Monitor
from core.probes import Outcome, ProbeSample
from core.snapshot import (
    AlertView,
    CountBy,
    DbHealthView,
    DbStats,
    DlqSummary,
    EndpointState,
    EndpointView,
    EventSummary,
    EventTally,
    Freshness,
    OutboxSummary,
    Severity,
    Snapshot,
)
from tests.servers import FleetServer

ROOT = Path(__file__).resolve().parent.parent
NOW = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


def _samples(text: str) -> list[Sample]:
    return [s for family in text_string_to_metric_families(text) for s in family.samples]


def _value(samples: Iterable[Sample], name: str, **labels: str) -> float | None:
    for s in samples:
        if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()):
            return float(s.value)
    return None


def _fixed_snapshot() -> Snapshot:
    up = EndpointView(
        name="health", url="http://x/health", service="api", state=EndpointState.UP, last_status=200,
        last_outcome="ok", last_latency_ms=12.0, p50_ms=10.0, p95_ms=40.0, p99_ms=90.0, error_rate=0.25,
        uptime_1h=0.75, uptime_24h=0.9, last_checked=NOW - timedelta(seconds=2), samples_in_window=8,
    )  # fmt: skip
    down = EndpointView(
        name="sales", url="http://x/sales", service="api", state=EndpointState.DOWN, last_status=503,
        last_outcome="http_status", last_latency_ms=5.0, down_since=NOW - timedelta(minutes=3),
    )  # fmt: skip
    never = EndpointView(name="new", url="http://x/new", service="worker", state=EndpointState.UNKNOWN)
    alert = AlertView(
        rule="api-down", scope="sales", state="firing", severity=Severity.CRITICAL, value=180.0,
        threshold=120.0, since=NOW, summary="down", acknowledged_by="ana",
    )  # fmt: skip
    return Snapshot(
        taken_at=NOW - timedelta(seconds=3),
        endpoints=(up, down, never),
        alerts=(alert,),
        db=DbHealthView(True, 4.0, None, None, NOW),
        dlq=DlqSummary(7, 3600.0, 5, 2, by_channel=(CountBy('shop "A"\\n', 4),)),
        events=EventSummary(3, 11, tallies=(EventTally("sale.created", "failed", 3, 11),)),
        db_stats=DbStats(9, 100, 123456, slowest_mean_ms=250.0),
        outbox=OutboxSummary(2, 1, 6),
        custom_metrics=(("auth_failure_rate", 1.5), ("unknown_yet", None)),
        freshness={"probes": Freshness(NOW), "summaries": Freshness(NOW, error="timeout")},
    )


def test_fixed_snapshot_renders_every_family() -> None:
    exporter = MetricsExporter(clock=lambda: NOW)
    exporter.on_snapshot(_fixed_snapshot())
    body, content_type = exporter.render()
    assert content_type.startswith("text/plain")
    samples = _samples(body.decode())

    assert _value(samples, "opswatch_endpoint_up", endpoint="health", service="api") == 1
    assert _value(samples, "opswatch_endpoint_up", endpoint="sales") == 0
    assert _value(samples, "opswatch_endpoint_up", endpoint="new") is None  # never probed: absent, not 0
    assert _value(samples, "opswatch_endpoint_last_status_code", endpoint="sales") == 503
    p95 = _value(samples, "opswatch_endpoint_window_latency_seconds", endpoint="health", quantile="0.95")
    assert p95 == 0.04
    assert _value(samples, "opswatch_endpoint_error_ratio", endpoint="health") == 0.25
    assert _value(samples, "opswatch_endpoint_uptime_ratio", endpoint="health", window="24h") == 0.9
    assert _value(samples, "opswatch_endpoint_down_since_timestamp_seconds", endpoint="sales") == (
        NOW - timedelta(minutes=3)
    ).timestamp()
    assert _value(samples, "opswatch_alert_state", rule="api-down", scope="sales", severity="critical",
                  state="firing") == 1  # fmt: skip
    assert _value(samples, "opswatch_alert_acknowledged", rule="api-down") == 1
    assert _value(samples, "opswatch_alerts_firing", severity="critical") == 1
    assert _value(samples, "opswatch_alerts_firing", severity="warning") == 0
    assert _value(samples, "opswatch_db_up") == 1
    assert _value(samples, "opswatch_db_rtt_seconds") == 0.004
    assert _value(samples, "opswatch_db_connections_used") == 9
    assert _value(samples, "opswatch_db_slowest_statement_mean_seconds") == 0.25
    assert _value(samples, "opswatch_dlq_pending") == 7
    assert _value(samples, "opswatch_dlq_oldest_pending_age_seconds") == 3600
    # label values are escaped on the way out and parse back intact
    assert _value(samples, "opswatch_dlq_pending_by_channel", channel='shop "A"\\n') == 4
    assert _value(samples, "opswatch_event_failures", window="1h") == 3
    assert _value(samples, "opswatch_event_failures", window="24h") == 11
    assert _value(samples, "opswatch_event_failures_last_hour_by_event", event="sale.created") == 3
    assert _value(samples, "opswatch_outbox_depth", state="pending") == 2
    assert _value(samples, "opswatch_outbox_depth", state="dead") == 1
    assert _value(samples, "opswatch_custom_metric", metric="auth_failure_rate") == 1.5
    assert _value(samples, "opswatch_custom_metric", metric="unknown_yet") is None
    assert _value(samples, "opswatch_snapshot_age_seconds") == 3
    assert _value(samples, "opswatch_source_failing", source="summaries") == 1
    assert _value(samples, "opswatch_source_failing", source="probes") == 0
    assert _value(samples, "process_resident_memory_bytes") is not None


def test_snapshot_diffing_observes_each_new_probe_once() -> None:
    exporter = MetricsExporter(clock=lambda: NOW - timedelta(seconds=10))
    view = _fixed_snapshot().endpoints[0]
    restored = EndpointView(name="old", url="", service="api", state=EndpointState.UP, last_outcome="ok",
                            last_latency_ms=1.0, last_checked=NOW - timedelta(hours=1))  # fmt: skip
    first = Snapshot(taken_at=NOW, endpoints=(view, restored))
    exporter.on_snapshot(first)
    exporter.on_snapshot(first)  # same probe in the next snapshot: not counted again
    newer = EndpointView(**{**view.__dict__, "last_checked": NOW, "last_latency_ms": 700.0})
    later = Snapshot(taken_at=NOW, endpoints=(newer, restored))
    exporter.on_snapshot(later)
    samples = _samples(exporter.render()[0].decode())
    assert _value(samples, "opswatch_probe_latency_seconds_count", endpoint="health") == 2
    assert _value(samples, "opswatch_probe_latency_seconds_bucket", endpoint="health", le="0.025") == 1
    assert _value(samples, "opswatch_probe_latency_seconds_bucket", endpoint="health", le="1.0") == 2
    assert _value(samples, "opswatch_probes_total", endpoint="health", outcome="ok") == 2
    assert _value(samples, "opswatch_probe_latency_seconds_count", endpoint="old") is None  # restored history


def test_a_sample_hook_replaces_snapshot_diffing() -> None:
    class Source:
        def __init__(self) -> None:
            self.listeners: list[Callable[[ProbeSample], None]] = []

        def subscribe(self, callback: Callable[[Snapshot], None]) -> Callable[[], None]:
            callback(_fixed_snapshot())
            return lambda: None

        def add_sample_listener(self, callback: Callable[[ProbeSample], None]) -> Callable[[], None]:
            self.listeners.append(callback)
            return lambda: self.listeners.remove(callback)

    source = Source()
    exporter = MetricsExporter(clock=lambda: NOW - timedelta(days=1))
    exporter.attach(source)
    for latency in (3.0, 4.0, 6000.0):
        source.listeners[0](ProbeSample("sales", NOW, latency, None, Outcome.TIMEOUT))
    samples = _samples(exporter.render()[0].decode())
    assert _value(samples, "opswatch_probe_latency_seconds_count", endpoint="sales") == 3
    assert _value(samples, "opswatch_probes_total", endpoint="sales", outcome="timeout") == 3
    assert _value(samples, "opswatch_probe_latency_seconds_count", endpoint="health") is None


def test_two_exporters_have_their_own_registries() -> None:
    a, b = MetricsExporter(), MetricsExporter()
    a.observe_sample(ProbeSample("x", NOW, 5.0, 200, Outcome.OK))
    samples = _samples(b.render()[0].decode())
    assert _value(samples, "opswatch_probe_latency_seconds_count", endpoint="x") is None


def test_examples_use_exported_metric_names() -> None:
    """The Grafana dashboard and the Prometheus rules only query metrics the exporter serves."""
    exporter = MetricsExporter(clock=lambda: NOW)
    exporter.on_snapshot(_fixed_snapshot())
    exporter.observe_sample(ProbeSample("health", NOW, 5.0, 200, Outcome.OK))
    exporter.loop_lag.observe(0.001)
    exported = {f.name for f in text_string_to_metric_families(exporter.render()[0].decode())}

    examples = ROOT / "examples"
    dashboard = json.loads((examples / "grafana-dashboard.json").read_text())
    exprs = [t["expr"] for panel in dashboard["panels"] for t in panel.get("targets", [])]
    rules = yaml.safe_load((examples / "opswatch-rules.yml").read_text())
    exprs += [str(rule["expr"]) for group in rules["groups"] for rule in group["rules"]]
    names = {name for e in exprs for name in re.findall(r"opswatch_\w+", e)}
    used = {re.sub(r"_(bucket|count|sum|total)$", "", name) for name in names}
    assert len(used) > 15
    assert used <= exported, used - exported
    ids = [panel["id"] for panel in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    assert {v["name"] for v in dashboard["templating"]["list"]} >= {"datasource", "endpoint"}

    scrape = yaml.safe_load((examples / "prometheus.yml").read_text())
    job = scrape["scrape_configs"][0]
    assert job["job_name"] == "opswatch" and job["static_configs"][0]["targets"] == ["127.0.0.1:9464"]
    assert (examples / scrape["rule_files"][0]).exists()
    unit = (examples / "opswatch.service").read_text()
    assert "opswatch run --headless --metrics-port 9464" in unit


def _live_config(dsn: str, fleet: FleetServer) -> dict[str, Any]:
    return {
        "database": {"dsn": dsn, "pool_min": 1, "pool_max": 4},
        "endpoints": [
            {"name": "good", "url": fleet.url("good"), "interval": 0.2, "timeout": 2},
            {"name": "bad", "url": fleet.url("bad"), "interval": 0.2, "timeout": 2},
        ],
        "probes": {"flush_interval": 0.5},
        "alerts": {
            "evaluation_interval": 0.2,
            "group_wait": 0,
            "rules": [{"name": "endpoint-down", "metric": "endpoint.up", "op": "<", "critical": 1}],
        },
        "ui": {"refresh_interval": 0.3},
    }


async def _scrape(port: int) -> list[Sample]:
    url = f"http://127.0.0.1:{port}/metrics"
    async with aiohttp.ClientSession() as session, session.get(url) as response:
        assert response.status == 200
        assert response.headers["Content-Type"].startswith("text/plain")
        return _samples(await response.text())


async def _scrape_until(
    port: int, ready: Callable[[list[Sample]], bool], within: float = 10.0
) -> list[Sample]:
    deadline = time.monotonic() + within
    while True:
        samples = await _scrape(port)
        if ready(samples):
            return samples
        if time.monotonic() > deadline:
            names = sorted({s.name for s in samples})
            raise AssertionError(f"metrics never became ready; have {names}")
        await asyncio.sleep(0.1)


async def test_live_monitor_scrape(db_dsn: str) -> None:
    async with FleetServer() as fleet:
        fleet.set("bad", status=503, body="down")
        db = Database(db_dsn, PoolSettings(min_size=1, max_size=4))
        monitor = Monitor(Config.model_validate(_live_config(db_dsn, fleet)), db)
        exporter = MetricsExporter()
        exporter.attach(monitor)
        port = await exporter.start("127.0.0.1", 0)
        await monitor.start()
        try:

            def ready(s: list[Sample]) -> bool:
                return (
                    _value(s, "opswatch_endpoint_up", endpoint="bad") is not None
                    and _value(s, "opswatch_endpoint_up", endpoint="good") is not None
                    and (_value(s, "opswatch_probe_latency_seconds_count", endpoint="bad") or 0) >= 2
                    and _value(s, "opswatch_alert_state", rule="endpoint-down", scope="bad", state="firing")
                    is not None
                    and _value(s, "opswatch_dlq_pending") is not None
                    and _value(s, "opswatch_outbox_depth", state="pending") is not None
                    and _value(s, "opswatch_event_loop_lag_seconds_count") is not None
                )

            samples = await _scrape_until(port, ready)
        finally:
            await monitor.stop()
            await exporter.stop()
            await db.close()

    assert _value(samples, "opswatch_endpoint_up", endpoint="good", service="api") == 1
    assert _value(samples, "opswatch_endpoint_up", endpoint="bad") == 0
    assert _value(samples, "opswatch_endpoint_last_status_code", endpoint="bad") == 503
    assert _value(samples, "opswatch_endpoint_error_ratio", endpoint="bad") == 1
    assert _value(samples, "opswatch_endpoint_error_ratio", endpoint="good") == 0
    assert _value(samples, "opswatch_probes_total", endpoint="bad", outcome="http_status")
    assert _value(samples, "opswatch_probes_total", endpoint="good", outcome="ok")
    good_count = _value(samples, "opswatch_probe_latency_seconds_count", endpoint="good")
    assert good_count and good_count == _value(samples, "opswatch_probe_latency_seconds_bucket",
                                               endpoint="good", le="+Inf")  # fmt: skip
    assert _value(samples, "opswatch_alert_state", rule="endpoint-down", scope="bad", severity="critical",
                  state="firing") == 1  # fmt: skip
    assert _value(samples, "opswatch_alert_state", rule="endpoint-down", scope="good") is None
    assert _value(samples, "opswatch_alerts_firing", severity="critical") == 1
    assert _value(samples, "opswatch_db_up") == 1
    assert (_value(samples, "opswatch_db_rtt_seconds") or -1) >= 0
    assert _value(samples, "opswatch_dlq_pending") == 0
    assert _value(samples, "opswatch_event_failures", window="24h") == 0
    assert _value(samples, "opswatch_outbox_depth", state="dead") == 0
    lag = _value(samples, "opswatch_event_loop_lag_last_seconds")
    assert lag is not None and 0 <= lag < 1


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_run_headless_serves_metrics(db_dsn: str, tmp_path: Path) -> None:
    """`opswatch run --headless --metrics-port` end to end, and a taken port is one line, exit 2."""
    async with FleetServer() as fleet:
        config = tmp_path / "opswatch.yaml"
        data = {**_live_config(db_dsn, fleet), "logging": {"directory": str(tmp_path)}}
        config.write_text(yaml.safe_dump(data))
        port = _free_port()
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "tui.cli", "run", "--headless", "--config", str(config),
            "--metrics-port", str(port), "--duration", "20s",
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE, cwd=ROOT,
            env={**os.environ, "LOG_LEVEL": "WARNING"},
        )  # fmt: skip
        try:
            deadline = time.monotonic() + 15
            while True:
                try:
                    samples = await _scrape(port)
                    if _value(samples, "opswatch_endpoint_up", endpoint="bad") is not None:
                        break
                except aiohttp.ClientConnectionError:
                    pass
                assert time.monotonic() < deadline, "the agent never served endpoint metrics"
                await asyncio.sleep(0.2)
            assert _value(samples, "opswatch_endpoint_up", endpoint="bad") == 0

            taken = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "tui.cli", "run", "--headless", "--config", str(config),
                "--metrics-port", str(port), "--duration", "5s",
                stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE, cwd=ROOT,
                env={**os.environ, "LOG_LEVEL": "WARNING"},
            )  # fmt: skip
            _, err = await asyncio.wait_for(taken.communicate(), 15)
            assert taken.returncode == 2
            assert f"opswatch: cannot serve metrics on 127.0.0.1:{port}" in err.decode()
            assert "Traceback" not in err.decode()
        finally:
            proc.terminate()
            _, err = await asyncio.wait_for(proc.communicate(), 15)
        assert proc.returncode == 0, err.decode()[-2000:]
