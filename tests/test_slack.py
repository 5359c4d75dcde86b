"""Slack messages (exact Block Kit content) and webhook delivery against a local sink."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest_asyncio
import respx

from core.config import SlackConfig
from core.notify.base import Notification, parse_retry_after, summary_line
from core.notify.slack import SlackNotifier, render_slack
from tests.alerts import T0, mrkdwn_fields
from tests.alerts import alert_info as info
from tests.servers import ScriptedReply, WebhookSink

EPOCH = int(T0.timestamp())
WHEN = f"<!date^{EPOCH}^{{date_short_pretty}} {{time_secs}}|2025-03-01 12:00:00 UTC>"


def test_single_firing_message_exact() -> None:
    n = Notification("firing", "critical", (info(),), "firing:x", T0)
    assert render_slack(n, username="opswatch") == {
        "text": ":red_circle: CRITICAL: api-down on checkout — Endpoint down for more than 5 minutes. "
        "Value 5m 12s (threshold &gt; 5m) since 2025-03-01 12:00:00 UTC",
        "blocks": [
            {
                "type": "header",
                "text": {
                    "type": "plain_text",
                    "text": ":red_circle: CRITICAL: api-down on checkout",
                    "emoji": True,
                },
            },
            {
                "type": "section",
                "text": {"type": "mrkdwn", "text": "*Endpoint down for more than 5 minutes*"},
            },
            {
                "type": "section",
                "fields": mrkdwn_fields(
                    "*Severity*\n:red_circle: Critical",
                    "*Where*\ncheckout",
                    "*Value*\n5m 12s",
                    "*Threshold*\n&gt; 5m",
                    f"*Since*\n{WHEN}",
                ),
            },
            {
                "type": "context",
                "elements": [
                    {
                        "type": "mrkdwn",
                        "text": ":book: *Runbook:* Check the POS backend process; "
                        "GET /test/health must answer 200.",
                    }
                ],
            },
        ],
        "username": "opswatch",
    }


def test_resolved_message_exact() -> None:
    resolved = info(
        value=0.0, value_text="0s", resolved_at=T0 + timedelta(minutes=7, seconds=3), runbook=None
    )
    n = Notification("resolved", "critical", (resolved,), "resolved:x", T0)
    resolved_when = f"<!date^{EPOCH + 423}^{{date_short_pretty}} {{time_secs}}|2025-03-01 12:07:03 UTC>"
    assert render_slack(n) == {
        "text": ":white_check_mark: RESOLVED: api-down on checkout — Endpoint down for more than 5 minutes "
        "(was CRITICAL, fired 2025-03-01 12:00:00 UTC, resolved after 7m 3s). Value 0s",
        "blocks": [
            {
                "type": "header",
                "text": {
                    "type": "plain_text",
                    "text": ":white_check_mark: RESOLVED: api-down on checkout",
                    "emoji": True,
                },
            },
            {
                "type": "section",
                "text": {
                    "type": "mrkdwn",
                    "text": "*Endpoint down for more than 5 minutes*\nBack to normal after 7m 3s.",
                },
            },
            {
                "type": "section",
                "fields": mrkdwn_fields(
                    "*Was*\n:red_circle: Critical",
                    "*Where*\ncheckout",
                    "*Value*\n0s",
                    "*Threshold*\n&gt; 5m",
                    f"*Fired*\n{WHEN}",
                    f"*Resolved*\n{resolved_when}",
                ),
            },
        ],
    }


def test_grouped_message_lists_every_alert_in_one_post() -> None:
    alerts = tuple(info(scope=f"ep{i}") for i in range(10))
    n = Notification("firing", "critical", alerts, "grouped:x", T0)
    payload = render_slack(n)
    assert payload["blocks"][0]["text"]["text"] == ":red_circle: CRITICAL: 10 alerts firing"
    lines = payload["blocks"][1]["text"]["text"].split("\n")
    assert lines == [f"• *api-down on ep{i}*: 5m 12s (threshold &gt; 5m) since {WHEN}" for i in range(10)]
    assert payload["blocks"][2]["elements"][0]["text"].startswith(":book: *Runbook:* Check the POS")
    assert payload["text"].startswith(
        ":red_circle: CRITICAL: 10 alerts firing — api-down on ep0, api-down on ep1"
    )
    assert summary_line(n).startswith("CRITICAL firing: 10 alerts (api-down on ep0,")


def test_huge_group_is_capped() -> None:
    n = Notification(
        "firing", "warning", tuple(info(scope=f"ep{i}", severity="warning") for i in range(60)), "k", T0
    )
    blocks = render_slack(n)["blocks"]
    text = "\n".join(b["text"]["text"] for b in blocks if b["type"] == "section")
    assert text.count("• ") == 40 and text.endswith("… and 20 more")
    assert all(len(b["text"]["text"]) <= 3000 for b in blocks if b["type"] == "section")
    assert blocks[0]["text"]["text"] == ":warning: WARNING: 60 alerts firing"


def test_other_kinds_headlines() -> None:
    repeat = render_slack(Notification("repeat", "critical", (info(),), "k", T0 + timedelta(hours=1)))
    assert repeat["blocks"][0]["text"]["text"] == ":red_circle: CRITICAL (still firing): api-down on checkout"
    assert "Still firing after 1h and not acknowledged." in repeat["blocks"][1]["text"]["text"]
    esc = render_slack(Notification("escalated", "critical", (info(previous_severity="warning"),), "k", T0))
    assert (
        esc["blocks"][0]["text"]["text"]
        == ":red_circle: CRITICAL (escalated from WARNING): api-down on checkout"
    )
    flap = render_slack(
        Notification("flapping", "critical", (info(transitions=4),), "k", T0, flapping_window_s=600)
    )
    assert (
        flap["blocks"][0]["text"]["text"]
        == ":arrows_counterclockwise: FLAPPING (CRITICAL): api-down on checkout"
    )
    assert "Changed state 4 times within 10m" in flap["blocks"][1]["text"]["text"]
    test = render_slack(Notification("test", "warning", (), "k", T0, note="hello <team> & co"))
    assert test["blocks"][0]["text"]["text"] == ":test_tube: TEST (WARNING): opswatch test message"
    assert test["blocks"][1]["text"]["text"] == "hello &lt;team&gt; &amp; co"


def test_untrusted_text_is_escaped() -> None:
    n = Notification("firing", "warning", (info(scope="<!channel>", description="a & b"),), "k", T0)
    payload = render_slack(n)
    assert "<!channel>" not in str(payload["text"]) and "&lt;!channel&gt;" in payload["text"]
    assert payload["blocks"][1]["text"]["text"] == "*a &amp; b*"


def test_routes_fall_back_to_default() -> None:
    cfg = SlackConfig.model_validate(
        {"webhooks": {"critical": "http://127.0.0.1:9/c", "default": "http://127.0.0.1:9/d"}}
    )
    slack = SlackNotifier(cfg)
    assert slack.routes("critical") == ("slack:critical",)
    assert slack.routes("warning") == ("slack:warning",)  # delivered to the default webhook
    only = SlackNotifier(SlackConfig.model_validate({"webhooks": {"critical": "http://127.0.0.1:9/c"}}))
    assert only.routes("warning") == ()
    assert SlackNotifier(SlackConfig()).routes("critical") == ()


def test_parse_retry_after() -> None:
    assert parse_retry_after("7") == 7.0
    assert parse_retry_after(None) is None and parse_retry_after("soon") is None
    now = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
    assert parse_retry_after("Sat, 01 Mar 2025 12:00:30 GMT", now) == 30.0
    assert parse_retry_after("-5") == 0.0


# --------------------------------------------------------------------------- delivery


@pytest_asyncio.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient() as client:
        yield client


def notifier(sink: WebhookSink, http: httpx.AsyncClient, timeout: float = 2.0) -> SlackNotifier:
    cfg = SlackConfig.model_validate(
        {
            "webhooks": {
                "critical": sink.url("services/T000/B000/secretcrit"),
                "default": sink.url("fallback"),
            },
            "timeout": timeout,
        }
    )
    return SlackNotifier(cfg, http)


PAYLOAD = {"text": "hi", "blocks": []}


async def test_send_posts_json_and_routes(sink: WebhookSink, http: httpx.AsyncClient) -> None:
    slack = notifier(sink, http)
    assert (await slack.send("slack:critical", PAYLOAD)).ok
    result = await slack.send("slack:warning", PAYLOAD)
    assert result.ok and result.status == 200
    got = await sink.wait_for(2)
    assert [r.path for r in got] == ["/services/T000/B000/secretcrit", "/fallback"]
    assert got[0].body == PAYLOAD and got[0].headers["Content-Type"] == "application/json"


async def test_send_failures_are_classified_without_the_url(
    sink: WebhookSink, http: httpx.AsyncClient
) -> None:
    slack = notifier(sink, http, timeout=0.3)
    path = "services/T000/B000/secretcrit"
    sink.script(
        path,
        ScriptedReply(500, body="internal"),
        ScriptedReply(429, {"Retry-After": "7"}, body="rate_limited"),
        ScriptedReply(404, body="no_service"),
        ScriptedReply(200, delay_s=1.0),
    )
    r500 = await slack.send("slack:critical", PAYLOAD)
    assert (r500.ok, r500.status, r500.error, r500.permanent) == (False, 500, "HTTP 500: internal", False)
    r429 = await slack.send("slack:critical", PAYLOAD)
    assert (r429.status, r429.retry_after, r429.permanent) == (429, 7.0, False)
    r404 = await slack.send("slack:critical", PAYLOAD)
    assert r404.permanent and r404.error == "HTTP 404: no_service"
    slow = await slack.send("slack:critical", PAYLOAD)
    assert not slow.ok and slow.error == "timed out after 0.3 s" and slow.status is None
    for r in (r500, r429, r404, slow):
        assert "secretcrit" not in str(r)


async def test_connection_errors_never_show_the_webhook(http: httpx.AsyncClient) -> None:
    url = "https://hooks.slack.com/services/T0/B0/verysecretvalue"
    slack = SlackNotifier(SlackConfig.model_validate({"webhooks": {"critical": url}}), http)
    with respx.mock:
        respx.post(url).mock(side_effect=httpx.ConnectError(f"failed to connect to {url}"))
        result = await slack.send("slack:critical", PAYLOAD)
    assert not result.ok and not result.permanent
    assert result.error == "connection failed: failed to connect to slack:critical"
    missing = await slack.send("slack:warning", PAYLOAD)
    assert missing.permanent and missing.error == "no Slack webhook configured for slack:warning"
