"""PagerDuty Events API v2: exact events, a local sink speaking the API shape, the outbox
guarantees through the real engine, and (for all three new channels at once) exactly-once
delivery from two opswatch instances on one database."""

from __future__ import annotations

import asyncio
import json
from collections import deque
from collections.abc import AsyncIterator
from datetime import timedelta
from functools import partial
from typing import Any

import httpx
import pytest_asyncio
from aiohttp import web

from core.alerting import AlertActions, MetricSample
from core.config import Config, PagerDutyConfig
from core.db import Database
from core.notify.base import Notification
from core.notify.delivery import Deliverer
from core.notify.outbox import list_outbox
from core.notify.pagerduty import PagerDutyNotifier, render_pagerduty
from core.notify.registry import build_notifiers, send_timeout
from tests.alerts import API_DOWN_RULE, T0, Clock, Rig, alert_info, instances, play
from tests.servers import WebhookSink, _Server
from tests.smtp_server import SmtpSink
from tests.waiting import arrivals

ROUTING_KEY = "R0ut1ngK3ySecretValue0123456789a"  # 32 characters, like a real integration key
info = partial(alert_info, runbook="Check the POS backend process")
assert len(ROUTING_KEY) == 32


class PagerDutySink(_Server):
    """``POST /v2/enqueue`` validated like PagerDuty: 202 + dedup_key, or 400 ``invalid event``."""

    def __init__(self) -> None:
        super().__init__()
        self.events: list[dict[str, Any]] = []  # accepted events (routing key included)
        self.requests = 0
        self.replies: deque[tuple[int, dict[str, str], str]] = deque()
        self.arrived = asyncio.Condition()
        self.app.router.add_post("/v2/enqueue", self._handle)

    @property
    def url(self) -> str:
        return f"{self.base_url}/v2/enqueue"

    def script(self, status: int, body: str = "", headers: dict[str, str] | None = None) -> None:
        self.replies.append((status, headers or {}, body))

    @staticmethod
    def problems(event: Any) -> list[str]:
        if not isinstance(event, dict):
            return ["Event object is not an object"]
        errors = []
        key = event.get("routing_key")
        if not isinstance(key, str) or len(key) != 32:
            errors.append("Length of 'routing_key' is incorrect (should be 32 characters)")
        action = event.get("event_action")
        if action not in ("trigger", "acknowledge", "resolve"):
            errors.append("'event_action' is invalid (must be one of trigger, acknowledge or resolve)")
        dedup = event.get("dedup_key")
        if dedup is not None and (not isinstance(dedup, str) or len(dedup) > 255):
            errors.append("'dedup_key' must be a string of at most 255 characters")
        if action in ("acknowledge", "resolve") and not dedup:
            errors.append("'dedup_key' is required")
        if action == "trigger":
            payload = event.get("payload")
            if not isinstance(payload, dict):
                return [*errors, "'payload' is missing or invalid"]
            summary = payload.get("summary")
            if not isinstance(summary, str) or not summary or len(summary) > 1024:
                errors.append("'payload.summary' is missing or too long")
            if not payload.get("source"):
                errors.append("'payload.source' is missing")
            if payload.get("severity") not in ("critical", "error", "warning", "info"):
                errors.append("'payload.severity' is invalid")
            for name in ("source", "component", "group", "class"):
                value = payload.get(name)
                if value is not None and (not isinstance(value, str) or len(value) > 255):
                    errors.append(f"'payload.{name}' must be a string of at most 255 characters")
        if len(json.dumps(event).encode()) >= 512 * 1024:
            errors.append("Event is larger than 512 KB")
        return errors

    async def _handle(self, request: web.Request) -> web.Response:
        self.requests += 1
        if self.replies:
            status, headers, body = self.replies.popleft()
            return web.Response(status=status, headers=headers, text=body)
        try:
            event = await request.json()
        except ValueError:
            event = None
        errors = self.problems(event)
        if errors:
            reply = {"status": "invalid event", "message": "Event object is invalid", "errors": errors}
            return web.json_response(reply, status=400)
        async with self.arrived:
            self.events.append(event)
            self.arrived.notify_all()
        reply = {
            "status": "success",
            "message": "Event processed",
            "dedup_key": event.get("dedup_key") or "gen",
        }
        return web.json_response(reply, status=202)

    async def wait_for(self, count: int, within: float = 10.0) -> list[dict[str, Any]]:
        return await arrivals(self.arrived, self.events, count, within)

    async def __aenter__(self) -> PagerDutySink:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()


# --------------------------------------------------------------------------- rendering


def test_trigger_event_exact() -> None:
    [event] = render_pagerduty(Notification("firing", "critical", (info(),), "firing:x", T0))
    assert event.suffix == "opswatch/api-down/checkout"
    assert event.payload == {
        "event_action": "trigger",
        "dedup_key": "opswatch/api-down/checkout",
        "payload": {
            "summary": "CRITICAL: api-down on checkout — Endpoint down for more than 5 minutes. "
            "Value 5m 12s (threshold > 5m)",
            "severity": "critical",
            "source": "checkout",
            "component": "api-down",
            "class": "endpoint.down_for",
            "timestamp": "2025-03-01T12:00:00+00:00",
            "custom_details": {
                "kind": "firing",
                "rule": "api-down",
                "scope": "checkout",
                "description": "Endpoint down for more than 5 minutes",
                "value": "5m 12s",
                "threshold": "> 5m",
                "since": "2025-03-01 12:00:00 UTC",
                "fired_at": "2025-03-01 12:00:00 UTC",
                "runbook": "Check the POS backend process",
            },
        },
        "client": "opswatch",
    }
    assert "routing_key" not in json.dumps(event.payload)


def test_dedup_key_is_per_alert_and_stable_across_kinds() -> None:
    group = tuple(info(scope=f"ep{i}", fired_at=T0 + timedelta(seconds=i)) for i in range(3))
    triggers = render_pagerduty(Notification("firing", "critical", group, "grouped:x", T0))
    keys = [e.payload["dedup_key"] for e in triggers]
    assert keys == ["opswatch/api-down/ep0", "opswatch/api-down/ep1", "opswatch/api-down/ep2"]
    assert [e.payload["payload"]["summary"].split(" — ")[0] for e in triggers] == [
        "CRITICAL: api-down on ep0",
        "CRITICAL: api-down on ep1",
        "CRITICAL: api-down on ep2",
    ]
    resolved = render_pagerduty(Notification("resolved", "critical", group[1:], "resolved:y", T0))
    assert [e.payload for e in resolved] == [
        {"event_action": "resolve", "dedup_key": "opswatch/api-down/ep1"},
        {"event_action": "resolve", "dedup_key": "opswatch/api-down/ep2"},
    ]
    later = info(scope="ep0", fired_at=T0 + timedelta(hours=1), previous_severity="warning")
    for kind in ("repeat", "escalated", "flapping"):
        [event] = render_pagerduty(Notification(kind, "critical", (later,), f"{kind}:z", T0))
        assert event.payload["dedup_key"] == "opswatch/api-down/ep0"
    [esc] = render_pagerduty(Notification("escalated", "critical", (later,), "e", T0))
    assert esc.payload["payload"]["summary"].startswith("CRITICAL (escalated from WARNING): api-down on ep0")
    unscoped = render_pagerduty(Notification("firing", "critical", (info(scope=""),), "k", T0))
    assert unscoped[0].payload["dedup_key"] == "opswatch/api-down"
    assert unscoped[0].payload["payload"]["source"] == "opswatch"
    long = render_pagerduty(Notification("firing", "critical", (info(scope="x" * 300),), "k", T0))
    assert len(long[0].payload["dedup_key"]) <= 255


def test_test_message_triggers_and_resolves_its_own_alert() -> None:
    [test] = render_pagerduty(Notification("test", "critical", (), "test:abc", T0, note="hi"))
    trigger, resolve = test.payload["events"]  # one outbox row: the two are sent in order
    assert trigger["event_action"] == "trigger" and resolve["event_action"] == "resolve"
    assert trigger["dedup_key"] == resolve["dedup_key"]
    assert trigger["dedup_key"].startswith("opswatch/test/")
    assert trigger["payload"]["summary"] == "TEST (CRITICAL): opswatch test message — hi"
    assert PagerDutySink.problems({"routing_key": ROUTING_KEY, **trigger}) == []


def test_routes_only_configured_severities() -> None:
    pd = PagerDutyNotifier(PagerDutyConfig.model_validate({"routing_key": ROUTING_KEY}))
    assert pd.routes("critical") == ("pagerduty:default",)
    assert pd.routes("warning") == pd.routes("info") == ()
    both = PagerDutyNotifier(
        PagerDutyConfig.model_validate({"routing_key": ROUTING_KEY, "severities": ["warning", "critical"]})
    )
    assert both.routes("warning") == ("pagerduty:default",)
    assert PagerDutyNotifier(PagerDutyConfig()).routes("critical") == ()


# --------------------------------------------------------------------------- sending


@pytest_asyncio.fixture
async def pd_sink() -> AsyncIterator[PagerDutySink]:
    async with PagerDutySink() as server:
        yield server


@pytest_asyncio.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient() as client:
        yield client


def pd_config(sink: PagerDutySink, **kw: Any) -> PagerDutyConfig:
    return PagerDutyConfig.model_validate({"routing_key": ROUTING_KEY, "url": sink.url, "timeout": 2} | kw)


async def test_send_adds_the_routing_key_and_classifies_replies(
    pd_sink: PagerDutySink, http: httpx.AsyncClient
) -> None:
    pd = PagerDutyNotifier(pd_config(pd_sink), http)
    [event] = pd.render(Notification("firing", "critical", (info(),), "k", T0))
    ok = await pd.send("pagerduty:default", event.payload)
    assert (ok.ok, ok.status, ok.extra) == (True, 202, {"dedup_key": "opswatch/api-down/checkout"})
    assert pd_sink.events[0]["routing_key"] == ROUTING_KEY
    assert pd_sink.events[0]["dedup_key"] == "opswatch/api-down/checkout"

    pd_sink.script(429, '{"status":"throttle event","message":"Requests for this service are throttled"}',
                   {"Retry-After": "3"})  # fmt: skip
    pd_sink.script(502, "<html>bad gateway</html>")
    throttled = await pd.send("pagerduty:default", event.payload)
    assert (throttled.status, throttled.retry_after, throttled.permanent) == (429, 3.0, False)
    assert throttled.error == "HTTP 429: throttle event: Requests for this service are throttled"
    bad_gateway = await pd.send("pagerduty:default", event.payload)
    assert (bad_gateway.status, bad_gateway.permanent) == (502, False)

    invalid = await pd.send("pagerduty:default", {"event_action": "explode"})
    assert (invalid.status, invalid.permanent) == (400, True)
    assert invalid.error == (
        "HTTP 400: invalid event: Event object is invalid: "
        "'event_action' is invalid (must be one of trigger, acknowledge or resolve)"
    )
    missing = await PagerDutyNotifier(PagerDutyConfig(), http).send("pagerduty:default", event.payload)
    assert missing.permanent and missing.error == "no PagerDuty routing key configured for pagerduty:default"


# --------------------------------------------------------------------------- through the outbox

API_DOWN = API_DOWN_RULE
SLOW = {"name": "slow", "metric": "endpoint.latency_ms", "warning": 2000}
OUTBOX = {"max_attempts": 4, "backoff_initial": 0.05, "backoff_max": 0.1, "poll_interval": 0.05}


def engine_config(notifications: dict[str, Any], *, group_wait: float = 0) -> Config:
    return Config.model_validate(
        {
            "endpoints": [{"name": f"ep{i}", "url": f"http://127.0.0.1:9/ep{i}"} for i in range(4)],
            "alerts": {"evaluation_interval": 0.2, "group_wait": group_wait, "rules": [API_DOWN, SLOW]},
            "notifications": notifications | {"outbox": OUTBOX},
        }
    )


def down(*eps: int, seconds: float = 30) -> list[MetricSample]:
    return [MetricSample("endpoint.down_for", f"ep{i}", seconds) for i in eps]


def up(*eps: int) -> list[MetricSample]:
    return [MetricSample("endpoint.down_for", f"ep{i}", 0.0) for i in eps]


def slow(*eps: int) -> list[MetricSample]:
    return [MetricSample("endpoint.latency_ms", f"ep{i}", 3000.0) for i in eps]


async def stored_text(db: Database) -> str:
    rows = await db.fetch("SELECT payload::text, coalesce(last_error, '') FROM opswatch.notification_outbox")
    return "\n".join(f"{r[0]} {r[1]}" for r in rows)


async def test_trigger_and_resolve_through_engine_and_outbox(db: Database, pd_sink: PagerDutySink) -> None:
    config = engine_config({"pagerduty": {"routing_key": ROUTING_KEY, "url": pd_sink.url, "timeout": 2}})
    assert set(build_notifiers(config)) == {"pagerduty"}
    rig = Rig(db, config)
    try:
        assert await rig.step(0, [*down(0), *slow(1)]) == 1  # the warning does not reach PagerDuty
        assert await rig.step(10, [*down(0, seconds=40), *slow(1)]) == 0  # still firing: nothing new
        assert await rig.step(20, up(0)) == 1
    finally:
        await rig.close()
    trigger, resolve = pd_sink.events
    assert (trigger["event_action"], trigger["dedup_key"]) == ("trigger", "opswatch/api-down/ep0")
    assert (
        trigger["payload"]["summary"]
        == "CRITICAL: api-down on ep0 — Endpoint down. Value 30s (threshold > 0s)"
    )
    assert resolve == {
        "routing_key": ROUTING_KEY,
        "event_action": "resolve",
        "dedup_key": "opswatch/api-down/ep0",
    }
    rows = [(e.route, e.kind, e.status, e.last_status) for e in reversed(await list_outbox(db))]
    assert rows == [
        ("pagerduty:default", "firing", "delivered", 202),
        ("pagerduty:default", "resolved", "delivered", 202),
    ]
    assert ROUTING_KEY not in await stored_text(db)


async def test_acknowledging_in_opswatch_acknowledges_in_pagerduty_but_not_in_slack(
    db: Database, pd_sink: PagerDutySink
) -> None:
    async with WebhookSink() as slack:
        config = engine_config({
            "pagerduty": {"routing_key": ROUTING_KEY, "url": pd_sink.url, "timeout": 2},
            "slack": {"webhooks": {"critical": slack.url("crit")}, "timeout": 2},
        })  # fmt: skip
        rig = Rig(db, config)
        actions = AlertActions(db, config, actor="alice")
        try:
            await rig.step(0, down(0, 1))
            assert await rig.step(0, down(0, 1)) == 0
            assert (await actions.acknowledge("api-down", "ep0")).outcome == "applied"
            assert (await actions.acknowledge("api-down", "ep0")).outcome == "skipped"  # once
            assert await rig.deliverer.deliver_due() == 1
            assert await rig.step(10, [*up(0), *down(1, seconds=40)]) == 2  # resolved: PD + Slack
        finally:
            await rig.close()
    assert [(e["event_action"], e["dedup_key"]) for e in pd_sink.events] == [
        ("trigger", "opswatch/api-down/ep0"),
        ("trigger", "opswatch/api-down/ep1"),
        ("acknowledge", "opswatch/api-down/ep0"),
        ("resolve", "opswatch/api-down/ep0"),
    ]
    assert pd_sink.events[2] == {
        "routing_key": ROUTING_KEY,
        "event_action": "acknowledge",
        "dedup_key": "opswatch/api-down/ep0",
    }
    assert [r.body["blocks"][0]["text"]["text"] for r in slack.received] == [
        ":red_circle: CRITICAL: 2 alerts firing",
        ":white_check_mark: RESOLVED: api-down on ep0",
    ]
    audit = await db.fetch(
        "SELECT outcome, detail FROM opswatch.audit_log WHERE action = 'alert.ack' ORDER BY id"
    )
    details = [json.loads(r["detail"]) if isinstance(r["detail"], str) else r["detail"] for r in audit]
    assert [(r["outcome"], d["notifications"]) for r, d in zip(audit, details, strict=True)] == [
        ("applied", 1),
        ("skipped", 0),
    ]


async def test_500_then_202_is_retried_and_400_is_dead_at_once_without_leaking_the_key(
    db: Database, pd_sink: PagerDutySink, logs: list[str]
) -> None:
    config = engine_config({"pagerduty": {"routing_key": ROUTING_KEY, "url": pd_sink.url, "timeout": 2}})
    rig = Rig(db, config)
    pd_sink.script(500, f'{{"status":"error","message":"internal error for {ROUTING_KEY}"}}')
    try:
        assert await rig.step(0, down(0)) == 0
        [row] = await list_outbox(db)
        assert (row.status, row.attempts, row.last_status) == ("pending", 1, 500)
        assert row.last_error == "HTTP 500: error: internal error for ***"
        await asyncio.sleep(0.12)  # time under test: the retry is due once its backoff has passed
        assert await rig.deliverer.deliver_due() == 1

        # A 400 is permanent: dead at once (no retries), and PagerDuty echoing the key does not leak it.
        body = {
            "status": "invalid event",
            "message": "Event object is invalid",
            "errors": [f"key {ROUTING_KEY}"],
        }
        pd_sink.script(400, json.dumps(body))
        assert await rig.step(30, up(0)) == 0
        [dead] = await list_outbox(db, "dead")
        assert (dead.kind, dead.attempts, dead.last_status) == ("resolved", 1, 400)
        assert dead.last_error == "HTTP 400: invalid event: Event object is invalid: key ***"
        assert (await AlertActions(db, config, actor="alice").resend(dead.id)).outcome == "applied"
        assert await rig.deliverer.deliver_due() == 1
    finally:
        await rig.close()
    assert [e["event_action"] for e in pd_sink.events] == ["trigger", "resolve"]
    assert pd_sink.requests == 4
    assert any("dead after 1 attempts" in line for line in logs)
    assert any("retry in" in line for line in logs)
    assert all(ROUTING_KEY not in line for line in logs)
    assert ROUTING_KEY not in await stored_text(db)


async def test_connection_errors_never_show_the_key(db: Database, logs: list[str]) -> None:
    url = f"http://127.0.0.1:9/v2/enqueue?token={ROUTING_KEY}"
    config = engine_config({"pagerduty": {"routing_key": ROUTING_KEY, "url": url, "timeout": 1}})
    rig = Rig(db, config)
    try:
        assert await rig.step(0, down(0)) == 0
    finally:
        await rig.close()
    [row] = await list_outbox(db)
    assert row.status == "pending" and row.last_error is not None
    assert row.last_error.startswith("connection failed")
    assert all(ROUTING_KEY not in line for line in logs)
    assert ROUTING_KEY not in await stored_text(db)


async def test_alert_test_message_triggers_then_resolves(db: Database, pd_sink: PagerDutySink) -> None:
    config = engine_config({"pagerduty": {"routing_key": ROUTING_KEY, "url": pd_sink.url, "timeout": 2}})
    actions = AlertActions(db, config, actor="bob")
    assert await actions.send_test("warning") == ()  # PagerDuty takes critical only
    ids = await actions.send_test("critical")
    deliverer = Deliverer(db, config, instance_id="cli")
    try:
        assert await deliverer.deliver_due(only_ids=ids) == 1  # the path of `opswatch alert test`
    finally:
        await deliverer.stop()
    trigger, resolve = pd_sink.events
    assert (trigger["event_action"], resolve["event_action"]) == ("trigger", "resolve")
    assert trigger["dedup_key"] == resolve["dedup_key"]
    assert trigger["payload"]["summary"].startswith(
        "TEST (CRITICAL): opswatch test message — Test message sent by bob"
    )


async def test_all_channels_once_from_two_instances(
    db_dsn: str, db: Database, pd_sink: PagerDutySink
) -> None:
    """PagerDuty, email and a webhook behind the same outbox: two instances, each message sent once."""
    async with SmtpSink() as smtp, WebhookSink() as hook:
        config = engine_config(
            {
                "pagerduty": {"routing_key": ROUTING_KEY, "url": pd_sink.url, "timeout": 2},
                "email": {
                    "smtp_host": "127.0.0.1",
                    "smtp_port": smtp.port,
                    "starttls": False,
                    "sender": "opswatch@example.com",
                    "recipients": ["oncall@example.com"],
                    "timeout": 2,
                },
                "webhook": [{"name": "ops", "url": hook.url("hook/ops"), "timeout": 2}],
            },
            group_wait=0.5,
        )
        assert set(build_notifiers(config)) == {"pagerduty", "email", "webhook"}
        assert send_timeout(config) == 2
        clock = Clock()
        async with instances(db_dsn, config, clock) as engines:
            timeline = [
                (0, [*down(0, 1, 2), *slow(3)]),
                (0.6, [*down(0, 1, 2), *slow(3)]),
                (1, [*down(0, 1, 2), *slow(3)]),
                (30, [*up(0, 1, 2), *slow(3)]),
            ]
            await play(engines, clock, timeline)
            await pd_sink.wait_for(6)
            await smtp.wait_for(3)
            await hook.wait_for(3)
            await asyncio.sleep(0.3)  # time under test: would catch a late duplicate
    assert sum(e.is_leader for e in engines) == 1
    assert [(e["event_action"], e["dedup_key"]) for e in pd_sink.events] == [
        ("trigger", "opswatch/api-down/ep0"),
        ("trigger", "opswatch/api-down/ep1"),
        ("trigger", "opswatch/api-down/ep2"),
        ("resolve", "opswatch/api-down/ep0"),
        ("resolve", "opswatch/api-down/ep1"),
        ("resolve", "opswatch/api-down/ep2"),
    ]
    subjects = sorted(m.message["Subject"].split(" - ")[0] for m in smtp.mails)
    assert subjects == [
        "[opswatch] CRITICAL firing: 3 alerts",
        "[opswatch] CRITICAL resolved: 3 alerts",
        "[opswatch] WARNING firing: 1 alert",
    ]
    bodies = sorted((r.body["severity"], r.body["kind"], len(r.body["alerts"])) for r in hook.received)
    assert bodies == [("critical", "firing", 3), ("critical", "resolved", 3), ("warning", "firing", 1)]
    assert all(r.path == "/hook/ops" for r in hook.received)
    assert len(smtp.mails) == 3 and len(hook.received) == 3 and pd_sink.requests == 6
