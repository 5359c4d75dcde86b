"""``opswatch alert ...`` end to end: real config file, real PostgreSQL, local Slack sink."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from core.db import Database
from tests.cli import exit_code_in_thread
from tests.servers import ScriptedReply, WebhookSink


def write_config(
    tmp_path: Path, dsn: str, sink: WebhookSink, *, max_attempts: int = 5, warning: bool = True
) -> str:
    hooks = f"      critical: {sink.url('crit')}\n"
    if warning:
        hooks += f"      warning: {sink.url('warn')}\n"
    path = tmp_path / "opswatch.yaml"
    path.write_text(
        f"database:\n  dsn: {dsn}\n"
        "notifications:\n"
        "  slack:\n    timeout: 0.3\n    webhooks:\n" + hooks + "  outbox:\n"
        f"    max_attempts: {max_attempts}\n    backoff_initial: 0.05\n    backoff_max: 0.1\n",
        encoding="utf-8",
    )
    return str(path)


run_cli = exit_code_in_thread  # the sink serves on this test's loop meanwhile


async def test_alert_test_delivers_and_exits_0(
    tmp_path: Path, db_dsn: str, db: Database, sink: WebhookSink, capsys: Any
) -> None:
    config = write_config(tmp_path, db_dsn, sink)
    assert await run_cli("alert", "test", "--config", config, "--severity", "critical") == 0
    out = capsys.readouterr().out.splitlines()
    row_id = await db.fetchval("SELECT id FROM opswatch.notification_outbox")
    assert out == [
        f"queued test message #{row_id} for slack:critical",
        f"delivered #{row_id} to slack:critical (HTTP 200, attempt 1)",
    ]
    [got] = sink.delivered
    assert got.path == "/crit"
    assert got.body["blocks"][0]["text"]["text"] == ":test_tube: TEST (CRITICAL): opswatch test message"
    audit = await db.fetchrow("SELECT action, target_kind, target_ids, outcome FROM opswatch.audit_log")
    assert audit is not None and tuple(audit) == ("alert.test", "notification", [row_id], "applied")


async def test_alert_test_retries_then_delivers(
    tmp_path: Path, db_dsn: str, db: Database, sink: WebhookSink, capsys: Any
) -> None:
    sink.script("warn", ScriptedReply(500), ScriptedReply(429, {"Retry-After": "0.2"}))
    config = write_config(tmp_path, db_dsn, sink)
    assert await run_cli("alert", "test", "--severity", "warning", "--config", config) == 0
    assert capsys.readouterr().out.splitlines()[-1].endswith("to slack:warning (HTTP 200, attempt 3)")
    assert len(sink.received) == 3


async def test_alert_test_not_delivered_exits_1_and_stays_queued(
    tmp_path: Path, db_dsn: str, db: Database, sink: WebhookSink, capsys: Any
) -> None:
    sink.script("crit", *[ScriptedReply(500, body="slack is down")] * 50)
    config = write_config(tmp_path, db_dsn, sink, max_attempts=50)
    assert await run_cli("alert", "test", "--config", config, "--timeout", "0.5") == 1
    out = capsys.readouterr().out
    assert "not delivered within 0.5s" in out and "HTTP 500: slack is down" in out
    assert "kept in the outbox" in out and "127.0.0.1" not in out
    assert await db.fetchval("SELECT status FROM opswatch.notification_outbox") == "pending"


async def test_alert_test_dead_letter_exits_1(
    tmp_path: Path, db_dsn: str, db: Database, sink: WebhookSink, capsys: Any
) -> None:
    sink.script("crit", ScriptedReply(404, body="no_service"))
    config = write_config(tmp_path, db_dsn, sink)
    assert await run_cli("alert", "test", "--config", config) == 1
    row_id = await db.fetchval("SELECT id FROM opswatch.notification_outbox")
    assert f"dead-lettered (resend with: opswatch alert resend {row_id})" in capsys.readouterr().out
    assert await run_cli("alert", "resend", str(row_id), "--config", config) == 0
    assert capsys.readouterr().out.strip() == f"applied: re-queued notification #{row_id}"
    assert await run_cli("alert", "outbox", "--config", config, "--status", "pending") == 0
    assert f"#{row_id}" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--severity", "info"], "invalid choice: 'info'"),
        (["--severity", "warning"], "no notification channel takes warning alerts"),
        (["--read-only"], "read-only mode: cannot send test notifications"),
        (["--timeout", "0"], "must be greater than zero"),
    ],
)
async def test_alert_test_bad_input_exits_2(
    tmp_path: Path, db_dsn: str, db: Database, sink: WebhookSink, capsys: Any, argv: list[str], message: str
) -> None:
    config = write_config(tmp_path, db_dsn, sink, warning=False)
    assert await run_cli("alert", "test", "--config", config, *argv) == 2
    assert message in capsys.readouterr().err
    assert await db.fetchval("SELECT count(*) FROM opswatch.notification_outbox") == 0


async def test_alert_test_database_down_exits_2(tmp_path: Path, sink: WebhookSink, capsys: Any) -> None:
    config = write_config(tmp_path, "postgresql://nobody:secret@127.0.0.1:1/none", sink)
    assert await run_cli("alert", "test", "--config", config) == 2
    err = capsys.readouterr().err
    assert "database unavailable" in err and "secret" not in err


async def test_silence_and_ack_commands(
    tmp_path: Path, db_dsn: str, db: Database, sink: WebhookSink, capsys: Any
) -> None:
    config = write_config(tmp_path, db_dsn, sink)
    argv = [
        "alert",
        "silence",
        "--rule",
        "api-down",
        "--for",
        "30m",
        "--reason",
        "deploy",
        "--config",
        config,
    ]
    assert await run_cli(*argv) == 0
    assert capsys.readouterr().out.startswith("silence #1 for rule api-down until ")
    assert (
        await run_cli(
            "alert", "silence", "--rule", "nope", "--for", "1m", "--reason", "x", "--config", config
        )
        == 2
    )
    assert "unknown rule 'nope'" in capsys.readouterr().err
    assert await run_cli("alert", "unsilence", "1", "--config", config) == 0
    assert capsys.readouterr().out.strip() == "applied: cancelled silence #1"
    assert await run_cli("alert", "ack", "api-down", "ep0", "--config", config) == 0
    assert capsys.readouterr().out.strip() == "skipped: api-down/ep0 is not active; nothing to acknowledge"


async def test_outbox_marks_a_stranded_row_and_resend_retargets_it(
    tmp_path: Path, db_dsn: str, db: Database, sink: WebhookSink, capsys: Any
) -> None:
    """Dead-lettered at the old critical webhook; the configuration has another URL now."""
    sink.script("crit", ScriptedReply(404, body="no_service"))
    before, after = tmp_path / "before", tmp_path / "after"
    before.mkdir()
    after.mkdir()
    old_config = write_config(before, db_dsn, sink)
    assert await run_cli("alert", "test", "--config", old_config) == 1
    row_id = await db.fetchval("SELECT id FROM opswatch.notification_outbox")
    config = Path(write_config(after, db_dsn, sink))
    config.write_text(config.read_text().replace(sink.url("crit"), sink.url("new-crit")))
    capsys.readouterr()
    assert await run_cli("alert", "outbox", "--config", str(config)) == 0
    assert f"opswatch alert resend {row_id} --retarget]" in capsys.readouterr().out
    assert await run_cli("alert", "resend", str(row_id), "--retarget", "--config", str(config)) == 0
    assert capsys.readouterr().out.strip() == (
        f"applied: re-queued notification #{row_id} to the route's current destination"
    )
    assert await run_cli("alert", "outbox", "--config", str(config)) == 0
    assert "stranded" not in capsys.readouterr().out
    assert await db.fetchval("SELECT target FROM opswatch.notification_outbox") is None
