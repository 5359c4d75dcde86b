"""Redrive in both modes: sql (reset + pg_notify, seen by LISTEN) and http (a real local replay server)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

import asyncpg
import pytest

from core.audit import read_audit
from core.db import Database
from core.triage import REDRIVE_CHANNEL, DlqFilter, EventFilter, TriageService
from core.triage.redrive import notify_payloads
from tests.servers import ScriptedReply, WebhookSink
from tests.test_triage_support import add_dlq, add_events, triage_config


@pytest.fixture
async def sink() -> AsyncIterator[WebhookSink]:
    async with WebhookSink() as server:
        yield server


async def test_sql_redrive_notifies_listeners_in_the_same_transaction(
    database: Database, db_dsn: str, base: dict[str, int]
) -> None:
    async with database.acquire() as conn:
        ids = await add_dlq(conn, 3, business_id=base["b1"], channel_id=base["c1"])
        [event_id] = await add_events(conn, 1, business_id=base["b1"])
        message_ids = [
            r["message_id"]
            for r in await conn.fetch("SELECT message_id FROM dead_letter_messages ORDER BY id")
        ]
    received: asyncio.Queue[str] = asyncio.Queue()
    listener = await asyncpg.connect(db_dsn)
    try:
        await listener.add_listener(REDRIVE_CHANNEL, lambda *args: received.put_nowait(args[-1]))
        svc = TriageService(database, triage_config(), actor="ops")
        await svc.kind("dlq").act("retry", ids[:2])
        payload = json.loads(await asyncio.wait_for(received.get(), 2))
        assert payload == {"kind": "dlq", "ids": ids[:2], "message_ids": message_ids[:2]}
        await svc.kind("events").act("retry", [event_id])
        assert json.loads(await asyncio.wait_for(received.get(), 2)) == {"kind": "event", "ids": [event_id]}
        # nothing applied -> nothing notified
        await svc.kind("dlq").act("retry", ids[:1])
        await asyncio.sleep(0.1)
        assert received.empty()
    finally:
        await listener.close()
    rows = await database.fetch("SELECT id, status, error_message FROM social_messages ORDER BY id")
    assert [(r["status"], r["error_message"]) for r in rows[:2]] == [("pending", None)] * 2
    assert rows[2]["status"] == "failed"


def test_notify_payloads_stay_under_the_limit() -> None:
    ids = list(range(10_000_000, 10_002_000))
    payloads = notify_payloads("dlq", ids, ids)
    assert len(payloads) > 1 and all(len(p) < 8000 for p in payloads)
    assert [i for p in payloads for i in json.loads(p)["ids"]] == ids


async def test_http_redrive_fails_then_succeeds_with_the_same_idempotency_key(
    database: Database, base: dict[str, int], sink: WebhookSink
) -> None:
    data = '{"to": "+4915700001", "text": "Ihre Bestellung \\u001b[31m", "nested": {"a": [1, 2]}}'
    async with database.acquire() as conn:
        [row_id] = await add_dlq(conn, 1, business_id=base["b1"], channel_id=base["c1"], data=data)
    cfg = triage_config(
        redrive={
            "mode": "http",
            "replay_url": sink.url("replay"),
            "headers": {"Authorization": "Bearer s3cret-token"},
        }
    )
    svc = TriageService(database, cfg, actor="ops")
    sink.script("/replay", ScriptedReply(503, body="backend \x1b[31mbusy\nretry later"))
    try:
        first = await svc.kind("dlq").act("retry", [row_id])
        assert first.applied == () and [f.id for f in first.failed] == [row_id]
        assert first.failed[0].error == "HTTP 503: backend busy…"
        status = await database.fetchrow(
            "SELECT status, retry_count FROM dead_letter_messages WHERE id = $1", row_id
        )
        assert status is not None and (status["status"], status["retry_count"]) == ("pending", 0)
        [audit] = await read_audit(database, target_kind="dlq")
        assert audit.outcome == "failed" and audit.target_ids == (row_id,)
        assert audit.detail is not None and audit.detail["failed"] == {str(row_id): "HTTP 503: backend busy…"}

        second = await svc.kind("dlq").act("retry", [row_id])
        assert second.applied == (row_id,) and second.failed == ()
    finally:
        await svc.aclose()
    first_req, second_req = sink.received
    assert (
        first_req.headers["Idempotency-Key"]
        == second_req.headers["Idempotency-Key"]
        == f"opswatch-dlq-{row_id}-1"
    )
    assert second_req.headers["Authorization"] == "Bearer s3cret-token"
    assert second_req.headers["X-Opswatch-Kind"] == "dlq"
    assert second_req.body == json.loads(data)
    status = await database.fetchrow(
        "SELECT status, retry_count FROM dead_letter_messages WHERE id = $1", row_id
    )
    assert status is not None and (status["status"], status["retry_count"]) == ("retried", 1)
    detail = await svc.kind("dlq").detail(row_id)
    assert detail is not None
    assert [(h.action, h.outcome, (h.detail or {}).get("error")) for h in detail.history] == [
        ("dlq.retry", "applied", None),
        ("dlq.retry", "failed", "HTTP 503: backend busy…"),
    ]
    # the message row is left to the backend in http mode
    assert await database.fetchval("SELECT status FROM social_messages") == "failed"


async def test_http_redrive_bulk_with_unreachable_and_slow_backend(
    database: Database, base: dict[str, int], sink: WebhookSink
) -> None:
    async with database.acquire() as conn:
        ids = await add_events(conn, 4, business_id=base["b1"], data=None)
    cfg = triage_config(redrive={"mode": "http", "replay_url": sink.url("events"), "timeout": "200ms"})
    async with TriageService(database, cfg, actor="ops") as svc:
        sink.script("/events", ScriptedReply(200), ScriptedReply(500), ScriptedReply(200, delay_s=1.0))
        result = await svc.kind("events").bulk(EventFilter(), "retry")
    assert len(result.applied) == 2 and len(result.failed) == 2
    errors = sorted(f.error for f in result.failed)
    assert errors == ["HTTP 500: ok", "replay timed out after 0.2s"]
    assert {r.body for r in sink.received} == {None}
    rows = await database.fetch("SELECT status, count(*) AS n FROM event_failures GROUP BY 1 ORDER BY 1")
    assert [(r["status"], r["n"]) for r in rows] == [("failed", 2), ("retrying", 2)]
    assert set(result.applied) | {f.id for f in result.failed} == set(ids)

    down = triage_config(redrive={"mode": "http", "replay_url": "http://127.0.0.1:9/replay"})
    async with TriageService(database, down, actor="ops") as svc:
        failed = await svc.kind("events").bulk(EventFilter(), "retry")
    assert failed.applied == () and {f.error for f in failed.failed} == {
        "replay failed: cannot connect to the replay URL"
    }
    # the URL (which may carry a token) never appears in a result
    assert all("127.0.0.1" not in f.error for f in failed.failed)
    assert (await TriageService(database, down, actor="x").kind("dlq").preview(DlqFilter())).count == 0


async def test_http_bulk_stops_when_the_replay_target_keeps_failing(
    database: Database, base: dict[str, int], sink: WebhookSink
) -> None:
    async with database.acquire() as conn:
        await add_events(conn, 200, business_id=base["b1"])
    sink.script("/down", *[ScriptedReply(500, body="down")] * 200)
    cfg = triage_config(redrive={"mode": "http", "replay_url": sink.url("down")})
    async with TriageService(database, cfg, actor="ops") as svc:
        result = await svc.kind("events").bulk(EventFilter(), "retry")
    assert result.applied == () and len(result.failed) == 150 and result.batches == 3
    assert result.stopped is not None and "3 batches in a row failed" in result.stopped
    assert "HTTP 500: down" in result.stopped and not result.all_applied
    assert await database.fetchval("SELECT count(*) FROM event_failures WHERE status = 'failed'") == 200
    summary = (await read_audit(database, target_kind="event"))[0]
    assert summary.action == "events.retry.bulk" and summary.detail is not None
    assert summary.detail["stopped"] == result.stopped and summary.outcome == "failed"


async def test_http_redrive_holds_no_row_lock_while_the_backend_replays(
    database: Database, base: dict[str, int], sink: WebhookSink
) -> None:
    """The rows are claimed, not locked, during the replay: the backend's worker can still write
    them, and another operator's action skips them, naming who is redriving."""
    async with database.acquire() as conn:
        ids = await add_dlq(conn, 2, business_id=base["b1"], channel_id=base["c1"])
    sink.script("/slow", ScriptedReply(200, delay_s=1.5), ScriptedReply(200, delay_s=1.5))
    http = triage_config(redrive={"mode": "http", "replay_url": sink.url("slow"), "timeout": "5s"})
    alice = TriageService(database, http, actor="alice")
    bob = TriageService(database, triage_config(), actor="bob")
    try:
        retry = asyncio.create_task(alice.kind("dlq").act("retry", ids))
        for _ in range(100):  # until the claims are committed: the replays are running then
            if await database.fetchval("SELECT count(*) FROM opswatch.redrive_claims") == 2:
                break
            await asyncio.sleep(0.02)
        async with database.transaction() as conn:  # what the backend's worker would do meanwhile
            locked = await conn.fetch(
                "SELECT id FROM dead_letter_messages WHERE id = ANY($1::bigint[]) FOR UPDATE NOWAIT", ids
            )
        assert len(locked) == 2
        abandon = await bob.kind("dlq").act("abandon", ids, reason="dup")
        assert abandon.applied == ()
        skipped = [(s.id, s.reason, s.by) for s in abandon.skipped]
        assert skipped == [(i, "being redriven", "alice") for i in ids]
        result = await retry
    finally:
        await alice.aclose()
        await bob.aclose()
    assert sorted(result.applied) == ids and result.skipped == ()  # replays finish in any order
    rows = await database.fetch("SELECT status FROM dead_letter_messages WHERE id = ANY($1::bigint[])", ids)
    assert [r["status"] for r in rows] == ["retried", "retried"]
    assert await database.fetchval("SELECT count(*) FROM opswatch.redrive_claims") == 0


async def test_claims_are_released_on_failure_and_lapse_when_their_owner_died(
    database: Database, base: dict[str, int], sink: WebhookSink
) -> None:
    async with database.acquire() as conn:
        ids = await add_dlq(conn, 3, business_id=base["b1"], channel_id=base["c1"])
        await conn.execute(
            "INSERT INTO opswatch.redrive_claims (kind, row_id, claimed_by, token, expires_at) VALUES"
            " ('dlq', $1, 'carol', 't1', now() + interval '1 hour'),"
            " ('dlq', $2, 'ghost', 't2', now() - interval '1 second')",
            ids[0],
            ids[1],
        )
    sink.script("/down", *[ScriptedReply(500, body="down")] * 5)
    http = triage_config(redrive={"mode": "http", "replay_url": sink.url("down")})
    async with TriageService(database, http, actor="alice") as svc:
        failed = await svc.kind("dlq").act("retry", ids)
    assert [(s.id, s.by) for s in failed.skipped] == [(ids[0], "carol")]
    assert sorted(f.id for f in failed.failed) == ids[1:]  # the lapsed claim did not stop it
    claims = await database.fetch("SELECT row_id, claimed_by FROM opswatch.redrive_claims ORDER BY row_id")
    assert [(r["row_id"], r["claimed_by"]) for r in claims] == [(ids[0], "carol")]  # ours released
    async with TriageService(database, triage_config(), actor="bob") as svc:  # sql mode respects it too
        retried = await svc.kind("dlq").act("retry", ids)
    assert retried.applied == tuple(ids[1:])
    assert [(s.id, s.reason, s.by) for s in retried.skipped] == [(ids[0], "being redriven", "carol")]
