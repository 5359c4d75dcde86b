"""Receivers accept what we send: hostile, huge rule text and endpoint names go through the real
engine and outbox to local sinks that enforce each receiver's limits (Slack Block Kit, PagerDuty
Events v2, a generic webhook), arrive bounded and free of control characters; Slack's
``400 invalid_blocks`` falls back to plain text; webhooks carry an Idempotency-Key; the README's
webhook example is what the notifier produces; logs name what they queue and deliver."""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from email import message_from_bytes, policy
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from loguru import logger

from core.alerting import AlertEngine, MetricSample
from core.config import Config
from core.db import Database
from core.notify.base import Notification
from core.notify.delivery import Deliverer
from core.notify.email import build_message, render_email
from core.notify.outbox import list_outbox
from core.notify.pagerduty import render_pagerduty
from core.notify.slack import cut_mrkdwn, fit_blocks, plain_fallback, render_slack
from core.notify.webhook import WEBHOOK_VERSION, idempotency_key, render_webhook
from tests.alerts import T0, Rig, alert_info
from tests.servers import BlockKitSink, ScriptedReply, WebhookSink, block_kit_problem
from tests.test_pagerduty import ROUTING_KEY, PagerDutySink
from tests.waiting import until

ROOT = Path(__file__).resolve().parent.parent

# Everything a terminal or a bidi-aware viewer would act on.
HOSTILE = (
    "\x1b[31mred\x1b[0m \x1b]8;;http://evil.example/\x1b\\click\x1b]8;;\x1b\\ \x9b2J \x9d0;title\x9c"
    " \u202eevil\u202c \u2066iso\u2069 \u200emark\u200f \u061c \x07bell \x00nul \x7fdel \x85nel \x1b"
)
DESCRIPTION = "Checkout is down " + HOSTILE + " " + "d" * 5000
RUNBOOK = "Restart it " + HOSTILE + " " + "r" * 5000
SCOPE = "pos\u202e-api\x9b1m\x1b[2J"  # an endpoint name as a metric source reports it
FORBIDDEN = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069\u200e\u200f\u061c]")


def strings(value: Any) -> Iterator[str]:
    """Every string in a JSON value, keys included."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for k, v in value.items():
            yield str(k)
            yield from strings(v)
    elif isinstance(value, list):
        for v in value:
            yield from strings(v)


def assert_inert(value: Any) -> None:
    bad = sorted({repr(ch) for s in strings(value) for ch in FORBIDDEN.findall(s)})
    assert not bad, f"control characters {bad} reached a receiver"


def config(notifications: dict[str, Any]) -> Config:
    rule = {
        "name": "api-down",
        "metric": "endpoint.down_for",
        "critical": 0,
        "for": 0,
        "description": DESCRIPTION,
        "runbook": RUNBOOK,
    }
    outbox = {"max_attempts": 3, "backoff_initial": 0.4, "backoff_max": 0.4, "poll_interval": 0.05}
    cfg = Config.model_validate(
        {
            "endpoints": [{"name": "ep0", "url": "http://127.0.0.1:9/ep0"}],
            "alerts": {"evaluation_interval": 0.2, "group_wait": 0, "rules": [rule]},
            "notifications": notifications | {"outbox": outbox},
        }
    )
    # An endpoint name with controls in it, past config validation (which need not be the only guard).
    hostile = cfg.endpoints[0].model_copy(update={"name": SCOPE})
    return cfg.model_copy(update={"endpoints": (hostile,)})


# --------------------------------------------------------------------------- Slack


@pytest_asyncio.fixture
async def slack() -> AsyncIterator[BlockKitSink]:
    async with BlockKitSink() as sink:
        yield sink


def down(seconds: float) -> list[MetricSample]:
    return [MetricSample("endpoint.down_for", SCOPE, seconds)]


def slack_config(sink: BlockKitSink) -> Config:
    return config({"slack": {"webhooks": {"critical": sink.url("slack/critical")}, "timeout": 2}})


async def test_huge_hostile_alert_reaches_slack_bounded_and_inert(db: Database, slack: BlockKitSink) -> None:
    async with Rig(db, slack_config(slack)) as rig:
        assert await rig.step(0, down(30.0)) == 1
        assert await rig.step(10, down(0.0)) == 1
    assert slack.problems == [] and len(slack.received) == 2  # each accepted at the first attempt
    firing, resolved = (r.body for r in slack.delivered)
    for body in (firing, resolved):
        assert_inert(body)
        assert all(block_kit_problem(b) is None for b in body["blocks"]) and len(body["blocks"]) <= 50
        assert 0 < len(body["text"]) <= 3000
    header, section, fields, context = firing["blocks"]
    assert header["text"]["text"].startswith(":red_circle: CRITICAL: api-down on pos-api")
    assert (
        section["text"]["text"].startswith("*Checkout is down red click") and "…" in section["text"]["text"]
    )
    assert context["elements"][0]["text"].startswith(":book: *Runbook:* Restart it red click")
    assert context["elements"][0]["text"].endswith("…")
    assert {"type": "mrkdwn", "text": "*Where*\npos-api"} in fields["fields"]
    assert firing["text"].startswith(":red_circle: CRITICAL: api-down on pos-api — Checkout is down red")
    assert [(e.status, e.attempts) for e in await list_outbox(db)] == [("delivered", 1)] * 2


@pytest.mark.parametrize("error", ["invalid_blocks", "invalid_blocks_format"])
async def test_slack_refusing_blocks_gets_plain_text_not_a_dead_letter(
    db: Database, slack: BlockKitSink, error: str
) -> None:
    slack.reject_blocks = error
    async with Rig(db, slack_config(slack)) as rig:
        assert await rig.step(0, down(30.0)) == 1
    refused, plain = slack.received
    assert "blocks" in refused.body and "blocks" not in plain.body
    assert slack.delivered == [plain]
    text = plain.body["text"]
    assert_inert(plain.body)
    assert 0 < len(text) <= 3000 and text.endswith("…")
    lines = text.split("\n")
    assert lines[0] == ":red_circle: CRITICAL: api-down on pos-api"
    assert lines[1].startswith("*Checkout is down red click")
    [row] = await list_outbox(db)
    assert (row.status, row.attempts, row.last_status) == ("delivered", 1, 200)


def test_slack_blocks_stay_within_block_kit_for_any_group() -> None:
    alerts = tuple(
        alert_info(
            rule=f"rule{i % 12}-" + "n" * 90,
            scope=f"ep{i}-" + "s" * 95 + HOSTILE,
            value=1.0,
            value_text="v" * 900,
            threshold_text="t" * 900,
            description=DESCRIPTION,
            runbook=RUNBOOK,
        )
        for i in range(300)
    )
    for kind in ("firing", "resolved", "repeat"):
        body = render_slack(Notification(kind, "critical", alerts, "k", T0, note=HOSTILE), username=HOSTILE)
        assert len(body["blocks"]) <= 50
        assert [block_kit_problem(b) for b in body["blocks"]] == [None] * len(body["blocks"])
        assert 0 < len(body["text"]) <= 3000
        assert_inert(body)


def test_fit_blocks_enforces_every_block_kit_limit() -> None:
    token = "<!date^1740830400^{date_short_pretty}|2025-03-01 12:00:00 UTC>"
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": "h" * 400, "emoji": True}},
        {"type": "section", "text": {"type": "mrkdwn", "text": "s" * 2990 + token}},
        {"type": "section", "fields": [{"type": "mrkdwn", "text": "f" * 2500}] * 12},
        {"type": "section", "fields": [{"type": "mrkdwn", "text": ""}]},  # nothing left: dropped
        {"type": "context", "elements": [{"type": "mrkdwn", "text": "x" * 2995 + "&amp; tail"}] * 11},
        *({"type": "section", "text": {"type": "mrkdwn", "text": f"line {i}"}} for i in range(60)),
    ]
    fitted = fit_blocks(blocks)
    assert len(fitted) == 50 and [block_kit_problem(b) for b in fitted] == [None] * 50
    assert fitted[1]["text"]["text"] == "s" * 2990 + "…"  # not cut inside the date token
    assert len(fitted[2]["fields"]) == 10 and fitted[2]["fields"][0]["text"] == "f" * 1999 + "…"
    context = fitted[3]["elements"]
    assert len(context) == 10 and context[0]["text"] == "x" * 2995 + "…"  # not cut inside "&amp;"
    assert fitted[-1]["text"]["text"] == "… 15 more block(s) left out"
    assert cut_mrkdwn("short", 10) == "short"


def test_plain_fallback_keeps_the_message_without_blocks() -> None:
    n = Notification(
        "firing",
        "critical",
        (
            alert_info(
                value=1.0,
                value_text="5m",
                description="Down",
                runbook="Restart",
            ),
        ),
        "k",
        T0,
    )
    plain = plain_fallback(render_slack(n, username="opswatch"))
    assert plain == {
        "text": ":red_circle: CRITICAL: api-down on checkout\n*Down*\n*Severity*: :red_circle: Critical\n"
        "*Where*: checkout\n*Value*: 5m\n*Threshold*: &gt; 5m\n"
        "*Since*: <!date^1740830400^{date_short_pretty} {time_secs}|2025-03-01 12:00:00 UTC>\n"
        ":book: *Runbook:* Restart",
        "username": "opswatch",
    }


# --------------------------------------------------------------------------- PagerDuty


@pytest_asyncio.fixture
async def pd() -> AsyncIterator[PagerDutySink]:
    async with PagerDutySink() as sink:
        yield sink


async def test_huge_hostile_alert_reaches_pagerduty_bounded_and_inert(
    db: Database, pd: PagerDutySink
) -> None:
    cfg = config({"pagerduty": {"routing_key": ROUTING_KEY, "url": pd.url, "timeout": 2}})
    async with Rig(db, cfg) as rig:
        assert await rig.step(0, down(30.0)) == 1
        assert await rig.step(10, down(0.0)) == 1
    trigger, resolve = pd.events
    assert pd.requests == 2
    assert_inert(pd.events)
    payload = trigger["payload"]
    assert trigger["dedup_key"] == resolve["dedup_key"] == "opswatch/api-down/pos-api"
    assert payload["source"] == "pos-api" and len(payload["summary"]) <= 1024
    details = payload["custom_details"]
    assert details["description"].startswith("Checkout is down red click") and details[
        "description"
    ].endswith("…")
    assert len(details["description"]) <= 2000 and len(details["runbook"]) <= 2000
    assert len(json.dumps(trigger).encode()) < 512 * 1024


def test_pagerduty_events_stay_within_the_events_api_for_any_alert() -> None:
    alert = alert_info(
        rule="r" * 100 + HOSTILE,
        scope="s" * 100 + HOSTILE,
        metric="m" * 300,
        value=1.0,
        value_text="v" * 5000,
        threshold_text="t" * 5000,
        description=DESCRIPTION * 20,
        runbook=RUNBOOK * 20,
    )
    for kind in ("firing", "repeat", "resolved", "acknowledged", "test"):
        for rendered in render_pagerduty(
            Notification(kind, "critical", (alert,), "k", T0, note=HOSTILE * 99)
        ):
            events = rendered.payload.get("events", [rendered.payload])
            assert_inert(rendered.payload)
            for event in events:
                assert PagerDutySink.problems({"routing_key": ROUTING_KEY, **event}) == []
                assert len(json.dumps(event).encode()) < 512 * 1024


# --------------------------------------------------------------------------- generic webhook


async def test_huge_hostile_alert_reaches_a_webhook_bounded_and_inert_with_an_idempotency_key(
    db: Database, sink: WebhookSink
) -> None:
    cfg = config({"webhook": [{"name": "ops", "url": sink.url("ops"), "timeout": 2}]})
    sink.script("ops", ScriptedReply(500))  # the first attempt fails: the retry carries the same key
    async with Rig(db, cfg) as rig:
        assert await rig.step(0, down(30.0)) == 0
        await rig.deliver_until(1)  # the retry, after its 0.2-0.4 s backoff
        assert await rig.step(10, down(0.0)) == 1
    first, retry, resolved = sink.received
    assert_inert([first.body, resolved.body])
    assert first.body == retry.body and first.body["version"] == WEBHOOK_VERSION == 1
    [alert] = first.body["alerts"]
    assert alert["scope"] == "pos-api" and alert["description"].startswith("Checkout is down red click")
    assert len(alert["description"]) <= 2000 and alert["description"].endswith("…")
    assert len(first.body["text"]) <= 20_000
    rows = {e.kind: e for e in await list_outbox(db)}
    route = "webhook:ops"
    assert first.headers["Idempotency-Key"] == retry.headers["Idempotency-Key"]
    assert first.headers["Idempotency-Key"] == idempotency_key(first.body["key"], route)
    assert resolved.headers["Idempotency-Key"] == idempotency_key(resolved.body["key"], route)
    assert first.headers["Idempotency-Key"] != resolved.headers["Idempotency-Key"]
    uuid.UUID(first.headers["Idempotency-Key"])  # a UUID, as receivers expect
    # The engine's key names the hostile scope: the body carries its digest instead.
    assert first.body["key"].startswith("sha256:") and first.body["key"] != resolved.body["key"]
    assert rows["firing"].attempts == 2


async def test_a_sender_dying_mid_post_means_a_second_post_with_the_same_idempotency_key(
    db: Database, sink: WebhookSink
) -> None:
    cfg = config({"webhook": [{"name": "ops", "url": sink.url("ops"), "timeout": 0.5}]})
    cfg = cfg.model_copy(
        update={
            "notifications": cfg.notifications.model_copy(
                update={"outbox": cfg.notifications.outbox.model_copy(update={"lease": 0.5})}
            )
        }
    )
    sink.script("ops", ScriptedReply(200, delay_s=3.0))  # the receiver takes it but answers late
    engine = AlertEngine(db, cfg, instance_id="a", clock=lambda: datetime.now(UTC))
    dying = Deliverer(db, cfg, instance_id="a")
    survivor = Deliverer(db, cfg, instance_id="b")
    try:
        await engine.evaluate([MetricSample("endpoint.down_for", SCOPE, 30.0)], datetime.now(UTC))
        sending = asyncio.create_task(dying.deliver_due())
        await until(lambda: sink.started, what="the first POST")
        sending.cancel()  # instance "a" dies mid-POST: nothing is recorded
        with contextlib.suppress(asyncio.CancelledError):
            await sending
        # once a's lease has run out
        await until(survivor.deliver_due, within=10, what="the survivor took the row over")
    finally:
        await dying.stop()
        await survivor.stop()
    first, second = sink.started[:2]
    assert first.body == second.body
    assert first.headers["Idempotency-Key"] == second.headers["Idempotency-Key"]
    [row] = await list_outbox(db)
    assert (row.status, row.attempts) == ("delivered", 1)


def test_webhook_payload_is_bounded_for_a_huge_group() -> None:
    alerts = tuple(
        alert_info(
            rule="api-down" + HOSTILE,
            scope=f"ep{i}" + "s" * 500,
            value=float("inf") if i == 0 else 1.0,
            value_text="v" * 900,
            threshold_text="t" * 900,
            description=DESCRIPTION,
            runbook=RUNBOOK,
        )
        for i in range(150)
    )
    body = render_webhook(Notification("firing", "critical", alerts, "k", T0))
    assert (len(body["alerts"]), body["alert_count"], body["version"]) == (100, 150, 1)
    assert body["alerts"][0]["value"] is None and len(body["alerts"][0]["scope"]) == 200
    assert len(body["text"]) <= 20_000 and len(json.dumps(body)) < 1_000_000
    assert_inert(body)


def readme_webhook_example() -> dict[str, Any]:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text.split("#### Generic webhook payload", 1)[1]
    block = re.search(r"```json\n(.*?)\n```", section, re.S)
    assert block is not None, "the README's webhook section has no JSON example"
    example: dict[str, Any] = json.loads(block.group(1))
    return example


def test_readme_webhook_example_is_what_the_notifier_sends() -> None:
    at = datetime(2025, 3, 1, 12, 5, 12, tzinfo=UTC)
    alert = alert_info(fired_at=at)
    n = Notification("firing", "critical", (alert,), "firing:api-down/checkout/1740830712000", at)
    assert readme_webhook_example() == json.loads(json.dumps(render_webhook(n)))


# --------------------------------------------------------------------------- email


def test_email_subject_and_bodies_are_inert_and_headers_single_line() -> None:
    alert = alert_info(
        rule="api-down\r\nBcc: victim@example.com",
        scope=SCOPE,
        value=1.0,
        value_text="1s",
        threshold_text="> 0s",
        description=DESCRIPTION,
        runbook=RUNBOOK,
    )
    payload = render_email(Notification("firing", "critical", (alert,), "k", T0))
    assert_inert(payload)
    raw = build_message(payload, "ops@example.com", ("oncall@example.com",)).as_bytes()
    parsed = message_from_bytes(raw, policy=policy.default)
    assert parsed["Bcc"] is None and parsed["To"] == "oncall@example.com"
    assert "\n" not in str(parsed["Subject"]) and len(str(parsed["Subject"])) <= 200
    body = parsed.get_body(("plain",))
    assert body is not None and "Checkout is down red click" in body.get_content()


# --------------------------------------------------------------------------- logs


@pytest.fixture
def records() -> Iterator[list[dict[str, Any]]]:
    got: list[dict[str, Any]] = []
    sink = logger.add(lambda m: got.append(m.record), level="INFO", format="{message}")
    yield got
    logger.remove(sink)


async def test_logs_name_the_rule_scope_and_severity_they_queue_and_deliver(
    db: Database, sink: WebhookSink, records: list[dict[str, Any]]
) -> None:
    cfg = config({"webhook": [{"name": "ops", "url": sink.url("ops"), "timeout": 2}]})
    sink.script("ops", ScriptedReply(503, body="busy"))
    async with Rig(db, cfg) as rig:
        assert await rig.step(0, down(30.0)) == 0
        await rig.deliver_until(1)
    [queued] = [r for r in records if r["message"].startswith("queued ")]
    [failed] = [r for r in records if " failed (attempt 1)" in r["message"]]
    [delivered] = [r for r in records if " delivered to " in r["message"]]
    assert failed["message"].startswith(
        "notification 1 (CRITICAL firing: api-down on pos-api) to webhook:ops failed (attempt 1), retry in"
    )
    for record in (queued, failed, delivered):
        assert (record["extra"]["rule"], record["extra"]["scope"]) == ("api-down", "pos-api")
        assert record["extra"]["severity"] == "critical"
        assert "api-down on pos-api" in record["message"] and "CRITICAL" in record["message"]
    assert queued["message"] == (
        "queued 1 notification(s) (1 new) for 1 alert change(s): CRITICAL firing: api-down on pos-api"
    )
    assert (
        delivered["message"]
        == "notification 1 (CRITICAL firing: api-down on pos-api) delivered to webhook:ops"
    )
