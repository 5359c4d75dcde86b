"""Generic JSON webhooks: the payload, headers, routing per hook, and the outbox guarantees
through the real engine against a local sink."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from functools import partial

import httpx

from core.alerting import AlertActions, AlertEngine, MetricSample
from core.config import Config, WebhookConfig
from core.db import Database
from core.notify.base import Notification
from core.notify.delivery import Deliverer
from core.notify.outbox import list_outbox
from core.notify.registry import build_notifiers
from core.notify.webhook import WebhookNotifier, idempotency_key, render_webhook
from tests.alerts import T0, alert_info
from tests.servers import ScriptedReply, WebhookSink
from tests.waiting import until

TOKEN = "whk-Bearer-T0ken-abcdef123456"
info = partial(alert_info, runbook=None)


def test_payload_exact() -> None:
    n = Notification("firing", "critical", (info(),), "firing:api-down/checkout/1", T0)
    assert render_webhook(n) == {
        "version": 1,
        "kind": "firing",
        "severity": "critical",
        "alerts": [
            {
                "id": "opswatch/api-down/checkout",
                "rule": "api-down",
                "scope": "checkout",
                "severity": "critical",
                "metric": "endpoint.down_for",
                "value": 312.0,
                "value_text": "5m 12s",
                "threshold_text": "> 5m",
                "description": "Endpoint down for more than 5 minutes",
                "runbook": None,
                "started_at": "2025-03-01T12:00:00+00:00",
                "fired_at": "2025-03-01T12:00:00+00:00",
                "resolved_at": None,
                "previous_severity": None,
                "transitions": 0,
            }
        ],
        "alert_count": 1,
        "text": "CRITICAL: api-down on checkout\n\nEndpoint down for more than 5 minutes\n\n"
        "Severity:  Critical\nWhere:     checkout\nValue:     5m 12s\nThreshold: > 5m\n"
        "Since:     2025-03-01 12:00:00 UTC\n",
        "key": "firing:api-down/checkout/1",
        "created_at": "2025-03-01T12:00:00+00:00",
    }
    grouped = render_webhook(
        Notification("resolved", "warning", (info(value=float("nan")), info(scope="b")), "k", T0)
    )
    assert grouped["alerts"][0]["value"] is None and len(grouped["alerts"]) == 2
    assert grouped["text"].startswith("RESOLVED: 2 alerts\n\n- api-down on checkout: 5m 12s, resolved")


def test_routes_per_hook_and_severity() -> None:
    hooks = [
        WebhookConfig.model_validate({"name": "ops", "url": "http://127.0.0.1:9/a"}),
        WebhookConfig.model_validate({"name": "info", "url": "http://127.0.0.1:9/b", "severities": ["info"]}),
    ]
    notifier = WebhookNotifier(hooks)
    assert notifier.routes("critical") == notifier.routes("warning") == ("webhook:ops",)
    assert notifier.routes("info") == ("webhook:info",)
    assert WebhookNotifier([]).routes("critical") == ()


async def test_send_posts_with_headers_and_hides_secrets(sink: WebhookSink) -> None:
    hook = WebhookConfig.model_validate(
        {
            "name": "ops",
            "url": sink.url(f"in/{TOKEN}"),
            "headers": {"Authorization": f"Bearer {TOKEN}", "X-Team": "pos"},
            "timeout": 2,
        }
    )
    async with httpx.AsyncClient() as http:
        notifier = WebhookNotifier([hook], http)
        payload = notifier.render(Notification("test", "info", (), "test:1", T0, note="hi"))[0].payload
        assert (await notifier.send("webhook:ops", payload)).ok
        sink.script(f"in/{TOKEN}", ScriptedReply(401, body=f"bad token {TOKEN} for {hook.url}"))
        denied = await notifier.send("webhook:ops", payload)
        missing = await notifier.send("webhook:gone", payload)
    [got] = sink.delivered
    assert got.body == payload and got.body["text"] == "TEST (INFO): opswatch test message\n\nhi\n"
    assert got.headers["Authorization"] == f"Bearer {TOKEN}" and got.headers["X-Team"] == "pos"
    assert got.headers["Idempotency-Key"] == idempotency_key("test:1", "webhook:ops")
    assert idempotency_key("test:1", "webhook:ops") == "586d45c9-c51e-5f64-997f-a9f60e6824c3"
    assert (denied.status, denied.permanent) == (401, True)
    assert denied.error == "HTTP 401: bad token *** for webhook:ops"
    assert missing.permanent and missing.error == "no webhook configured for webhook:gone"


def engine_config(sink: WebhookSink) -> Config:
    return Config.model_validate(
        {
            "endpoints": [{"name": f"ep{i}", "url": f"http://127.0.0.1:9/ep{i}"} for i in range(2)],
            "alerts": {
                "evaluation_interval": 0.2,
                "group_wait": 0,
                "rules": [
                    {"name": "api-down", "metric": "endpoint.down_for", "critical": 0, "description": "Down"},
                    {"name": "slow", "metric": "endpoint.latency_ms", "warning": 2000},
                ],
            },
            "notifications": {
                "webhook": [
                    {
                        "name": "pager",
                        "url": sink.url(f"pager/{TOKEN}"),
                        "severities": ["critical"],
                        "headers": {"Authorization": f"Bearer {TOKEN}"},
                        "timeout": 2,
                    },
                    {"name": "chat", "url": sink.url("chat"), "timeout": 2},
                ],
                # a retry waits 0.25-0.5 s: never inside the pass that failed, on a busy machine too
                "outbox": {"max_attempts": 3, "backoff_initial": 0.5, "backoff_max": 0.5},
            },
        }
    )


async def test_firing_resolved_retry_dead_and_resend_through_the_outbox(
    db: Database, sink: WebhookSink, logs: list[str]
) -> None:
    config = engine_config(sink)
    assert set(build_notifiers(config)) == {"webhook"}
    t0 = datetime.now(UTC).replace(microsecond=0)
    now = t0
    engine = AlertEngine(db, config, instance_id="one", clock=lambda: now)
    deliverer = Deliverer(db, config, instance_id="one")

    async def step(seconds: float, samples: list[MetricSample]) -> int:
        nonlocal now
        now = t0 + timedelta(seconds=seconds)
        await engine.evaluate(samples, now)
        return await deliverer.deliver_due()

    sink.script(f"pager/{TOKEN}", ScriptedReply(500, body=f"oops {TOKEN}"))
    try:
        samples = [
            MetricSample("endpoint.down_for", "ep0", 30.0),
            MetricSample("endpoint.latency_ms", "ep1", 3000.0),
        ]
        assert await step(0, samples) == 2  # pager fails once; chat gets the critical and the warning
        retried: list[int] = []

        async def retry_sent() -> int:
            retried.append(await deliverer.deliver_due())
            return retried[-1]

        await until(retry_sent, what="the failed POST retried, once its backoff has passed")
        assert retried[-1] == 1
        sink.script("chat", ScriptedReply(404, body="no such hook"))
        assert await step(10, [MetricSample("endpoint.down_for", "ep0", 0.0)]) == 1
        [dead] = await list_outbox(db, "dead")
        assert (dead.route, dead.kind, dead.attempts, dead.last_error) == (
            "webhook:chat",
            "resolved",
            1,
            "HTTP 404: no such hook",
        )
        assert (await AlertActions(db, config, actor="alice").resend(dead.id)).outcome == "applied"
        assert await deliverer.deliver_due() == 1
    finally:
        await deliverer.stop()
    pager = [r for r in sink.delivered if r.path == f"/pager/{TOKEN}"]
    chat = [r for r in sink.delivered if r.path == "/chat"]
    assert [(r.body["kind"], r.body["severity"]) for r in pager] == [
        ("firing", "critical"),
        ("resolved", "critical"),
    ]
    assert sorted((r.body["kind"], r.body["severity"]) for r in chat) == [
        ("firing", "critical"),
        ("firing", "warning"),
        ("resolved", "critical"),
    ]
    assert all(r.headers["Authorization"] == f"Bearer {TOKEN}" for r in pager)
    assert all("Authorization" not in r.headers for r in chat)
    [failed] = [e for e in await list_outbox(db) if e.route == "webhook:pager" and e.kind == "firing"]
    assert (failed.status, failed.attempts) == ("delivered", 2)
    stored = await db.fetch(
        "SELECT payload::text AS p, coalesce(last_error, '') AS e FROM opswatch.notification_outbox"
    )
    assert all(TOKEN not in r["p"] and TOKEN not in r["e"] for r in stored)
    assert any("retry in" in line for line in logs) and all(TOKEN not in line for line in logs)
