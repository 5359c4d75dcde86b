"""Live changes (install-notify triggers, polling fallback) and `db advise` index checks."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

import asyncpg
import pytest

from core.db import Database, PoolSettings
from core.notify_triggers import CHANGES_CHANNEL, Change, ChangeWatcher, install, installed, uninstall
from core.triage import DlqFilter, TriageService
from core.triage.advise import advise, advise_settings, apply_advice, missing_sql
from tests.test_triage_support import add_dlq, seed_base, triage_config


@pytest.fixture
async def db(fresh_db_dsn: str) -> AsyncIterator[Database]:
    database = Database(fresh_db_dsn, PoolSettings(min_size=1, max_size=4))
    yield database
    await database.close()


async def test_install_notify_sends_one_notification_per_statement(db: Database, fresh_db_dsn: str) -> None:
    config = triage_config()
    async with db.acquire() as conn:
        assert not await installed(conn, config)
        await install(conn, config)
        await install(conn, config)  # idempotent
        assert await installed(conn, config)
        audited = await conn.fetchval(
            "SELECT count(*) FROM opswatch.audit_log"
            " WHERE action = 'db.install_notify' AND outcome = 'applied'"
        )
        assert audited == 2
        base = await seed_base(conn)
    got: asyncio.Queue[dict[str, object]] = asyncio.Queue()
    listener = await asyncpg.connect(fresh_db_dsn)
    try:
        await listener.add_listener(CHANGES_CHANNEL, lambda *a: got.put_nowait(json.loads(a[-1])))
        async with db.acquire() as conn:
            ids = await add_dlq(conn, 3, business_id=base["b1"], channel_id=base["c1"])
        assert await asyncio.wait_for(got.get(), 1) == {
            "kind": "dlq",
            "op": "insert",
            "count": 3,
            "max_id": ids[-1],
        }
        await TriageService(db, config, actor="ops").kind("dlq").bulk(DlqFilter(), "retry")
        assert await asyncio.wait_for(got.get(), 1) == {
            "kind": "dlq",
            "op": "update",
            "count": 3,
            "max_id": ids[-1],
        }
        await db.execute("UPDATE dead_letter_messages SET retry_count = 5")  # no status change: silent
        await db.execute(
            "INSERT INTO event_failures (event_name, business_id, error_message) VALUES ('e', $1, 'x')",
            base["b1"],
        )
        assert (await asyncio.wait_for(got.get(), 1))["kind"] == "event"
        assert got.empty()
    finally:
        await listener.close()
    async with db.acquire() as conn:
        await uninstall(conn, config)
        assert not await installed(conn, config)


@pytest.mark.parametrize("triggers", [True, False])
async def test_change_watcher_sees_a_new_row_within_a_second(db: Database, triggers: bool) -> None:
    config = triage_config()
    async with db.acquire() as conn:
        base = await seed_base(conn)
        if triggers:
            await install(conn, config)
    changes: asyncio.Queue[Change] = asyncio.Queue()
    watcher = ChangeWatcher(db, config, changes.put_nowait, interval=0.2)
    await watcher.start()
    try:
        for _ in range(50):
            if watcher.mode in ("notify", "poll"):
                break
            await asyncio.sleep(0.02)
        await asyncio.sleep(0.25)
        assert watcher.mode == ("notify" if triggers else "poll")
        async with db.acquire() as conn:
            [row_id] = await add_dlq(conn, 1, business_id=base["b1"], channel_id=base["c1"])
        change = await asyncio.wait_for(changes.get(), 1.0)
        assert change.max_id == row_id
        assert change.kind == ("dlq" if triggers else None)
    finally:
        await watcher.stop()


async def test_advise_reports_and_creates_missing_indexes(db: Database) -> None:
    config = triage_config()
    async with db.acquire() as conn:
        before = await advise(conn, config)
        assert before and not any(a.exists for a in before)
        assert {(a.table, a.columns) for a in before} >= {
            ("public.dead_letter_messages", ("status", "created_at", "id")),
            ("public.event_failures", ("status", "created_at", "id")),
            ("public.dead_letter_messages", ("error_message",)),
        }
        settings = await advise_settings(conn, config)
        assert len(settings) == 4 and not any(st.ok for st in settings)
        statements = missing_sql(before, settings)
        assert statements[0] == 'CREATE EXTENSION IF NOT EXISTS "pg_trgm"'
        assert all("CONCURRENTLY" in s for s in statements[1:-4])
        assert statements[-4:] == [st.alter_sql for st in settings]
        assert any('INCLUDE ("business_id", "channel_id")' in s for s in statements)
        ran = await apply_advice(conn, config, actor="dba@host")
        assert ran == statements
        row = await conn.fetchrow(
            "SELECT actor, outcome, detail FROM opswatch.audit_log WHERE action = 'db.advise_apply'"
        )
        assert row is not None and row["actor"] == "dba@host" and row["outcome"] == "applied"
        assert json.loads(row["detail"])["ran"] == statements
        after = await advise(conn, config)
        settings = await advise_settings(conn, config)
        assert all(a.exists for a in after) and all(st.ok for st in settings)
        assert missing_sql(after, settings) == []
        assert await apply_advice(conn, config) == []
        # stricter settings count as in place
        await conn.execute("ALTER TABLE event_failures SET (autovacuum_vacuum_scale_factor = 0.001)")
        assert all(st.ok for st in await advise_settings(conn, config))
        # an equivalent index under another name counts
        name = next(a.existing_name for a in after if a.columns == ("created_at",) and "dead" in a.table)
        await conn.execute(f'DROP INDEX "{name}"')
        await conn.execute("CREATE INDEX my_own ON dead_letter_messages (created_at, id)")
        again = {(a.table, a.columns): a for a in await advise(conn, config)}
        assert again[("public.dead_letter_messages", ("created_at",))].existing_name == "my_own"
