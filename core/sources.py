"""Metrics read from the monitored PostgreSQL: DLQ backlog, event failures, server stats, custom SQL.

Every function returns a :mod:`core.snapshot` dataclass with display-safe text. A lost
connection surfaces as :class:`core.db.DatabaseUnavailable` (the Monitor records it as stale).
"""

from __future__ import annotations

import math
from decimal import Decimal
from typing import Any

import asyncpg

from core.config import Config, MetricConfig
from core.db import Database
from core.migrate import quote_ident
from core.safe_text import display_text
from core.snapshot import CountBy, DbStats, DlqSummary, EventSummary, EventTally, SlowStatement, TableSize
from core.triage.schema import AppTables

TOP_GROUPS = 10
SLOW_STATEMENTS = 10

OWN_MARK = "/* opswatch */"
"""Follows SELECT in opswatch's own statements on the app's tables and the catalogs, so that
"slowest statements" can leave them out: pg_stat_statements keeps a comment inside a statement
(not one before it), and it does not record the application_name."""


class MetricQueryError(Exception):
    """A custom metric's SQL failed or returned something that is not one number."""


# --------------------------------------------------------------------------- DLQ and events


def dlq_summary_sql(tables: AppTables) -> tuple[str, str]:
    """(totals statement, pending-by-channel-and-business statement)."""
    t = tables.dlq
    status, created, resolved = t.c("status"), t.c("created_at"), t.c("resolved_at")
    totals = f"""
        SELECT {OWN_MARK}
          (SELECT count(*) FROM {t.q} WHERE {status} = 'pending') AS pending,
          (SELECT EXTRACT(EPOCH FROM now() - min({created})::timestamptz)
             FROM {t.q} WHERE {status} = 'pending') AS oldest_age,
          (SELECT count(*) FROM {t.q} WHERE {created} >= LOCALTIMESTAMP - interval '1 hour') AS inflow,
          (SELECT count(*) FROM {t.q} WHERE {resolved} >= LOCALTIMESTAMP - interval '1 hour') AS outflow,
          (SELECT max({t.c("id")}) FROM {t.q}) AS max_id"""
    groups = f"""
        SELECT {OWN_MARK}
               {t.c("channel_id")} AS channel_id, {t.c("business_id")} AS business_id, count(*) AS n
        FROM {t.q} WHERE {status} = 'pending'
        GROUP BY GROUPING SETS (({t.c("channel_id")}), ({t.c("business_id")}))"""
    return totals, groups


def event_summary_sql(tables: AppTables) -> str:
    t = tables.events
    created = t.c("created_at")
    return f"""
        SELECT {OWN_MARK} {t.c("event_name")} AS event_name, {t.c("status")} AS status,
               LEAST(23, GREATEST(0, floor(
                   EXTRACT(EPOCH FROM LOCALTIMESTAMP - {created}) / 3600)))::int AS age_h,
               count(*) AS n,
               (SELECT max({t.c("id")}) FROM {t.q}) AS max_id
        FROM {t.q}
        WHERE {created} >= LOCALTIMESTAMP - interval '24 hours'
        GROUP BY 1, 2, 3"""


def _top(counts: dict[int, int], names: dict[int, str]) -> tuple[CountBy, ...]:
    ranked = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:TOP_GROUPS]
    return tuple(CountBy(names.get(k, f"#{k}"), n, k) for k, n in ranked)


async def _names(
    conn: asyncpg.Connection, tables: AppTables, ids: list[int], channels: bool
) -> dict[int, str]:
    if not ids:
        return {}
    if channels:
        c = tables.channels
        if not c.has("name"):  # the app's table has no name column (schema doctor): shown as #id
            return {}
        platform = c.c("platform") if c.has("platform") else "NULL::text"
        rows = await conn.fetch(
            f"SELECT {OWN_MARK} {c.c('id')} AS id, {c.c('name')} AS name, {platform} AS platform "
            f"FROM {c.q} WHERE {c.c('id')} = ANY($1::bigint[])",
            ids,
        )
        return {
            r["id"]: display_text(f"{r['name']} ({r['platform']})" if r["platform"] else r["name"], 80)
            for r in rows
        }
    b = tables.businesses
    rows = await conn.fetch(
        f"SELECT {OWN_MARK} {b.c('id')} AS id, {b.c('name')} AS name "
        f"FROM {b.q} WHERE {b.c('id')} = ANY($1::bigint[])",
        ids,
    )
    return {r["id"]: display_text(r["name"], 80) for r in rows}


async def dlq_summary(db: Database, config: Config, tables: AppTables | None = None) -> DlqSummary:
    """Pending backlog, oldest pending age, inflow/outflow over the last hour, top channels/businesses."""
    tables = tables or AppTables.from_config(config)
    totals_sql, groups_sql = dlq_summary_sql(tables)
    async with db.acquire() as conn:
        totals = await conn.fetchrow(totals_sql)
        groups = await conn.fetch(groups_sql)
        by_channel = {r["channel_id"]: r["n"] for r in groups if r["channel_id"] is not None}
        by_business = {r["business_id"]: r["n"] for r in groups if r["business_id"] is not None}
        top_channels = [k for k, _ in sorted(by_channel.items(), key=lambda kv: -kv[1])[:TOP_GROUPS]]
        top_businesses = [k for k, _ in sorted(by_business.items(), key=lambda kv: -kv[1])[:TOP_GROUPS]]
        channel_names = await _names(conn, tables, top_channels, True)
        business_names = await _names(conn, tables, top_businesses, False)
    assert totals is not None
    age = totals["oldest_age"]
    return DlqSummary(
        pending=int(totals["pending"]),
        oldest_pending_age_s=None if age is None else max(0.0, float(age)),
        inflow_per_hour=int(totals["inflow"]),
        outflow_per_hour=int(totals["outflow"]),
        by_channel=_top(by_channel, channel_names),
        by_business=_top(by_business, business_names),
        max_id=int(totals["max_id"] or 0),
    )


async def event_summary(db: Database, config: Config, tables: AppTables | None = None) -> EventSummary:
    """Failures over 1 h and 24 h by event name and status, and 24 hourly buckets (oldest first)."""
    tables = tables or AppTables.from_config(config)
    async with db.acquire() as conn:
        rows = await conn.fetch(event_summary_sql(tables))
        max_id = (
            rows[0]["max_id"]
            if rows
            else await conn.fetchval(f"SELECT {OWN_MARK} max({tables.events.c('id')}) FROM {tables.events.q}")
        )
    hourly = [0] * 24
    tallies: dict[tuple[str, str], list[int]] = {}
    for r in rows:
        n = int(r["n"])
        age = int(r["age_h"])
        hourly[23 - age] += n
        key = (display_text(r["event_name"], 100), display_text(r["status"], 20))
        slot = tallies.setdefault(key, [0, 0])
        slot[1] += n
        if age == 0:
            slot[0] += n
    ordered = sorted(tallies.items(), key=lambda kv: (-kv[1][1], kv[0]))
    return EventSummary(
        last_hour=hourly[23],
        last_24h=sum(hourly),
        tallies=tuple(EventTally(name, status, h1, h24) for (name, status), (h1, h24) in ordered),
        hourly=tuple(hourly),
        max_id=int(max_id or 0),
    )


# --------------------------------------------------------------------------- server stats


_UTILITY = (
    "create|alter|drop|comment|grant|revoke|set|reset|show|begin|start|commit|rollback|end|abort|"
    "savepoint|release|prepare|deallocate|discard|listen|unlisten|checkpoint|close"
)
_DRIVER = (
    r"typeinfo_tree|pg_advisory_unlock_all\(\)|pg_stat_statements|pg_advisory_(un)?lock"
    r"|\mpg_(trigger|class|namespace|extension|database|roles|settings|locks|stat_activity)\M"
    r"|^\s*select\s+(current_setting\(\$1\)\s+as\s+cur,\s*)?set_config\("
)
"""asyncpg's own type introspection and connection set-up and reset, run on opswatch's
connections; catalog reads, advisory locks (migrations) and pg_stat_statements itself."""
_NOT_THE_APPS = (
    r" AND query !~* '\mopswatch(\M|_)'"
    f" AND strpos(query, '{OWN_MARK}') = 0"
    rf" AND query !~* '^\s*(/\*.*?\*/\s*)*({_UTILITY})\M' "
    f" AND query !~* '{_DRIVER}' "
)
"""opswatch's own statements (its schema, its notify channel, its marked queries, its driver's) and
utility statements (DDL, session and transaction control): not the app's query performance."""


async def slow_statements(conn: asyncpg.Connection) -> tuple[SlowStatement, ...] | None:
    """The app's slowest statements by mean time, None without pg_stat_statements."""
    schema = await conn.fetchval(
        f"SELECT {OWN_MARK} n.nspname FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace "
        "WHERE e.extname = 'pg_stat_statements'"
    )
    if schema is None:
        return None
    view = f"{quote_ident(schema)}.pg_stat_statements"
    for mean in ("mean_exec_time", "mean_time"):  # PostgreSQL >= 13, then older
        try:
            rows = await conn.fetch(
                f"SELECT {OWN_MARK} query, {mean} AS mean_ms, calls FROM {view} "
                "WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database()) AND calls > 0 "
                f"{_NOT_THE_APPS} ORDER BY {mean} DESC LIMIT {SLOW_STATEMENTS}"
            )
        except asyncpg.UndefinedColumnError:
            continue
        except asyncpg.PostgresError:
            return None  # e.g. not in shared_preload_libraries, or no permission
        return tuple(
            SlowStatement(
                display_text(" ".join(str(r["query"]).split()), 300), float(r["mean_ms"]), int(r["calls"])
            )
            for r in rows
        )
    return None


async def collect_db_stats(db: Database, config: Config) -> DbStats:
    """Connections vs max_connections, database and table sizes, slowest statements if available."""
    tables = AppTables.from_config(config)
    app = [tables.dlq, tables.events, tables.businesses, tables.channels, tables.messages]
    async with db.acquire() as conn:
        head = await conn.fetchrow(
            f"""
            SELECT {OWN_MARK}
                   (SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend') AS used,
                   current_setting('max_connections')::int AS max_conn,
                   pg_database_size(current_database()) AS db_bytes
            """
        )
        sizes = await conn.fetch(
            f"""
            SELECT {OWN_MARK} n.nspname AS schema, c.relname AS name, pg_total_relation_size(c.oid) AS bytes
            FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
            WHERE c.relkind IN ('r', 'p', 'm')
              AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg_toast%'
              AND (pg_total_relation_size(c.oid) > 0 OR (n.nspname, c.relname) IN
                   (SELECT * FROM unnest($1::text[], $2::text[])))
            ORDER BY 3 DESC, 1, 2
            LIMIT 50
            """,
            [t.schema for t in app],
            [t.name for t in app],
        )
        slow = await slow_statements(conn)
    assert head is not None
    wanted = {(t.schema, t.name) for t in app}
    picked = [r for r in sizes if (r["schema"], r["name"]) in wanted]
    picked += [r for r in sizes if (r["schema"], r["name"]) not in wanted][: max(0, 12 - len(picked))]
    picked.sort(key=lambda r: -int(r["bytes"]))
    return DbStats(
        connections_used=int(head["used"]),
        max_connections=int(head["max_conn"]),
        database_bytes=int(head["db_bytes"]),
        tables=tuple(
            TableSize(display_text(f"{r['schema']}.{r['name']}", 130), int(r["bytes"])) for r in picked
        ),
        slow_statements=slow,
        slowest_mean_ms=max((s.mean_ms for s in slow), default=None) if slow is not None else None,
    )


# --------------------------------------------------------------------------- custom SQL metrics


def _number(name: str, value: Any) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return 1.0 if value else 0.0
    if isinstance(value, int | float | Decimal):
        number = float(value)
        if math.isnan(number):
            return None
        return number
    raise MetricQueryError(f"metric {name}: the query must return one number, got {type(value).__name__}")


async def collect_custom_metric(db: Database, metric: MetricConfig) -> float | None:
    """Run the metric's SQL in a read-only transaction with the statement timeout; one number or None."""
    timeout_ms = max(1, int(db.settings.statement_timeout_s * 1000))
    async with db.acquire() as conn:
        try:
            async with conn.transaction():
                await conn.execute("SET TRANSACTION READ ONLY")
                await conn.execute(f"SET LOCAL statement_timeout = {timeout_ms}")
                row = await conn.fetchrow(metric.sql)
        except asyncpg.QueryCanceledError as exc:
            raise MetricQueryError(f"metric {metric.name}: timed out after {timeout_ms} ms") from exc
        except asyncpg.PostgresError as exc:
            message = display_text(str(exc).splitlines()[0] if str(exc) else type(exc).__name__, 200)
            raise MetricQueryError(f"metric {metric.name}: {message}") from exc
    if row is None:
        return None
    if len(row) != 1:
        raise MetricQueryError(f"metric {metric.name}: the query must return one column, got {len(row)}")
    return _number(metric.name, row[0])


async def collect_custom_metrics(db: Database, config: Config) -> tuple[tuple[str, float | None], ...]:
    """Every configured metric; a failing one reports None (its error is in the exception log)."""
    out: list[tuple[str, float | None]] = []
    for metric in config.metrics:
        try:
            value = await collect_custom_metric(db, metric)
        except MetricQueryError:
            value = None
        out.append((metric.name, value))
    return tuple(out)
