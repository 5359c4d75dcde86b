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
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import yaml
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

from core.config import Config, MetricConfig
from core.db import Database, PoolSettings
from core.exporter import MetricsExporter
from core.probes import Outcome, ProbeSample
from core.runtime import build_services
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
from core.triage import TriageService
from core.triage.flows import MAX_EVENT_NAMES
from tests.debian import debian_tool
from tests.servers import FleetServer
from tests.test_triage_support import add_dlq, add_events, reset_app, seed_base

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
        dlq=DlqSummary(
            7,
            3600.0,
            5,
            2,
            by_channel=(CountBy('shop "A"\\n', 4, 12),),
            created_total=5,
            left_pending_total=2,
        ),
        events=EventSummary(
            3,
            11,
            tallies=(EventTally("sale.created", "failed", 3, 11),),
            created_total=11,
            created_by_event=(CountBy("sale.created", 11),),
        ),
        db_stats=DbStats(9, 100, 123456, slowest_mean_ms=250.0),
        outbox=OutboxSummary(2, 1, 6, delivered_total=6),
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
    assert (
        _value(samples, "opswatch_endpoint_down_since_timestamp_seconds", endpoint="sales")
        == (NOW - timedelta(minutes=3)).timestamp()
    )
    assert _value(samples, "opswatch_alert_state", rule="api-down", scope="sales", severity="critical",
                  state="firing") == 1  # fmt: skip
    assert _value(samples, "opswatch_alert_state", rule="api-down", state="resolved") == 0
    assert _value(samples, "opswatch_alert_firing", rule="api-down", scope="sales", severity="critical") == 1
    assert _value(samples, "opswatch_alert_acknowledged", rule="api-down") == 1
    assert _value(samples, "opswatch_alerts_firing", severity="critical") == 1
    assert _value(samples, "opswatch_alerts_firing", severity="warning") == 0
    assert _value(samples, "opswatch_db_up") == 1
    assert _value(samples, "opswatch_db_rtt_seconds") == 0.004
    assert _value(samples, "opswatch_db_connections_used") == 9
    assert _value(samples, "opswatch_db_slowest_statement_mean_seconds") == 0.25
    assert _value(samples, "opswatch_dlq_pending") == 7
    assert _value(samples, "opswatch_dlq_oldest_pending_age_seconds") == 3600
    # channels are labelled by id (the busiest, then "other"), never by the app's display names
    assert _value(samples, "opswatch_dlq_pending_by_channel", channel_id="12") == 4
    assert _value(samples, "opswatch_dlq_pending_by_channel", channel_id="other") == 3
    assert 'shop "A"' not in body.decode()
    assert _value(samples, "opswatch_dlq_inflow_total") == 5
    assert _value(samples, "opswatch_dlq_outflow_total") == 2
    assert _value(samples, "opswatch_event_failures_total") == 11
    assert _value(samples, "opswatch_event_failures_by_event_total", event="sale.created") == 11
    assert _value(samples, "opswatch_outbox_depth", state="pending") == 2
    assert _value(samples, "opswatch_outbox_depth", state="dead") == 1
    assert _value(samples, "opswatch_outbox_delivered_total") == 6
    assert _value(samples, "opswatch_custom_auth_failure_rate") == 1.5
    assert _value(samples, "opswatch_custom_unknown_yet") is None
    names = {s.name for s in samples}
    assert not {n for n in names if n.endswith(("_last_hour", "_metric"))}, names
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


async def _scrape_text(port: int) -> str:
    url = f"http://127.0.0.1:{port}/metrics"
    async with aiohttp.ClientSession() as session, session.get(url) as response:
        assert response.status == 200
        assert response.headers["Content-Type"].startswith("text/plain")
        return await response.text()


async def _scrape(port: int) -> list[Sample]:
    return _samples(await _scrape_text(port))


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
    promtool = await _promtool()
    async with FleetServer() as fleet:
        fleet.set("bad", status=503, body="down")
        db = Database(db_dsn, PoolSettings(min_size=1, max_size=4))
        async with db.acquire() as conn:
            await reset_app(conn)
            base = await seed_base(conn)
            await add_dlq(conn, 2, business_id=base["b1"], channel_id=base["c1"])
        monitor = build_services(Config.model_validate(_live_config(db_dsn, fleet)), db).monitor
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
                    and _value(s, "opswatch_alert_firing", rule="endpoint-down", scope="bad") == 1
                    and _value(s, "opswatch_dlq_pending") is not None
                    and _value(s, "opswatch_event_failures_total") is not None
                    and _value(s, "opswatch_outbox_depth", state="pending") is not None
                    and _value(s, "opswatch_event_loop_lag_seconds_count") is not None
                )

            samples = await _scrape_until(port, ready)
            # rows the app writes while opswatch watches are counted, whatever the window
            async with db.acquire() as conn:
                await add_dlq(conn, 3, business_id=base["b1"], channel_id=base["c2"])
                await add_events(conn, 2, business_id=base["b1"], event_name="sale.created")
                await conn.execute(
                    "UPDATE dead_letter_messages SET status = 'resolved', resolved_at = LOCALTIMESTAMP "
                    "WHERE channel_id = $1",
                    base["c1"],
                )
            counted = await _scrape_until(
                port,
                lambda s: (
                    _value(s, "opswatch_dlq_inflow_total") == 3
                    and _value(s, "opswatch_dlq_outflow_total") == 2
                    and _value(s, "opswatch_event_failures_by_event_total", event="sale.created") == 2
                ),
            )
            text = await _scrape_text(port)
        finally:
            await monitor.stop()
            await exporter.stop()
            await db.close()

    await _lint(promtool, text)
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
    assert _value(samples, "opswatch_dlq_pending") == 2
    assert _value(samples, "opswatch_dlq_pending_by_channel", channel_id=str(base["c1"])) == 2
    assert _value(samples, "opswatch_dlq_pending_by_channel", channel_id="other") == 0
    assert _value(samples, "opswatch_dlq_inflow_total") == 0  # the backlog at start is not a flow
    assert _value(samples, "opswatch_outbox_depth", state="dead") == 0
    lag = _value(samples, "opswatch_event_loop_lag_last_seconds")
    assert lag is not None and 0 <= lag < 1
    assert _value(counted, "opswatch_dlq_pending") == 3
    assert _value(counted, "opswatch_dlq_pending_by_channel", channel_id=str(base["c2"])) == 3
    assert _value(counted, "opswatch_event_failures_total") == 2


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def _agent(config: Path, port: int, duration: str) -> asyncio.subprocess.Process:
    """`opswatch run --headless` serving metrics on ``port``; its stderr piped."""
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", "cli.main", "run", "--headless", "--config", str(config),
        "--metrics-port", str(port), "--duration", duration,
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE, cwd=ROOT,
        env={**os.environ, "LOG_LEVEL": "WARNING"},
    )  # fmt: skip


async def test_run_headless_serves_metrics(db_dsn: str, tmp_path: Path) -> None:
    """`opswatch run --headless --metrics-port` end to end, and a taken port is one line, exit 2."""
    async with FleetServer() as fleet:
        config = tmp_path / "opswatch.yaml"
        data = {**_live_config(db_dsn, fleet), "logging": {"directory": str(tmp_path)}}
        config.write_text(yaml.safe_dump(data))
        port = _free_port()
        proc = await _agent(config, port, "20s")
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

            taken = await _agent(config, port, "5s")
            _, err = await asyncio.wait_for(taken.communicate(), 15)
            assert taken.returncode == 2
            assert f"opswatch: cannot serve metrics on 127.0.0.1:{port}" in err.decode()
            assert "Traceback" not in err.decode()
        finally:
            proc.terminate()
            _, err = await asyncio.wait_for(proc.communicate(), 15)
        assert proc.returncode == 0, err.decode()[-2000:]


# --------------------------------------------------------------------------- promtool


async def _promtool() -> str:
    """promtool (Debian package ``prometheus``), installed with apt-get when missing and root."""
    return await debian_tool("prometheus", "promtool")


async def _run(*command: str, stdin: str = "") -> tuple[int, str]:
    proc = await asyncio.create_subprocess_exec(
        *command, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    out, _ = await asyncio.wait_for(proc.communicate(stdin.encode()), 60)
    assert proc.returncode is not None
    return proc.returncode, out.decode(errors="replace")


async def _lint(promtool: str, text: str) -> None:
    code, out = await _run(promtool, "check", "metrics", stdin=text)
    assert (code, out.strip()) == (0, ""), out


async def test_promtool_lints_every_family_served_over_http() -> None:
    """The fixed snapshot has every family (summary quantiles, alerts, custom metrics, counters)."""
    promtool = await _promtool()
    custom = (MetricConfig(name="checkout_latency", sql="SELECT 1", unit="ms", description="Checkout p95"),)
    exporter = MetricsExporter(clock=lambda: NOW, custom_metrics=custom)
    exporter.on_snapshot(replace(_fixed_snapshot(), custom_metrics=(("checkout_latency", 250.0),)))
    exporter.observe_sample(ProbeSample("health", NOW, 5.0, 200, Outcome.OK))
    port = await exporter.start("127.0.0.1", 0)
    try:
        text = await _scrape_text(port)
    finally:
        await exporter.stop()
    assert "# TYPE opswatch_endpoint_window_latency_seconds summary" in text
    await _lint(promtool, text)

    # and the lint does catch what this exporter used to serve
    bad = """# HELP opswatch_endpoint_window_latency_seconds Latency quantiles
# TYPE opswatch_endpoint_window_latency_seconds gauge
opswatch_endpoint_window_latency_seconds{endpoint="health",quantile="0.5"} 0.01
"""
    code, out = await _run(promtool, "check", "metrics", stdin=bad)
    assert code != 0 and "quantile" in out


def test_custom_metrics_are_one_family_each_in_base_units() -> None:
    custom = (
        MetricConfig(name="checkout_latency", sql="SELECT 1", unit="ms", description="Checkout latency"),
        MetricConfig(name="Auth_Failures", sql="SELECT 1", unit="%", description="Failed logins"),
        MetricConfig(name="carts", sql="SELECT 1", unit="carts/min"),
    )
    exporter = MetricsExporter(clock=lambda: NOW, custom_metrics=custom)
    values = (("checkout_latency", 250.0), ("Auth_Failures", 12.5), ("carts", 7.0), ("unconfigured", 1.0))
    exporter.on_snapshot(replace(_fixed_snapshot(), custom_metrics=values))
    families = {f.name: f for f in text_string_to_metric_families(exporter.render()[0].decode())}
    latency = families["opswatch_custom_checkout_latency_seconds"]
    assert (latency.type, latency.documentation) == ("gauge", "Checkout latency")
    assert latency.samples[0].value == 0.25
    assert families["opswatch_custom_auth_failures_ratio"].samples[0].value == 0.125
    assert families["opswatch_custom_carts"].documentation == "Custom SQL metric carts (unit: carts/min)"
    assert families["opswatch_custom_unconfigured"].samples[0].value == 1.0
    assert "opswatch_custom_metric" not in families


def _alerts_snapshot() -> Snapshot:
    def alert(rule: str, scope: str, state: str) -> AlertView:
        return AlertView(rule=rule, scope=scope, state=state, severity=Severity.CRITICAL, value=1.0,
                         threshold=1.0, since=NOW, summary=rule)  # fmt: skip

    alerts = (replace(alert("api-down", "sales", "firing"), acknowledged_by="ana"),
              alert("api-down", "health", "resolved"), alert("db-slow", "", "flapping"),
              alert("dlq-old", "", "pending"))  # fmt: skip
    return Snapshot(taken_at=NOW, alerts=alerts)


def test_a_resolved_alert_is_not_firing() -> None:
    exporter = MetricsExporter(clock=lambda: NOW)
    exporter.on_snapshot(_alerts_snapshot())
    samples = _samples(exporter.render()[0].decode())
    assert _value(samples, "opswatch_alert_firing", rule="api-down", scope="sales") == 1
    assert _value(samples, "opswatch_alert_firing", rule="api-down", scope="health") == 0
    assert _value(samples, "opswatch_alert_firing", rule="db-slow") == 1
    assert _value(samples, "opswatch_alert_firing", rule="dlq-old") == 0
    assert _value(samples, "opswatch_alert_state", rule="api-down", scope="health", state="resolved") == 1
    assert _value(samples, "opswatch_alert_state", rule="api-down", scope="health", state="firing") == 0
    assert _value(samples, "opswatch_alerts_firing", severity="critical") == 2


async def test_dashboard_active_alerts_and_the_rules_see_only_firing_alerts(tmp_path: Path) -> None:
    """The dashboard's "Active alerts" query and the rule file, evaluated by promtool on the series
    the exporter serves: the resolved and the pending alert are not listed."""
    promtool = await _promtool()
    exporter = MetricsExporter(clock=lambda: NOW)
    exporter.on_snapshot(_alerts_snapshot())
    series = [
        {"series": f"{s.name}{{{_labels({**s.labels, 'job': 'opswatch', 'instance': 'a:9464'})}}}",
         "values": f"{s.value:g}x40"}
        for s in _samples(exporter.render()[0].decode())
        if s.name in ("opswatch_alert_state", "opswatch_alert_firing", "opswatch_alert_acknowledged")
    ]  # fmt: skip
    dashboard = json.loads((ROOT / "examples" / "grafana-dashboard.json").read_text())
    [panel] = [p for p in dashboard["panels"] if p.get("title") == "Active alerts"]
    expr = panel["targets"][0]["expr"].replace("$job", ".*").replace("$instance", ".*")
    listed = [
        {"labels": f"opswatch_alert_state{{{_labels(labels)}}}", "value": 1}
        for labels in (
            {"instance": "a:9464", "job": "opswatch", "rule": "api-down", "scope": "sales",
             "severity": "critical", "state": "firing"},
            {"instance": "a:9464", "job": "opswatch", "rule": "db-slow", "scope": "",
             "severity": "critical", "state": "flapping"},
        )
    ]  # fmt: skip
    rules = ROOT / "examples" / "opswatch-rules.yml"
    # api-down on sales is acknowledged; db-slow is not, and escalates after 30 minutes
    escalated = {
        "exp_labels": {"job": "opswatch", "instance": "a:9464", "rule": "db-slow", "severity": "critical"},
        "exp_annotations": {
            "summary": "opswatch alert db-slow has fired for 30 minutes without an acknowledgement",
            "description": "Escalate: nobody acknowledged it in opswatch (`opswatch alert ack`). "
            "opswatch_alert_firing is 0 once the alert resolves.",
        },
    }  # fmt: skip
    test = {
        "rule_files": [str(rules)],
        "evaluation_interval": "1m",
        "tests": [{
            "interval": "1m",
            "input_series": series,
            "promql_expr_test": [{"expr": expr, "eval_time": "5m", "exp_samples": listed}],
            "alert_rule_test": [
                {"alertname": "OpswatchCriticalAlertUnacknowledged", "eval_time": "20m", "exp_alerts": []},
                {"alertname": "OpswatchCriticalAlertUnacknowledged", "eval_time": "35m",
                 "exp_alerts": [escalated]},
            ],
        }],
    }  # fmt: skip
    path = tmp_path / "active-alerts-test.yml"
    path.write_text(yaml.safe_dump(test))
    code, out = await _run(promtool, "test", "rules", str(path))
    assert code == 0, out


def _labels(labels: dict[str, str]) -> str:
    return ", ".join(f'{k}="{v}"' for k, v in sorted(labels.items()))


async def test_event_name_labels_are_bounded(db_dsn: str) -> None:
    """Event names come from the app's rows: the first MAX_EVENT_NAMES keep a series, then "other"."""
    db = Database(db_dsn, PoolSettings(min_size=1, max_size=2))
    try:
        async with db.acquire() as conn:
            await reset_app(conn)
            base = await seed_base(conn)
            await add_events(conn, 4, business_id=base["b1"], event_name="before.start")
        svc = TriageService(db, Config(), actor="ops")
        assert (await svc.event_summary()).created_total == 0  # the first look is the baseline
        async with db.acquire() as conn:
            for n in range(MAX_EVENT_NAMES + 5):
                await add_events(conn, 1, business_id=base["b1"], event_name=f"sale.step{n:02d}")
            await add_events(conn, 2, business_id=base["b1"], event_name="sale.step00")
        summary = await svc.event_summary()
    finally:
        await db.close()
    by_event = {c.key: c.count for c in summary.created_by_event}
    assert summary.created_total == MAX_EVENT_NAMES + 7
    assert len(by_event) == MAX_EVENT_NAMES + 1 and by_event["other"] == 5 and by_event["sale.step00"] == 3
    exporter = MetricsExporter(clock=lambda: NOW)
    exporter.on_snapshot(Snapshot(taken_at=NOW, events=summary))
    samples = _samples(exporter.render()[0].decode())
    labelled = [s for s in samples if s.name == "opswatch_event_failures_by_event_total"]
    assert len(labelled) == MAX_EVENT_NAMES + 1
    assert sum(s.value for s in labelled) == _value(samples, "opswatch_event_failures_total")
