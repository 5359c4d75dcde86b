"""Database metrics: server stats, pg_stat_statements when present, read-only custom SQL metrics."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from core.config import MetricConfig
from core.db import Database, PoolSettings
from core.sources import MetricQueryError, collect_custom_metric, collect_custom_metrics, collect_db_stats
from tests.test_triage_support import triage_config


@pytest.fixture
async def db(fresh_db_dsn: str) -> AsyncIterator[Database]:
    database = Database(fresh_db_dsn, PoolSettings(min_size=1, max_size=2, statement_timeout_s=0.5))
    yield database
    await database.close()


async def test_db_stats_without_and_with_pg_stat_statements(db: Database) -> None:
    config = triage_config()
    await db.execute("INSERT INTO businesses (name) SELECT 'b' || g FROM generate_series(1, 500) g")
    stats = await collect_db_stats(db, config)
    assert stats.slow_statements is None and stats.slowest_mean_ms is None  # extension not created: no error
    assert 1 <= stats.connections_used <= stats.max_connections == 200
    assert stats.database_bytes > 1_000_000
    names = [t.name for t in stats.tables]
    for table in ("public.dead_letter_messages", "public.event_failures", "public.businesses"):
        assert table in names
    assert stats.tables == tuple(sorted(stats.tables, key=lambda t: -t.bytes))

    await db.execute("CREATE EXTENSION pg_stat_statements")
    await db.fetchval("SELECT count(*) FROM businesses WHERE name LIKE '%9%'")
    stats = await collect_db_stats(db, config)
    assert stats.slow_statements is not None and len(stats.slow_statements) >= 1
    assert stats.slowest_mean_ms == max(s.mean_ms for s in stats.slow_statements)
    assert all("\n" not in s.query and s.calls >= 1 for s in stats.slow_statements)


async def test_custom_metric_values(db: Database) -> None:
    await db.execute("INSERT INTO businesses (name) VALUES ('a'), ('b'), ('c')")
    assert (
        await collect_custom_metric(db, MetricConfig(name="n", sql="SELECT count(*) FROM businesses")) == 3.0
    )
    assert await collect_custom_metric(db, MetricConfig(name="r", sql="SELECT 12.5::numeric")) == 12.5
    assert await collect_custom_metric(db, MetricConfig(name="z", sql="SELECT NULL::int")) is None
    assert await collect_custom_metric(db, MetricConfig(name="e", sql="SELECT 1 WHERE false")) is None


@pytest.mark.parametrize(
    ("sql", "message"),
    [
        ("INSERT INTO businesses (name) VALUES ('x') RETURNING id", "read-only transaction"),
        ("SELECT pg_sleep(5)", "timed out after 500 ms"),
        ("SELECT 'abc'", "must return one number"),
        ("SELECT 1, 2", "one column"),
        ("SELECT 1; DROP TABLE businesses", "multiple commands"),
        ("SELECT * FROM no_such_table", "does not exist"),
    ],
)
async def test_custom_metric_is_read_only_and_bounded(db: Database, sql: str, message: str) -> None:
    with pytest.raises(MetricQueryError, match=message):
        await collect_custom_metric(db, MetricConfig(name="bad", sql=sql))
    assert await db.fetchval("SELECT count(*) FROM businesses") == 0
    assert await db.fetchval("SELECT to_regclass('businesses') IS NOT NULL")


async def test_collect_custom_metrics_reports_failures_as_none(db: Database) -> None:
    from core.config import loads_config

    config = loads_config(
        "metrics:\n"
        "  - {name: ok, sql: 'SELECT 42'}\n"
        "  - {name: broken, sql: 'SELECT nope'}\n"
        "alerts: {rules: []}\n"
    )
    assert await collect_custom_metrics(db, config) == (("ok", 42.0), ("broken", None))
