from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

import asyncpg
import pytest_asyncio

from core.demo import content
from core.demo.simulator import REDRIVE_CHANNEL, RedriveRequest, TrafficSimulator, parse_redrive_payload
from tests.waiting import until

KNOWN_ERRORS = {text.split("{")[0] for choices in content.PLATFORM_ERRORS.values() for text, _ in choices}


@pytest_asyncio.fixture
async def sim(fresh_db_dsn: str) -> AsyncIterator[TrafficSimulator]:
    """A simulator without live traffic that only wakes up on notifications (poll every 30 s)."""
    simulator = TrafficSimulator(
        fresh_db_dsn, seed=3, speed=30, traffic=False, redrive_delay=0, poll_interval=30
    )
    await simulator.start()
    yield simulator
    await simulator.stop()


@pytest_asyncio.fixture
async def conn(fresh_db_dsn: str) -> AsyncIterator[asyncpg.Connection]:
    connection = await asyncpg.connect(fresh_db_dsn)
    yield connection
    await connection.close()


async def opswatch_retry(conn: asyncpg.Connection, dlq_id: int, payload: object | None = None) -> None:
    """What opswatch's sql redrive does (issue 4), in one transaction."""
    async with conn.transaction():
        message_id = await conn.fetchval(
            "UPDATE dead_letter_messages SET status = 'retried', retry_count = retry_count + 1 "
            "WHERE id = $1 AND status = 'pending' RETURNING message_id",
            dlq_id,
        )
        await conn.execute(
            "UPDATE social_messages SET status = 'pending', error_message = NULL WHERE id = $1", message_id
        )
        if payload is not None:
            await conn.execute("SELECT pg_notify($1, $2)", REDRIVE_CHANNEL, json.dumps(payload))


async def pending_dlq_id(conn: asyncpg.Connection) -> int:
    return int(await conn.fetchval("SELECT min(id) FROM dead_letter_messages WHERE status = 'pending'"))


async def test_populates_like_the_backend(fresh_db_dsn: str) -> None:
    simulator = TrafficSimulator(fresh_db_dsn, seed=1, speed=60, redrive_delay=0)
    await simulator.start()
    try:
        await simulator.generate(messages=5, dead_letters=4, events=3)
        await asyncio.sleep(1.2)  # time under test: live traffic at 5 rows/s (capped)
    finally:
        await simulator.stop()
    await simulator.stop()
    c = simulator.counters
    assert c.messages_sent >= 8 and c.dlq_inserted >= 4 and c.events_failed >= 3
    db = await asyncpg.connect(fresh_db_dsn)
    try:
        shops = {r["name"] for r in await db.fetch("SELECT name FROM businesses")}
        assert "Café Aurora" in shops and len(shops) == len(content.SHOPS)
        platforms = {r["platform"] for r in await db.fetch("SELECT platform FROM social_channels")}
        assert platforms == {"whatsapp", "instagram", "facebook"}
        assert await db.fetchval("SELECT count(*) FROM social_messages WHERE status = 'sent'") >= 8
        dlq = await db.fetch("SELECT * FROM dead_letter_messages ORDER BY id")
        assert len(dlq) >= 27 + 4  # history backlog + generated
        assert {r["status"] for r in dlq} == {"pending", "resolved", "abandoned"}
        for row in dlq:
            data = json.loads(row["message_data"])
            assert data["messageId"] == row["message_id"] and data["businessId"] == row["business_id"]
            assert data["channelId"] == row["channel_id"] and data["to"] and data["body"]
            assert any(row["error_message"].startswith(e) for e in KNOWN_ERRORS), row["error_message"]
            message = await db.fetchrow(
                "SELECT status, error_message FROM social_messages WHERE id = $1", data["messageId"]
            )
            assert message["status"] == "failed" and message["error_message"] == row["error_message"]
        events = await db.fetch("SELECT * FROM event_failures")
        assert {r["event_name"] for r in events} <= set(content.EVENT_WEIGHTS)
        assert all(r["error_stack"].startswith(r["error_message"] + "\n    at ") for r in events)
        recent = await db.fetchval(
            "SELECT count(*) FROM event_failures WHERE created_at > now() - interval '1 hour' AND id <= 14"
        )
        assert recent == 2  # the history alone does not trip "more than 5 per hour"
    finally:
        await db.close()


async def test_redrive_notify_success_resolves_the_row(
    sim: TrafficSimulator, conn: asyncpg.Connection
) -> None:
    sim.force_outcome = "success"
    dlq_id = await pending_dlq_id(conn)
    await opswatch_retry(conn, dlq_id, [dlq_id])

    async def resolved() -> bool:
        return (
            await conn.fetchval("SELECT status FROM dead_letter_messages WHERE id = $1", dlq_id) == "resolved"
        )

    await until(resolved, within=3, what="resolved")  # well before the 30 s poll: the notification did it
    row = await conn.fetchrow(
        "SELECT d.resolved_at, m.status, m.error_message FROM dead_letter_messages d "
        "JOIN social_messages m ON m.id = d.message_id WHERE d.id = $1",
        dlq_id,
    )
    assert row["resolved_at"] is not None and row["status"] == "sent" and row["error_message"] is None
    assert sim.counters.redriven_ok == 1 and sim.counters.notifications == 1


async def test_redrive_notify_failure_goes_back_to_the_dlq(
    sim: TrafficSimulator, conn: asyncpg.Connection
) -> None:
    sim.force_outcome = "failure"
    dlq_id = await pending_dlq_id(conn)
    message_id = await conn.fetchval("SELECT message_id FROM dead_letter_messages WHERE id = $1", dlq_id)
    await opswatch_retry(conn, dlq_id, {"kind": "dlq", "ids": [dlq_id], "message_ids": [message_id]})

    async def requeued() -> bool:
        return bool(
            await conn.fetchval("SELECT count(*) FROM dead_letter_messages WHERE message_id = $1", message_id)
            == 2
        )

    await until(requeued, within=3, what="requeued")
    old, new = await conn.fetch(
        "SELECT * FROM dead_letter_messages WHERE message_id = $1 ORDER BY id", message_id
    )
    assert old["status"] == "retried" and old["retry_count"] == 1
    assert new["status"] == "pending" and new["retry_count"] == 1 and new["id"] > dlq_id
    assert new["message_data"] == old["message_data"] and new["error_message"]
    message = await conn.fetchrow(
        "SELECT status, error_message FROM social_messages WHERE id = $1", message_id
    )
    assert message["status"] == "failed" and message["error_message"] == new["error_message"]
    assert sim.counters.redriven_failed == 1 and sim.counters.dlq_inserted == 1
    # a duplicate notification for the same row is a no-op
    await conn.execute("SELECT pg_notify($1, $2)", REDRIVE_CHANNEL, json.dumps([dlq_id]))
    await asyncio.sleep(0.3)  # time under test: what a wrongly handled duplicate would take to show
    assert (
        await conn.fetchval("SELECT count(*) FROM dead_letter_messages WHERE message_id = $1", message_id)
        == 2
    )


async def test_poll_catches_a_missed_notification_and_retrying_events(fresh_db_dsn: str) -> None:
    simulator = TrafficSimulator(fresh_db_dsn, seed=3, traffic=False, redrive_delay=0, poll_interval=0.1)
    simulator.force_outcome = "success"
    await simulator.start()
    db = await asyncpg.connect(fresh_db_dsn)
    try:
        dlq_id = await pending_dlq_id(db)
        await opswatch_retry(db, dlq_id)  # no pg_notify at all
        events = [
            r["id"] for r in await db.fetch("SELECT id FROM event_failures WHERE status = 'failed' LIMIT 2")
        ]
        await db.execute("UPDATE event_failures SET status = 'retrying' WHERE id = $1", events[0])

        async def settled() -> bool:
            dlq = await db.fetchval("SELECT status FROM dead_letter_messages WHERE id = $1", dlq_id)
            event = await db.fetchval("SELECT status FROM event_failures WHERE id = $1", events[0])
            return bool(dlq == "resolved" and event == "resolved")

        await until(settled, within=3, what="settled")
        simulator.force_outcome = "failure"
        await db.execute("UPDATE event_failures SET status = 'retrying' WHERE id = $1", events[1])

        async def failed_again() -> bool:
            row = await db.fetchrow("SELECT status, retry_count FROM event_failures WHERE id = $1", events[1])
            return bool(row["status"] == "failed" and row["retry_count"] == 1)

        await until(failed_again, within=3, what="failed_again")
        assert simulator.counters.events_resolved == 1 and simulator.counters.events_failed_again == 1
    finally:
        await db.close()
        await simulator.stop()


async def test_http_replay_hook_requeues_the_message(sim: TrafficSimulator, conn: asyncpg.Connection) -> None:
    sim.force_outcome = "success"
    dlq_id = await pending_dlq_id(conn)
    data = json.loads(
        await conn.fetchval("SELECT message_data FROM dead_letter_messages WHERE id = $1", dlq_id)
    )
    await sim.replay(data)  # the backend got the POST; opswatch then marks the row retried
    assert (
        await conn.fetchval("SELECT status FROM social_messages WHERE id = $1", data["messageId"])
        == "pending"
    )
    await conn.execute("UPDATE dead_letter_messages SET status = 'retried' WHERE id = $1", dlq_id)
    assert await sim.process_redrives() == 1
    assert await conn.fetchval("SELECT status FROM dead_letter_messages WHERE id = $1", dlq_id) == "resolved"
    await sim.replay({"messageId": "not a number"})  # ignored


async def test_outcomes_follow_the_seed(fresh_db_dsn: str) -> None:
    a = TrafficSimulator(fresh_db_dsn, seed=5)
    b = TrafficSimulator(fresh_db_dsn, seed=5)
    keys = [f"redrive|{i}" for i in range(200)]
    outcomes = [a._outcome(k) for k in keys]
    assert outcomes == [b._outcome(k) for k in keys]
    assert 0.45 < outcomes.count("success") / 200 < 0.75


def test_parse_redrive_payload() -> None:
    assert parse_redrive_payload("[1, 2]") == RedriveRequest(dlq_ids=(1, 2))
    assert parse_redrive_payload("7") == RedriveRequest(dlq_ids=(7,))
    assert parse_redrive_payload('{"kind": "dlq", "ids": [3], "message_ids": ["4"]}') == RedriveRequest(
        dlq_ids=(3,), message_ids=(4,)
    )
    assert parse_redrive_payload('{"kind": "event", "ids": [9]}') == RedriveRequest(event_ids=(9,))
    for bad in ("", "nope", "[]", "true", '["x"]', '{"ids": [true]}', '{"ids": "1; drop"}', '"5"', "null"):
        assert parse_redrive_payload(bad) is None, bad
