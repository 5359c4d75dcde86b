"""Database activity on a real server: sessions, a real lock wait as a tree, idle-in-transaction,
connections by state, and "slowest statements" without opswatch's own."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import asyncpg
import pytest

from core.db import Database, PoolSettings
from core.pg_activity import OWN_APPLICATION, DbActivity, Session, blocking_tree, collect_activity
from core.sources import collect_db_stats, slow_statements
from tests.test_triage_support import triage_config

HOSTILE_QUERY = "SELECT '[bold]x[/] \x1b[31mred\x1b[0m \u202eevil' AS hostile, pg_sleep(30)"


@pytest.fixture
async def db(fresh_db_dsn: str) -> AsyncIterator[Database]:
    database = Database(fresh_db_dsn, PoolSettings(min_size=1, max_size=2))
    yield database
    await database.close()


async def until(probe, predicate, within: float = 10.0):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + within
    while True:
        value = await probe()
        if predicate(value):
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out: {value!r}")
        await asyncio.sleep(0.05)


async def test_blocking_tree_idle_in_transaction_and_active_queries(db: Database, fresh_db_dsn: str) -> None:
    holder = await asyncpg.connect(fresh_db_dsn, server_settings={"application_name": "pos-backend"})
    waiter = await asyncpg.connect(fresh_db_dsn, server_settings={"application_name": "pos-worker"})
    second = await asyncpg.connect(fresh_db_dsn, server_settings={"application_name": "pos-worker-2"})
    sleeper = await asyncpg.connect(fresh_db_dsn, server_settings={"application_name": "report"})
    tasks: list[asyncio.Task[object]] = []
    try:
        await holder.execute("INSERT INTO businesses (name) VALUES ('Acme')")
        hold = holder.transaction()
        await hold.start()
        await holder.execute("UPDATE businesses SET name = 'held' WHERE id = 1")  # row lock, then idle
        tasks.append(asyncio.ensure_future(waiter.execute("UPDATE businesses SET name = 'w1' WHERE id = 1")))
        tasks.append(asyncio.ensure_future(second.execute("DELETE FROM businesses WHERE id = 1")))
        tasks.append(asyncio.ensure_future(sleeper.execute(HOSTILE_QUERY)))
        pids = {c: c.get_server_pid() for c in (holder, waiter, second, sleeper)}

        activity: DbActivity = await until(
            lambda: collect_activity(db),
            lambda a: (
                len([n for n in a.blocking_tree if n.depth > 0]) >= 2
                and any(s.pid == pids[sleeper] and s.state == "active" for s in a.sessions)
            ),
        )
        tree = activity.blocking_tree
        assert tree[0].session.pid == pids[holder] and tree[0].depth == 0 and tree[0].blocks >= 2
        assert tree[0].session.idle_in_transaction and tree[0].session.application == "pos-backend"
        waiting = {n.session.pid for n in tree if n.depth > 0}
        assert pids[waiter] in waiting and pids[second] in waiting
        for node in tree[1:]:
            assert node.session.wait.startswith("Lock:") and node.session.state == "active"

        long = activity.long_transactions()
        assert pids[holder] in {s.pid for s in long}  # idle in transaction is listed at any age
        assert long == tuple(sorted(long, key=lambda s: -(s.xact_age_s or 0.0)))

        active = {s.pid: s for s in activity.active}
        assert {pids[waiter], pids[second], pids[sleeper]} <= set(active)
        shown = active[pids[sleeper]].query
        assert "\x1b" not in shown and "\u202e" not in shown and len(shown) <= 300
        assert "pg_sleep" in shown
        assert all(not s.own or s.application == OWN_APPLICATION for s in activity.sessions)

        use = activity.connections
        states = dict(use.by_state)
        assert states.get("idle in transaction", 0) >= 1 and states.get("active", 0) >= 3
        assert use.max_connections == 200 and use.total >= 4 and use.reserved >= 0
    finally:
        for conn in (waiter, second, sleeper):
            conn.terminate()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await holder.close()


def session(pid: int, *blocked_by: int) -> Session:
    return Session(pid, "pos", "app", "x", "active", "", f"q{pid}", 1.0, 1.0, 1.0, tuple(blocked_by))


def test_blocking_tree_shapes() -> None:
    assert blocking_tree([session(1), session(2)]) == ()
    tree = blocking_tree([session(1), session(2, 1), session(3, 2), session(4, 1), session(9, 7)])
    assert [(n.session.pid, n.depth, n.blocks) for n in tree] == [
        (1, 0, 3),
        (2, 1, 1),
        (3, 2, 0),
        (4, 1, 0),
        (7, 0, 1),
        (9, 1, 0),
    ]
    assert tree[4].session.query == "(not visible)"  # pid 7 blocks but is not listed
    cycle = blocking_tree([session(1, 2), session(2, 1)])  # a deadlock not yet broken: no endless walk
    assert [n.session.pid for n in cycle] == [1, 2]


async def test_slowest_statements_leave_out_opswatch_own(db: Database) -> None:
    await db.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
    await db.execute("SELECT pg_stat_statements_reset()")
    await db.execute("CREATE TABLE opswatch.scratch (id int)")  # opswatch's own DDL
    await db.execute("CREATE TABLE app_ddl (id int)")  # DDL of anyone: not query performance
    await db.execute("SELECT count(*) FROM opswatch.audit_log")
    await collect_db_stats(db, triage_config())  # opswatch's own catalog and summary queries
    await collect_activity(db)
    await db.fetchval("SELECT count(*) FROM businesses WHERE name LIKE '%9%' AND pg_sleep(0.05) IS NOT NULL")
    async with db.acquire() as conn:
        slow = await slow_statements(conn)
    assert slow is not None
    texts = [s.query for s in slow]
    assert texts and "FROM businesses WHERE name LIKE" in texts[0]
    for text in texts:
        assert "opswatch" not in text.lower() and not text.upper().startswith("CREATE"), text
        assert "pg_stat_activity" not in text and "pg_class" not in text, text
