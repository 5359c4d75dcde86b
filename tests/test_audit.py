"""The audit log: write inside a transaction, read back newest first, per-row history."""

from __future__ import annotations

import getpass
import socket

import pytest

from core.audit import default_actor, history_for, narrow_to, outcome_of, read_audit, write_audit
from core.db import Database


@pytest.fixture(autouse=True)
async def _empty(database: Database) -> None:
    await database.execute("TRUNCATE opswatch.audit_log RESTART IDENTITY")


def test_default_actor() -> None:
    assert default_actor("  ops-bot ") == "ops-bot"
    assert default_actor(None) == f"{getpass.getuser()}@{socket.gethostname()}"
    assert default_actor("") == default_actor(None)


def test_outcome_of() -> None:
    assert [outcome_of(*c) for c in [(2, 0, 0), (0, 2, 0), (0, 0, 2), (1, 1, 0), (0, 1, 1)]] == [
        "applied",
        "skipped",
        "failed",
        "partial",
        "partial",
    ]


async def test_write_commits_and_rolls_back_with_the_change(database: Database) -> None:
    async with database.transaction() as conn:
        await write_audit(
            conn,
            actor="a",
            action="alert.ack",
            target_kind="alert",
            target_key="db-down/",
            outcome="applied",
            reason="on it",
            detail={"note": "x"},
        )
    with pytest.raises(RuntimeError):
        async with database.transaction() as conn:
            await write_audit(
                conn, actor="a", action="dlq.retry", target_kind="dlq", target_ids=[1], outcome="applied"
            )
            raise RuntimeError("the change failed")
    entries = await read_audit(database)
    assert [(e.action, e.target_key, e.reason, e.detail) for e in entries] == [
        ("alert.ack", "db-down/", "on it", {"note": "x"})
    ]
    async with database.acquire() as conn:
        with pytest.raises(ValueError, match="unknown audit outcome"):
            await write_audit(conn, actor="a", action="x", target_kind="dlq", outcome="maybe")


async def test_read_filters_paging_and_safe_text(database: Database) -> None:
    async with database.transaction() as conn:
        for i in range(5):
            await write_audit(
                conn,
                actor="\x1b[31mmallory" if i == 4 else "bob",
                action=f"dlq.a{i}",
                target_kind="dlq" if i % 2 == 0 else "event",
                target_ids=[i + 1, 100],
                filter={"status": ["pending"]},
                reason="line1\nline2\x07",
                outcome="applied",
            )
    first = await read_audit(database, limit=2)
    assert [e.action for e in first] == ["dlq.a4", "dlq.a3"]
    assert first[0].actor == "mallory"
    assert first[0].reason == "line1\nline2\ufffd" and first[0].filter == {"status": ["pending"]}
    rest = await read_audit(database, before_id=first[-1].id)
    assert [e.action for e in rest] == ["dlq.a2", "dlq.a1", "dlq.a0"]
    assert [e.action for e in await read_audit(database, target_kind="event")] == ["dlq.a3", "dlq.a1"]
    assert [e.action for e in await read_audit(database, target_id=3)] == ["dlq.a2"]
    assert len(await read_audit(database, target_id=100)) == 5
    with pytest.raises(ValueError):
        await read_audit(database, limit=0)


async def test_history_is_narrowed_to_the_row(database: Database) -> None:
    async with database.transaction() as conn:
        await write_audit(
            conn,
            actor="bob",
            action="dlq.retry",
            target_kind="dlq",
            target_ids=[7, 8, 9],
            outcome="partial",
            reason="go",
            detail={
                "to": "retried",
                "from": {"7": "pending", "8": "pending"},
                "failed": {"9": "HTTP 500"},
                "redrive": {"mode": "http"},
            },
        )
        await write_audit(
            conn,
            actor="bob",
            action="dlq.retry",
            target_kind="event",
            target_ids=[7],
            outcome="applied",
            detail={"from": {"7": "failed"}},
        )
    [h7] = await history_for(database, "dlq", 7)
    assert (h7.target_ids, h7.outcome, h7.from_state, h7.reason) == ((7,), "applied", "pending", "go")
    assert h7.detail == {
        "from_state": "pending",
        "to": "retried",
        "redrive": {"mode": "http"},
        "batch_rows": 3,
    }
    [h9] = await history_for(database, "dlq", 9)
    assert h9.outcome == "failed" and h9.detail is not None and h9.detail["error"] == "HTTP 500"
    assert h9.from_state is None
    assert await history_for(database, "dlq", 10) == ()
    plain = (await read_audit(database, target_kind="dlq"))[0]
    assert narrow_to(plain, 8).from_state == "pending"
