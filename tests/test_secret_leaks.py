"""A receiver that echoes the request path must not leak the webhook token anywhere we store or print.

Real PostgreSQL, a real Slack-shaped sink on 127.0.0.1 answering 404 with the path in the body (as
some proxies and webhook relays do), the real CLI and the real log files.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest_asyncio

from cli.main import main
from core.config import load_config
from core.db import Database, PoolSettings
from core.logging import reset_logging
from core.notify.delivery import Deliverer
from core.notify.outbox import FailedItem, OutboxItem, claim, enqueue, enqueue_dead, mark_failed
from core.redact import clear_secrets, register_secret
from core.runtime import start_observability
from tests.servers import ScriptedReply, WebhookSink

# assembled at run time: the token must not sit in any source line a traceback could quote
TOKEN = "".join(("Xq9ZtL2m", "WvB7kR4p", "Nc8sYd3F"))
HOOK_PATH = f"services/T0A1B2C3D/B0E4F5G6H/{TOKEN}"


@pytest_asyncio.fixture
async def sink() -> AsyncIterator[WebhookSink]:
    async with WebhookSink() as server:
        yield server


@pytest_asyncio.fixture
async def db(db_dsn: str) -> AsyncIterator[Database]:
    database = Database(db_dsn, PoolSettings(min_size=1, max_size=2))
    await database.execute("TRUNCATE opswatch.notification_outbox, opswatch.audit_log")
    yield database
    await database.close()
    reset_logging()
    clear_secrets()


def echo_404() -> ScriptedReply:
    return ScriptedReply(404, body=f"no webhook for POST /{HOOK_PATH}")


async def run_cli(*argv: str) -> int:
    return await asyncio.to_thread(main, list(argv))


def assert_clean(text: str, where: str) -> None:
    for leak in (TOKEN, HOOK_PATH, "T0A1B2C3D", "B0E4F5G6H"):
        assert leak not in text, f"{leak!r} leaked into {where}: {text!r}"


async def test_an_echoed_webhook_path_reaches_no_row_output_or_log(
    tmp_path: Path, db_dsn: str, db: Database, sink: WebhookSink, capsys: Any
) -> None:
    config_path = tmp_path / "opswatch.yaml"
    config_path.write_text(
        f"database:\n  dsn: {db_dsn}\n"
        f"notifications:\n  slack:\n    timeout: 2\n    webhooks:\n      critical: {sink.url(HOOK_PATH)}\n"
        "  outbox:\n    backoff_initial: 0.05\n    backoff_max: 0.1\n",
        encoding="utf-8",
    )
    sink.script(HOOK_PATH, echo_404())

    # the CLI: the test message is dead-lettered on the 404
    assert await run_cli("alert", "test", "--config", str(config_path)) == 1
    [received] = sink.received
    assert received.path == f"/{HOOK_PATH}"  # the sink really saw (and echoed) the token
    out = capsys.readouterr()
    assert "gave up on" in out.out and "HTTP 404: no webhook for POST" in out.out
    assert_clean(out.out + out.err, "the `alert test` output")

    # the outbox row and `opswatch alert outbox`
    row = await db.fetchrow("SELECT id, status, last_error FROM opswatch.notification_outbox")
    assert row is not None and row["status"] == "dead"
    assert row["last_error"].startswith("HTTP 404: no webhook for POST")
    assert_clean(row["last_error"], "outbox.last_error")
    assert await run_cli("alert", "outbox", "--config", str(config_path), "--status", "dead") == 0
    out = capsys.readouterr()
    assert f"#{row['id']}" in out.out and "no webhook for POST" in out.out
    assert_clean(out.out + out.err, "the `alert outbox` output")

    # an agent's delivery logs the failure to both log files
    assert await run_cli("alert", "resend", str(row["id"]), "--config", str(config_path)) == 0
    capsys.readouterr()
    sink.script(HOOK_PATH, echo_404())
    config = load_config(config_path)
    logs = tmp_path / "logs"
    start_observability(config, console=False, log_dir=logs)
    deliverer = Deliverer(db, config, instance_id="leak-test")
    try:
        assert await deliverer.deliver_due() == 0
    finally:
        await deliverer.stop()
        reset_logging()
    assert len(sink.received) == 2
    error_log = (logs / "error.log").read_text(encoding="utf-8")
    combined = (logs / "combined.log").read_text(encoding="utf-8")
    assert f"notification {row['id']} (CRITICAL test: " in error_log
    assert "to slack:critical dead after" in error_log
    assert "no webhook for POST" in error_log
    assert_clean(error_log, "error.log")
    assert_clean(combined, "combined.log")
    last_error = await db.fetchval("SELECT last_error FROM opswatch.notification_outbox")
    assert_clean(last_error, "outbox.last_error after the agent's attempt")


async def test_outbox_redacts_last_error_before_storing_it(db: Database) -> None:
    """Whatever a notifier reports, the stored error passes through the redaction set first."""
    register_secret(f"https://hooks.example.com/{HOOK_PATH}")

    def item(key: str) -> OutboxItem:
        return OutboxItem(key, "slack", "slack:critical", "critical", "firing", {"text": key}, key)

    async with db.acquire() as conn:
        await enqueue(conn, [item("retried")])
        await enqueue_dead(conn, [FailedItem(item("direct"), 3, f"HTTP 404: unknown /{HOOK_PATH}", 404)])
    [row] = await claim(db, instance_id="one", lease_s=5, targets=None)
    error = f"HTTP 404: bad token {TOKEN} card 4111 1111 1111 1111"
    await mark_failed(db, row.id, "one", error=error, status=404, delay_s=0, max_attempts=3, permanent=True)
    stored = dict(await db.fetch("SELECT dedup_key, last_error FROM opswatch.notification_outbox"))
    assert stored == {
        "retried": "HTTP 404: bad token *** card [card]",
        "direct": "HTTP 404: unknown ***",
    }
