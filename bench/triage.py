"""Triage benchmark: 1,000,000 dead letters + 1,000,000 event failures.

    .venv/bin/python -m bench.triage            # embedded PostgreSQL in a temp dir
    OPSWATCH_BENCH_DSN=postgresql://... .venv/bin/python -m bench.triage   # a server you own
                                                  # (creates and drops database opswatch_bench)

Reports, before and after creating the indexes ``opswatch db advise`` recommends (created the
documented way: :func:`core.triage.advise.apply_advice`, which is what ``db advise --apply`` runs):
first page (50 rows + exact count), a filtered page with error-text search, the DLQ and event
summaries, each as median / p95 over repeated runs and as a ratio to the very same SQL statements
run one after another on a bare asyncpg connection; then a bulk retry of 100,000 rows by filter
(sql redrive), with the longest time any batch held its row locks, against one bare UPDATE of
another 100,000 rows.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg

from core.config import Config, loads_config
from core.db import Database, PoolSettings
from core.embedded import EmbeddedPostgres
from core.migrate import init_app_schema, migrate
from core.sources import dlq_summary_sql, event_summary_sql
from core.triage import Cursor, DlqFilter, EventFilter, Sort, TriageService
from core.triage.advise import advise, apply_advice
from core.triage.queries import count_sql, page_sql
from core.triage.schema import AppTables

DAY = 86400.0
ERRORS = [
    "(#131047) Re-engagement message: more than 24 hours have passed since the customer last replied",
    "(#130429) Rate limit hit: Cloud API message throughput has been reached",
    "(#131026) Message undeliverable: recipient +49 1570 %s is not a WhatsApp user",
    "(#132001) Template name does not exist in the translation: order_update_v%s",
    "(#132015) Template is paused due to low quality",
    "Error validating access token: Session has expired on %s",
    "(#100) Invalid parameter: recipient phone number %s is invalid",
    "Instagram (#10) This message is sent outside of allowed window",
    "ETIMEDOUT: connect timeout after 10000ms to graph.facebook.com",
    "socket hang up",
    "(#131000) Something went wrong: internal error, trace id %s",
    "(#368) The action attempted has been deemed abusive or is otherwise disallowed",
    "(#131053) Media upload error: unsupported file type image/heic",
]
EVENTS = [
    "sale.completed",
    "sale.refunded",
    "stock.updated",
    "stock.low",
    "payment.captured",
    "payment.failed",
    "receipt.print",
    "loyalty.points",
    "webhook.shopify",
    "customer.created",
    "shift.closed",
    "invoice.sent",
    "worker.step",
    "report.daily",
    "sync.inventory",
]
EVENT_ERRORS = [
    "TypeError: Cannot read properties of undefined (reading 'total')",
    "Error: connect ECONNREFUSED 10.0.3.7:6379",
    "SequelizeTimeoutError: Query read timeout",
    "ValidationError: businessId is required",
    "Error: Request failed with status code 502",
]


@contextmanager
def server(shared_buffers: str) -> Iterator[str]:
    """An embedded server (restarted once with ``shared_buffers``), or $OPSWATCH_BENCH_DSN as is."""
    external = os.environ.get("OPSWATCH_BENCH_DSN")
    if external:
        yield external
        return
    with tempfile.TemporaryDirectory(prefix="opswatch-bench-") as tmp:
        pg = EmbeddedPostgres(Path(tmp), progress=lambda m: print(f"# {m}", file=sys.stderr))
        pg.start()
        try:
            if shared_buffers:
                asyncio.run(_alter_system(pg.dsn, "shared_buffers", shared_buffers))
                pg.stop()
                pg.start()
            yield pg.dsn
        finally:
            pg.stop()


async def _alter_system(dsn: str, name: str, value: str) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(f"ALTER SYSTEM SET {name} = '{value}'")
    finally:
        await conn.close()


def with_database(dsn: str, name: str) -> str:
    return urlunsplit(urlsplit(dsn)._replace(path="/" + name))


def _sql_list(values: list[str]) -> str:
    return "ARRAY[" + ",".join("'" + v.replace("'", "''") + "'" for v in values) + "]"


async def seed(conn: asyncpg.Connection, n: int) -> None:
    """Deterministic data: row i is i/n of 90 days old; dead letters: every 4th pending."""
    await conn.execute("SET synchronous_commit = off")
    try:
        await conn.execute("SET session_replication_role = replica")  # skip FK triggers while seeding
    except asyncpg.InsufficientPrivilegeError:
        pass
    started = time.perf_counter()
    await conn.execute("""
        INSERT INTO businesses (name) SELECT 'Business ' || g FROM generate_series(1, 200) g;
        INSERT INTO social_channels (business_id, platform, name)
        SELECT 1 + (g - 1) / 3, (ARRAY['whatsapp','instagram','facebook'])[1 + (g - 1) % 3], 'Channel ' || g
        FROM generate_series(1, 600) g;
    """)
    await conn.execute(f"""
        INSERT INTO social_messages (business_id, channel_id, status, error_message, payload, created_at)
        SELECT 1 + ((g * 7) % 600) / 3, 1 + (g * 7) % 600, 'failed', 'max retries exceeded',
               jsonb_build_object('to', '+4915700' || g),
               LOCALTIMESTAMP - (g::float8 / {n}) * interval '90 days'
        FROM generate_series(1, {n}) g
    """)
    errors = _sql_list(ERRORS)
    await conn.execute(f"""
        INSERT INTO dead_letter_messages
            (message_id, business_id, channel_id, error_message, message_data, retry_count, status,
             created_at, resolved_at)
        SELECT g, 1 + ((g * 7) % 600) / 3, 1 + (g * 7) % 600,
               format(({errors})[1 + g % {len(ERRORS)}], (g::bigint * 7919) % 100000),
               jsonb_build_object('messageId', g, 'businessId', 1 + ((g * 7) % 600) / 3,
                                  'channelId', 1 + (g * 7) % 600, 'to', '+4915700' || g,
                                  'type', 'template', 'template', 'order_update', 'lang', 'de'),
               (g % 7) % 4,
               CASE WHEN g % 4 = 0 THEN 'pending'
                    ELSE (ARRAY['retried','resolved','abandoned','resolved'])[1 + (g / 4) % 4] END,
               ts, CASE WHEN g % 4 = 0 THEN NULL ELSE ts + ((g % 97) / 97.0) * interval '2 days' END
        FROM (SELECT g, LOCALTIMESTAMP - (g::float8 / {n}) * interval '90 days' AS ts
              FROM generate_series(1, {n}) g) s
    """)
    await conn.execute(f"""
        INSERT INTO event_failures
            (event_name, business_id, error_message, error_stack, event_data, retry_count, status, created_at,
             resolved_at)
        SELECT ({_sql_list(EVENTS)})[1 + (g * 13) % {len(EVENTS)}], 1 + (g * 11) % 200,
               ({_sql_list(EVENT_ERRORS)})[1 + g % {len(EVENT_ERRORS)}],
               'Error\n    at emit (src/services/eventService.js:12:5)\n    at process (node:internal:1:1)',
               jsonb_build_object('businessId', 1 + (g * 11) % 200, 'saleId', g),
               g % 3, (ARRAY['failed','resolved','retrying','resolved','failed'])[1 + g % 5],
               ts, CASE WHEN g % 5 IN (1, 3) THEN ts + interval '1 hour' END
        FROM (SELECT g, LOCALTIMESTAMP - (g::float8 / {n}) * interval '90 days' AS ts
              FROM generate_series(1, {n}) g) s
    """)
    await conn.execute("SET session_replication_role = origin")
    print(
        f"# seeded {n:,} dead letters, {n:,} event failures, {n:,} messages in "
        f"{time.perf_counter() - started:.1f}s",
        file=sys.stderr,
    )
    await vacuum(conn)


async def vacuum(conn: asyncpg.Connection) -> None:
    """What autovacuum does, now: the visibility map lets index-only scans skip the heap.

    The embedded server runs with synchronous_commit=off; a VACUUM session that also commits
    asynchronously left every table after the first one without visibility-map bits here
    (pg_class.relallvisible = 0, so the planner chose heap scans), hence the flush and the
    synchronous session.
    """
    started = time.perf_counter()
    await conn.execute("SET synchronous_commit = on")
    try:
        await conn.execute("CHECKPOINT")
    except asyncpg.InsufficientPrivilegeError:
        await asyncio.sleep(1.0)  # the WAL writer flushes asynchronous commits within 3 x 200 ms
    await conn.execute(
        "VACUUM ANALYZE dead_letter_messages, event_failures, social_messages, businesses, social_channels"
    )
    print(f"# VACUUM ANALYZE {time.perf_counter() - started:.1f}s", file=sys.stderr)


async def wait_for_autovacuum(conn: asyncpg.Connection, since: float, limit_s: float) -> float | None:
    """Seconds from ``since`` (epoch) until autovacuum finished dead_letter_messages; None on timeout."""
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        done = await conn.fetchval(
            "SELECT extract(epoch FROM last_autovacuum) FROM pg_stat_user_tables "
            "WHERE relid = 'dead_letter_messages'::regclass"
        )
        if done is not None and float(done) > since:
            return float(done) - since
        await asyncio.sleep(1.0)
    return None


async def timed_pair(
    fn: Callable[[], Awaitable[Any]], other: Callable[[], Awaitable[Any]], runs: int, warmup: int = 3
) -> tuple[tuple[float, float], tuple[float, float]]:
    """Like :func:`timed` for two callables, alternating, so neither profits from the other's
    cache warming (or pays for its hint-bit writes)."""
    for _ in range(warmup):
        await fn()
        await other()
    a: list[float] = []
    b: list[float] = []
    for _ in range(runs):
        for call, samples in ((fn, a), (other, b)):
            started = time.perf_counter()
            await call()
            samples.append((time.perf_counter() - started) * 1000)

    def stats(samples: list[float]) -> tuple[float, float]:
        samples.sort()
        return statistics.median(samples), samples[min(len(samples) - 1, int(len(samples) * 0.95))]

    return stats(a), stats(b)


def bare(conn: asyncpg.Connection, statements: list[tuple[str, list[Any]]]) -> Callable[[], Awaitable[None]]:
    async def run() -> None:
        for sql, args in statements:
            await conn.fetch(sql, *args)

    return run


Row = tuple[str, float, float, float, str]


async def measure_reads(
    svc: TriageService, conn: asyncpg.Connection, tables: AppTables, runs: int
) -> list[Row]:
    out: list[Row] = []

    async def case(
        name: str, fn: Callable[[], Awaitable[Any]], statements: list[tuple[str, list[Any]]], target: str
    ) -> None:
        (median, p95), (bare_median, _) = await timed_pair(fn, bare(conn, statements), runs)
        out.append((name, median, p95, median / bare_median if bare_median else 0.0, target))

    async def page_case(name: str, kind: str, where: Any, cursor: Cursor | None, target: str) -> None:
        """One page read through the service against the same SQL (page + exact count) run bare."""
        read = svc.kind("dlq" if kind == "dlq" else "events").list
        statements = [page_sql(tables, kind, where, Sort.NEWEST, cursor, 51), count_sql(tables, kind, where)]
        await case(name, lambda: read(where, Sort.NEWEST, cursor, 50), statements, target)

    first = DlqFilter()
    await page_case(
        "DLQ first page (50 rows + exact count), pending, newest first", "dlq", first, None, "<= 20 ms"
    )
    nxt = (await svc.kind("dlq").list(first, Sort.NEWEST, None, 50)).next_cursor
    pages: list[tuple[str, str, Any, Cursor | None, str]] = [
        ("DLQ next page (keyset cursor)", "dlq", first, nxt, "<= 20 ms"),
        ("DLQ filtered page: pending + text 'undeliverable' (~19k matches)", "dlq",
         DlqFilter(text="undeliverable"), None, "<= 200 ms"),
        ("DLQ filtered page: any status + text '+49 1570 4242' (rare)", "dlq",
         DlqFilter(status=(), text="+49 1570 4242"), None, "<= 200 ms"),
        ("Events first page (50 rows + exact count), failed, newest first", "event", EventFilter(), None,
         "<= 20 ms"),
    ]  # fmt: skip
    for name, kind, where, cursor, target in pages:
        await page_case(name, kind, where, cursor, target)
    totals, groups = dlq_summary_sql(tables)
    await case(
        "DLQ summary (pending, oldest, in/outflow, by channel and business)",
        svc.dlq_summary,
        [(totals, []), (groups, [])],
        "<= 250 ms",
    )
    await case(
        "Event summary (1 h / 24 h by name and status, 24 hourly buckets)",
        svc.event_summary,
        [(event_summary_sql(tables), [])],
        "<= 250 ms",
    )
    return out


async def measure_bulk(svc: TriageService, conn: asyncpg.Connection, tables: AppTables) -> list[str]:
    lines: list[str] = []
    window = DlqFilter(min_age_s=0, max_age_s=36 * DAY)
    count = await svc.kind("dlq").preview(window)
    started = time.perf_counter()
    result = await svc.kind("dlq").bulk(window, "retry")
    elapsed = time.perf_counter() - started
    lines.append(
        "| opswatch bulk retry by filter (pending, created within 36 days), "
        f"batch {svc.config.triage.batch_size} "
        f"| {len(result.applied):,} of {count.count:,} | {elapsed:.2f} s | {result.batches} | "
        f"{result.max_lock_s * 1000:.0f} ms | {result.max_batch_s * 1000:.0f} ms |"
    )
    d, m = tables.dlq, tables.messages
    sql = f"""
        WITH u AS (
            UPDATE {d.q} SET {d.c("status")} = 'retried', {d.c("retry_count")} = {d.c("retry_count")} + 1,
                   {d.c("resolved_at")} = CURRENT_TIMESTAMP
            WHERE {d.c("status")} = 'pending'
              AND {d.c("created_at")} >= LOCALTIMESTAMP - interval '72 days'
              AND {d.c("created_at")} < LOCALTIMESTAMP - interval '36 days'
            RETURNING {d.c("id")} AS id, {d.c("message_id")} AS message_id)
        UPDATE {m.q} SET {m.c("status")} = 'pending', {m.c("error_message")} = NULL,
               {m.c("updated_at")} = CURRENT_TIMESTAMP
        WHERE {m.c("id")} IN (SELECT message_id FROM u)"""
    started = time.perf_counter()
    async with conn.transaction():
        status = await conn.execute(sql)
        await conn.execute('SELECT pg_notify(\'opswatch_redrive\', \'{"kind":"dlq","ids":[]}\')')
    bare_s = time.perf_counter() - started
    lines.append(
        f"| bare asyncpg: one UPDATE of the next 36-day window (locks every row until commit) "
        f"| {int(status.split()[-1]):,} | {bare_s:.2f} s | 1 "
        f"| {bare_s * 1000:.0f} ms | {bare_s * 1000:.0f} ms |"
    )
    lines.append(f"\nratio opswatch / bare: {elapsed / bare_s:.2f}")
    return lines


def report(title: str, rows: list[Row]) -> None:
    print(f"\n{title}\n")
    print("| query | median | p95 | ratio to bare asyncpg | target |")
    print("|---|---:|---:|---:|---|")
    for name, median, p95, ratio, target in rows:
        print(f"| {name} | {median:.1f} ms | {p95:.1f} ms | {ratio:.2f} | {target} |")


async def run(args: argparse.Namespace, admin_dsn: str) -> None:
    admin = await asyncpg.connect(admin_dsn)
    await admin.execute("DROP DATABASE IF EXISTS opswatch_bench WITH (FORCE)")
    await admin.execute("CREATE DATABASE opswatch_bench")
    await admin.close()
    dsn = with_database(admin_dsn, "opswatch_bench")
    config: Config = loads_config("{}")
    tables = AppTables.from_config(config)
    conn = await asyncpg.connect(dsn)
    # the bare connection plans like the service does (see core.triage.queries.fetch_planned)
    await conn.execute("SET plan_cache_mode = force_custom_plan")
    db = Database(dsn, PoolSettings(min_size=2, max_size=5, statement_timeout_s=60))
    svc = TriageService(db, config, actor="bench")
    try:
        await init_app_schema(conn)
        await migrate(conn)
        version = await conn.fetchval("SHOW server_version")
        buffers = await conn.fetchval("SHOW shared_buffers")
        print(
            f"PostgreSQL {version}, shared_buffers {buffers}; {os.cpu_count()} CPUs; "
            f"{args.rows:,} rows per table"
        )
        await seed(conn, args.rows)
        if not args.skip_baseline:
            report(
                "Without the advised indexes (seed DDL indexes only)",
                await measure_reads(svc, conn, tables, args.baseline_runs),
            )
        started = time.perf_counter()
        statements = await apply_advice(conn, config, progress=lambda s: print(f"# {s}", file=sys.stderr))
        await conn.execute("ANALYZE dead_letter_messages, event_failures")
        print(
            f"\n`db advise --apply` ran {len(statements)} statements in "
            f"{time.perf_counter() - started:.1f}s; all present: "
            f"{all(a.exists for a in await advise(conn, config))}"
        )
        report("With the advised indexes", await measure_reads(svc, conn, tables, args.runs))
        print("\n| bulk retry | rows | total | batches | longest lock hold | longest batch |")
        print("|---|---:|---:|---:|---:|---:|")
        for line in await measure_bulk(svc, conn, tables):
            print(line)
        bulk_done = time.time()
        report(
            "Reads right after the bulk retry (200,000 rows rewritten, before any vacuum)",
            await measure_reads(svc, conn, tables, max(5, args.runs // 3)),
        )
        waited = await wait_for_autovacuum(conn, bulk_done, limit_s=args.autovacuum_wait)
        if waited is None:
            print(
                f"\nautovacuum did not run within {args.autovacuum_wait:.0f} s; "
                "running VACUUM ANALYZE instead"
            )
            await vacuum(conn)
        else:
            print(
                f"\nautovacuum (advised scale factor 0.02) processed dead_letter_messages "
                f"{waited:.0f} s after the bulk retry ended"
            )
        report("Reads after that vacuum", await measure_reads(svc, conn, tables, args.runs))
    finally:
        await svc.aclose()
        await db.close()
        await conn.close()
    if not os.environ.get("OPSWATCH_BENCH_DSN"):
        return
    admin = await asyncpg.connect(admin_dsn)
    await admin.execute("DROP DATABASE IF EXISTS opswatch_bench WITH (FORCE)")
    await admin.close()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=1_000_000, help="rows per table (default 1,000,000)")
    parser.add_argument("--runs", type=int, default=30, help="timed runs per read query")
    parser.add_argument(
        "--shared-buffers",
        default="1GB",
        help="shared_buffers of the embedded server (PostgreSQL's default is 128MB; '' keeps it)",
    )
    parser.add_argument(
        "--autovacuum-wait",
        type=float,
        default=240.0,
        help="seconds to wait for autovacuum after the bulk retry",
    )
    parser.add_argument("--baseline-runs", type=int, default=5, help="timed runs before the advised indexes")
    parser.add_argument("--skip-baseline", action="store_true", help="skip the run before advised indexes")
    args = parser.parse_args()
    with server(args.shared_buffers) as admin_dsn:
        asyncio.run(run(args, admin_dsn))


if __name__ == "__main__":
    main()
