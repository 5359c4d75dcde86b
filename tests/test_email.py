"""Email notifications: exact rendering, SMTP delivery to a local aiosmtpd server (plain,
STARTTLS + AUTH), error classification, and the outbox guarantees through the real engine."""

from __future__ import annotations

import asyncio
import ssl
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from core.alerting import AlertActions, MetricSample
from core.config import Config, EmailConfig
from core.db import Database
from core.notify.base import Notification
from core.notify.email import EmailNotifier, build_message, render_email, subject_line
from core.notify.outbox import entries, list_outbox
from core.notify.registry import build_notifiers
from tests.alerts import API_DOWN_RULE, T0, Rig
from tests.alerts import alert_info as info
from tests.smtp_server import SmtpSink, self_signed_cert

PASSWORD = "s3cret-smtp-Passw0rd"


# --------------------------------------------------------------------------- rendering


def test_single_firing_email_exact() -> None:
    n = Notification("firing", "critical", (info(),), "firing:api-down/checkout/1", T0)
    payload = render_email(n, "opswatch@example.com")
    assert payload["subject"] == "[opswatch] CRITICAL firing: 1 alert - api-down on checkout"
    assert payload["text"] == (
        "CRITICAL: api-down on checkout\n"
        "\n"
        "Endpoint down for more than 5 minutes\n"
        "\n"
        "Severity:  Critical\n"
        "Where:     checkout\n"
        "Value:     5m 12s\n"
        "Threshold: > 5m\n"
        "Since:     2025-03-01 12:00:00 UTC\n"
        "\n"
        "Runbook: Check the POS backend process; GET /test/health must answer 200.\n"
    )
    assert '<h2 style="color:#b00020;margin:0 0 12px">CRITICAL: api-down on checkout</h2>' in payload["html"]
    assert '<th align="left" style="color:#555">Threshold</th><td>&gt; 5m</td>' in payload["html"]
    assert payload["date"] == "Sat, 01 Mar 2025 12:00:00 +0000"
    assert payload["message_id"].startswith("<") and payload["message_id"].endswith(".opswatch@example.com>")
    assert render_email(n, "opswatch@example.com") == payload  # deterministic: same across instances


def test_grouped_resolved_and_other_subjects() -> None:
    resolved = tuple(
        info(scope=f"ep{i}", value_text="0s", resolved_at=T0 + timedelta(minutes=3)) for i in range(5)
    )
    n = Notification("resolved", "critical", resolved, "resolved:g", T0)
    payload = render_email(n, "ops@example.com")
    assert payload["subject"] == (
        "[opswatch] CRITICAL resolved: 5 alerts - api-down on ep0, api-down on ep1, api-down on ep2, +2 more"
    )
    assert payload["text"].splitlines()[:3] == [
        "RESOLVED: 5 alerts",
        "",
        "- api-down on ep0: 0s, resolved 2025-03-01 12:03:00 UTC after 3m",
    ]
    assert '<h2 style="color:#1b7f3b' in payload["html"] and payload["html"].count("<li>") == 5
    esc = Notification("escalated", "critical", (info(previous_severity="warning"),), "e", T0)
    assert subject_line(esc) == "[opswatch] CRITICAL escalated from WARNING: 1 alert - api-down on checkout"
    assert subject_line(Notification("repeat", "warning", (info(severity="warning"),), "r", T0)).startswith(
        "[opswatch] WARNING still firing: 1 alert"
    )
    test = Notification("test", "info", (), "t", T0, note="hello")
    assert subject_line(test) == "[opswatch] INFO test: opswatch test message"
    assert render_email(test)["text"] == "TEST (INFO): opswatch test message\n\nhello\n"


def test_untrusted_text_is_escaped_and_headers_cannot_be_injected() -> None:
    evil = info(scope="<script>alert(1)</script>", description='a & "b"\r\nBcc: victim@example.com')
    n = Notification("firing", "warning", (evil,), "k", T0)
    payload = render_email(n, "ops@example.com")
    assert "<script>" not in payload["html"] and "&lt;script&gt;alert(1)&lt;/script&gt;" in payload["html"]
    assert "a &amp; &quot;b&quot;" in payload["html"]
    msg = build_message(payload | {"subject": "x\r\nBcc: victim@example.com"}, "ops@example.com", ("a@b.c",))
    assert msg["Bcc"] is None and "\n" not in str(msg["Subject"])
    assert "\nBcc:" not in payload["text"]


def test_routes_follow_the_configured_severities() -> None:
    cfg = EmailConfig.model_validate(
        {"smtp_host": "127.0.0.1", "sender": "ops@example.com", "recipients": ["a@example.com"]}
    )
    email = EmailNotifier(cfg)
    assert email.routes("critical") == email.routes("warning") == ("email:default",)
    assert email.routes("info") == ()
    assert EmailNotifier(EmailConfig()).routes("critical") == ()


# --------------------------------------------------------------------------- SMTP delivery


def email_config(port: int, **kw: Any) -> EmailConfig:
    return EmailConfig.model_validate(
        {
            "smtp_host": "127.0.0.1",
            "smtp_port": port,
            "starttls": False,
            "sender": "opswatch@example.com",
            "recipients": ["oncall@example.com", "lead@example.com"],
            "timeout": 2,
        }
        | kw
    )


async def test_sends_one_multipart_message(smtp: SmtpSink) -> None:
    email = EmailNotifier(email_config(smtp.port))
    n = Notification("firing", "critical", (info(scope="<b>ep</b>"),), "firing:x", T0)
    [rendered] = email.render(n)
    result = await email.send("email:default", rendered.payload)
    assert (result.ok, result.status) == (True, 250)
    [mail] = await smtp.wait_for(1)
    assert mail.mail_from == "opswatch@example.com"
    assert mail.rcpt_tos == ("oncall@example.com", "lead@example.com")
    msg = mail.message
    assert msg.get_content_type() == "multipart/alternative"
    assert msg["Subject"] == "[opswatch] CRITICAL firing: 1 alert - api-down on <b>ep</b>"
    assert msg["From"] == "opswatch@example.com" and msg["To"] == "oncall@example.com, lead@example.com"
    assert msg["Message-ID"] == rendered.payload["message_id"]
    assert msg["Date"] == "Sat, 01 Mar 2025 12:00:00 +0000"
    assert msg["X-Opswatch-Severity"] == "critical" and msg["Auto-Submitted"] == "auto-generated"
    assert mail.part("plain").startswith("CRITICAL: api-down on <b>ep</b>\n")
    assert "api-down on &lt;b&gt;ep&lt;/b&gt;" in mail.part("html")
    assert not mail.tls and mail.login is None


async def test_smtp_errors_are_classified(smtp: SmtpSink) -> None:
    email = EmailNotifier(email_config(smtp.port))
    payload = email.render(Notification("test", "critical", (), "t", T0))[0].payload
    smtp.script("451 4.3.0 Try again later", "554 5.7.1 Message rejected")
    busy = await email.send("email:default", payload)
    assert (busy.ok, busy.status, busy.permanent, busy.error) == (
        False,
        451,
        False,
        "SMTP 451: 4.3.0 Try again later",
    )
    rejected = await email.send("email:default", payload)
    assert (rejected.status, rejected.permanent) == (554, True)
    wants_tls = await EmailNotifier(email_config(smtp.port, starttls=True)).send("email:default", payload)
    assert wants_tls.permanent and wants_tls.error is not None and "STARTTLS" in wants_tls.error
    wrong = await email.send("email:other", payload)
    assert wrong.permanent and wrong.error == "no SMTP server configured for email:other"
    assert smtp.mails == []


async def test_unreachable_and_silent_servers_are_retried() -> None:
    silent = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)  # accepts, never greets
    port = silent.sockets[0].getsockname()[1]
    payload = render_email(Notification("test", "critical", (), "t", T0))
    try:
        loop = asyncio.get_running_loop()
        started = loop.time()
        slow = await EmailNotifier(email_config(port, timeout=0.3)).send("email:default", payload)
        assert loop.time() - started < 1.0
        assert (slow.ok, slow.permanent, slow.error) == (False, False, "timed out after 0.3 s")
    finally:
        silent.close()
        await silent.wait_closed()
    refused = await EmailNotifier(email_config(port)).send("email:default", payload)
    assert not refused.ok and not refused.permanent
    assert refused.error is not None and refused.error.startswith("connection failed:")


async def test_one_deadline_bounds_the_whole_conversation() -> None:
    """Each reply takes 0.15 s (under the 0.4 s timeout), but the conversation as a whole may not."""

    async def sluggish(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await asyncio.sleep(0.15)  # the slow server under test
            writer.write(b"220 slow.test ESMTP\r\n")
            while await reader.readline():
                await asyncio.sleep(0.15)
                writer.write(b"250 ok\r\n")
                await writer.drain()
        except ConnectionError:
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(sluggish, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        loop = asyncio.get_running_loop()
        started = loop.time()
        result = await EmailNotifier(email_config(port, timeout=0.4)).send(
            "email:default", render_email(Notification("test", "critical", (), "t", T0))
        )
        took = loop.time() - started
    finally:
        server.close()
        await server.wait_closed()
    assert (result.ok, result.permanent, result.error) == (False, False, "timed out after 0.4 s")
    assert took < 0.7


async def test_starttls_and_auth_with_a_self_signed_certificate(tmp_path: Path, logs: list[str]) -> None:
    pair = self_signed_cert(tmp_path)
    if pair is None:
        pytest.skip("openssl is not installed: cannot make a certificate for the STARTTLS server")
    cert, key = pair
    server_tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_tls.load_cert_chain(cert, key)
    client_tls = ssl.create_default_context(cafile=str(cert))
    async with SmtpSink(
        tls_context=server_tls, require_starttls=True, credentials=("opswatch", PASSWORD)
    ) as server:
        cfg = email_config(server.port, starttls=True, username="opswatch", password=PASSWORD)
        payload = render_email(Notification("test", "critical", (), "t", T0), "opswatch@example.com")
        ok = await EmailNotifier(cfg, ssl_context=client_tls).send("email:default", payload)
        assert ok.ok
        [mail] = server.mails
        assert mail.tls and mail.login == "opswatch"

        bad = email_config(server.port, starttls=True, username="opswatch", password="wrong-password-123")
        denied = await EmailNotifier(bad, ssl_context=client_tls).send("email:default", payload)
        assert (denied.ok, denied.status, denied.permanent) == (False, 535, True)
        assert "wrong-password-123" not in str(denied)

        untrusted = await EmailNotifier(cfg).send("email:default", payload)  # system CAs only
        assert not untrusted.ok and untrusted.error is not None and untrusted.error.startswith("TLS error")
    assert all(PASSWORD not in line for line in logs)


# --------------------------------------------------------------------------- through the outbox


API_DOWN = API_DOWN_RULE | {"runbook": "Restart the POS backend"}
OUTBOX = {"max_attempts": 3, "backoff_initial": 0.05, "backoff_max": 0.1, "poll_interval": 0.05}


def engine_config(port: int, **email: Any) -> Config:
    return Config.model_validate(
        {
            "endpoints": [{"name": f"ep{i}", "url": f"http://127.0.0.1:9/ep{i}"} for i in range(2)],
            "alerts": {
                "evaluation_interval": 0.2,
                "group_wait": 0,
                "rules": [API_DOWN, {"name": "slow", "metric": "endpoint.latency_ms", "warning": 2000}],
            },
            "notifications": {
                "email": {
                    "smtp_host": "127.0.0.1",
                    "smtp_port": port,
                    "starttls": False,
                    "sender": "opswatch@example.com",
                    "recipients": ["oncall@example.com"],
                    "severities": ["critical"],
                    "timeout": 1,
                }
                | email,
                "outbox": OUTBOX,
            },
        }
    )


def down(ep: str, seconds: float) -> list[MetricSample]:
    return [MetricSample("endpoint.down_for", ep, seconds)]


async def test_firing_and_resolved_through_engine_and_outbox(db: Database, smtp: SmtpSink) -> None:
    config = engine_config(smtp.port)
    assert set(build_notifiers(config)) == {"email"}
    rig = Rig(db, config)
    try:
        assert await rig.step(0, [*down("ep0", 30), MetricSample("endpoint.latency_ms", "ep1", 3000)]) == 1
        assert await rig.step(60, down("ep0", 0)) == 1
    finally:
        await rig.close()
    fired, resolved = smtp.mails
    assert fired.message["Subject"] == "[opswatch] CRITICAL firing: 1 alert - api-down on ep0"
    assert resolved.message["Subject"] == "[opswatch] CRITICAL resolved: 1 alert - api-down on ep0"
    assert "Back to normal after 1m." in resolved.part("plain")
    assert fired.message["Message-ID"] != resolved.message["Message-ID"]
    assert [(e.channel, e.route, e.kind, e.status) for e in reversed(await list_outbox(db))] == [
        ("email", "email:default", "firing", "delivered"),
        ("email", "email:default", "resolved", "delivered"),
    ]  # the warning (slow on ep1) was not routed to email


async def test_transient_failure_is_retried_and_permanent_is_dead_then_resent(
    db: Database, smtp: SmtpSink
) -> None:
    config = engine_config(smtp.port)
    rig = Rig(db, config)
    smtp.script("451 4.3.0 Try again later")
    try:
        assert await rig.step(0, down("ep0", 30)) == 0
        [row] = await list_outbox(db)
        assert (row.status, row.attempts, row.last_status, row.last_error) == (
            "pending",
            1,
            451,
            "SMTP 451: 4.3.0 Try again later",
        )
        await asyncio.sleep(0.12)  # time under test: the retry is due once its backoff has passed
        assert await rig.deliverer.deliver_due() == 1
        smtp.script("554 5.7.1 Rejected by policy")
        assert await rig.step(60, down("ep0", 0)) == 0
        dead = (await list_outbox(db, "dead"))[0]
        assert (dead.kind, dead.attempts, dead.last_status) == ("resolved", 1, 554)
        assert (await AlertActions(db, config, actor="alice").resend(dead.id)).outcome == "applied"
        assert await rig.deliverer.deliver_due() == 1
        assert (await entries(db, [dead.id]))[dead.id].status == "delivered"
    finally:
        await rig.close()
    assert [m.message["Subject"].split(":")[0] for m in smtp.mails] == [
        "[opswatch] CRITICAL firing",
        "[opswatch] CRITICAL resolved",
    ]
    assert smtp.attempts == 4
