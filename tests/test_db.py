"""Database layer against a real PostgreSQL: migrations, app schema, health, outage handling."""

from __future__ import annotations

import asyncpg
import pytest

from core.db import Database, DatabaseUnavailable, PoolSettings
from core.embedded import free_port
from core.migrate import available_migrations, init_app_schema, migrate


async def test_migrations_are_recorded_and_idempotent(db_dsn: str) -> None:
    conn = await asyncpg.connect(db_dsn)
    try:
        assert await migrate(conn) == []  # template already migrated
        versions = [r["version"] for r in await conn.fetch("SELECT version FROM opswatch.schema_migrations")]
        assert versions == [m.version for m in available_migrations()]
        tables = {
            r["table_name"]
            for r in await conn.fetch(
                "SELECT table_name FROM information_schema.tables WHERE table_schema = 'opswatch'"
            )
        }
        assert {
            "audit_log",
            "alert_state",
            "alert_history",
            "silences",
            "notification_outbox",
            "probe_samples",
            "schema_migrations",
        } <= tables
    finally:
        await conn.close()


async def test_app_schema_matches_seed_constraints(db_dsn: str) -> None:
    conn = await asyncpg.connect(db_dsn)
    try:
        await init_app_schema(conn)  # idempotent
        await conn.execute("INSERT INTO businesses (name) VALUES ('b')")
        with pytest.raises(asyncpg.CheckViolationError):
            await conn.execute(
                "INSERT INTO event_failures (event_name, business_id, error_message, status)"
                " VALUES ('x', 1, 'e', 'bogus')"
            )
        with pytest.raises(asyncpg.ForeignKeyViolationError):
            await conn.execute(
                "INSERT INTO dead_letter_messages (message_id, business_id, channel_id, error_message,"
                " message_data) VALUES (1, 1, 999, 'e', '{}')"
            )
        indexes = {r["indexname"] for r in await conn.fetch("SELECT indexname FROM pg_indexes")}
        assert {"idx_dead_letter_messages_status", "idx_event_failures_event_name"} <= indexes
    finally:
        await conn.close()


async def test_health_reports_round_trip(database: Database) -> None:
    health = await database.health()
    assert health.up and health.rtt_ms is not None and health.rtt_ms >= 0
    assert await database.fetchval("SHOW statement_timeout") == "5s"


async def test_unreachable_database_is_a_typed_result_not_a_crash() -> None:
    db = Database(
        f"postgresql://ops:hunter2secret@127.0.0.1:{free_port()}/pos", PoolSettings(connect_timeout_s=1)
    )
    health = await db.health()
    assert not health.up and health.down_since is not None
    assert "hunter2secret" not in (health.error or "")
    with pytest.raises(DatabaseUnavailable):
        await db.fetchval("SELECT 1")  # fails fast during backoff, no hang
    await db.close()


async def test_statement_timeout_is_enforced(db_dsn: str) -> None:
    db = Database(db_dsn, PoolSettings(statement_timeout_s=0.2))
    with pytest.raises(asyncpg.QueryCanceledError):
        await db.fetchval("SELECT pg_sleep(2)")
    await db.close()
