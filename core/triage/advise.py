"""Indexes opswatch needs on the app's tables (``opswatch db advise``), and whether they exist.

What each one serves (figures from ``bench/triage.py`` on 1,000,000 rows per table):

* ``(status, created_at, id)`` on both tables: the triage list (one status, newest or oldest
  first) is a backward/forward index range scan of 51 entries instead of a sort of every
  matching row; bulk actions walk the same range in keyset batches; the oldest pending age is
  the first entry; the exact count of one status is an index-only scan. On dead letters it
  also carries ``INCLUDE (business_id, channel_id)`` so the pending-by-channel/business panel
  and business/channel-filtered counts are index-only too (about 3x faster at 250k pending).
* ``(created_at)`` on both tables: inflow per hour and the 1 h / 24 h event tallies read only
  the recent rows, whatever their status.
* ``(resolved_at)`` on dead letters: outflow per hour (rows that left pending in the last hour).
* ``gin (error_message gin_trgm_ops)`` on both tables: error-text search is a substring match
  (``ILIKE '%131047%'``, codes and phone numbers included), which no b-tree can serve and which
  full-text search (whole words, stemmed) would get wrong; trigrams answer it from the index.
  Needs the ``pg_trgm`` extension (contrib; available on managed PostgreSQL services).

All are created with ``CREATE INDEX CONCURRENTLY`` (no write lock on the app's tables).

Plus one storage setting per table: ``autovacuum_vacuum_scale_factor`` and
``autovacuum_analyze_scale_factor`` of 0.02. A bulk retry rewrites 100,000 rows at once; with the
default 0.2 autovacuum waits for 200,000 dead rows at a million rows, and until it runs every
exact count visits the heap for the dead index entries (220 ms instead of 5 ms per page in the
benchmark). ``ALTER TABLE ... SET`` takes a lock that blocks neither reads nor writes.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import asyncpg

from core.audit import default_actor, write_audit
from core.config import Config
from core.migrate import quote_ident
from core.triage.schema import AppTables, Table


@dataclass(frozen=True)
class IndexAdvice:
    table: str  # schema.table, for display
    name: str
    columns: tuple[str, ...]  # real key column names
    include: tuple[str, ...]  # real INCLUDE column names (index-only scans)
    method: str  # btree | gin
    opclass: str | None
    why: str
    exists: bool
    existing_name: str | None
    extension: str | None  # extension the index needs
    extension_installed: bool
    create_sql: str
    invalid_leftover: bool = False  # a failed CONCURRENTLY build left an invalid index of that name


@dataclass(frozen=True)
class _Wanted:
    table: Table
    suffix: str
    columns: tuple[str, ...]  # logical
    why: str
    include: tuple[str, ...] = ()  # logical
    method: str = "btree"
    opclass: str | None = None
    extension: str | None = None


def _wanted(tables: AppTables) -> list[_Wanted]:
    out: list[_Wanted] = []
    for short, table in (("dlq", tables.dlq), ("events", tables.events)):
        out.append(
            _Wanted(
                table,
                "status_created",
                ("status", "created_at", "id"),
                "list pages by age, bulk actions in keyset batches, oldest pending, counts by status"
                + (", pending by channel and business from the index alone" if short == "dlq" else ""),
                include=("business_id", "channel_id") if short == "dlq" else (),
            )
        )
        out.append(
            _Wanted(
                table,
                "created",
                ("created_at",),
                "inflow per hour and 1 h / 24 h tallies read only recent rows",
            )
        )
        if short == "dlq":
            out.append(_Wanted(table, "resolved", ("resolved_at",), "outflow per hour"))
            out.append(
                _Wanted(
                    table,
                    "message",
                    ("message_id",),
                    "the detail links earlier failures of the same message ('failed 3 times: ...')",
                )
            )
        out.append(
            _Wanted(
                table,
                "error_trgm",
                ("error_message",),
                "error-text search (substring, ILIKE '%...%') served by the index",
                method="gin",
                opclass="gin_trgm_ops",
                extension="pg_trgm",
            )
        )
    return out


def _index_name(w: _Wanted) -> str:
    return f"opswatch_{w.table.name}_{w.suffix}_idx"[:63]


def _create_sql(w: _Wanted) -> str:
    cols = ", ".join(f"{w.table.c(c)} {w.opclass}" if w.opclass else w.table.c(c) for c in w.columns)
    using = f" USING {w.method}" if w.method != "btree" else ""
    include = f" INCLUDE ({', '.join(w.table.c(c) for c in w.include)})" if w.include else ""
    return (
        f"CREATE INDEX CONCURRENTLY IF NOT EXISTS {quote_ident(_index_name(w))} "
        f"ON {w.table.q}{using} ({cols}){include}"
    )


_EXISTING_SQL = """
    SELECT i.relname AS name, am.amname AS method, ix.indisvalid AS valid,
           ix.indpred IS NOT NULL AS partial, ix.indnkeyatts AS nkey,
           array(SELECT a.attname FROM unnest(ix.indkey) WITH ORDINALITY k(attnum, n)
                 JOIN pg_attribute a ON a.attrelid = ix.indrelid AND a.attnum = k.attnum
                 ORDER BY k.n) AS columns,
           array(SELECT oc.opcname FROM unnest(ix.indclass) WITH ORDINALITY k(oid, n)
                 JOIN pg_opclass oc ON oc.oid = k.oid ORDER BY k.n) AS opclasses
    FROM pg_index ix
    JOIN pg_class i ON i.oid = ix.indexrelid
    JOIN pg_am am ON am.oid = i.relam
    WHERE ix.indrelid = to_regclass($1)
"""


async def advise(conn: asyncpg.Connection, config: Config) -> list[IndexAdvice]:
    """Every recommended index with whether an equivalent one (same method, leading columns) exists."""
    tables = AppTables.from_config(config)
    extensions = {r["extname"] for r in await conn.fetch("SELECT extname FROM pg_extension")}
    out: list[IndexAdvice] = []
    cache: dict[str, list[asyncpg.Record]] = {}
    for w in _wanted(tables):
        key = quote_ident(f"{w.table.schema}.{w.table.name}")
        if key not in cache:
            cache[key] = await conn.fetch(_EXISTING_SQL, key)
        real = tuple(w.table.real(c) for c in w.columns)
        include = tuple(w.table.real(c) for c in w.include)
        match = None
        for r in cache[key]:
            cols = tuple(r["columns"])
            if (
                r["valid"]
                and not r["partial"]
                and r["method"] == w.method
                and cols[: r["nkey"]][: len(real)] == real
                and set(include) <= set(cols)
                and (w.opclass is None or tuple(r["opclasses"][: len(real)]) == (w.opclass,) * len(real))
            ):
                match = r["name"]
                break
        out.append(
            IndexAdvice(
                table=w.table.display,
                name=_index_name(w),
                columns=real,
                include=include,
                method=w.method,
                opclass=w.opclass,
                why=w.why,
                exists=match is not None,
                existing_name=match,
                extension=w.extension,
                extension_installed=w.extension is None or w.extension in extensions,
                create_sql=_create_sql(w),
                invalid_leftover=any(r["name"] == _index_name(w) and not r["valid"] for r in cache[key]),
            )
        )
    return out


@dataclass(frozen=True)
class SettingAdvice:
    table: str  # schema.table, for display
    setting: str
    value: str
    current: str | None  # None: the server default applies
    ok: bool
    why: str
    alter_sql: str


VACUUM_SETTINGS = {"autovacuum_vacuum_scale_factor": "0.02", "autovacuum_analyze_scale_factor": "0.02"}
_SETTINGS_WHY = "vacuum soon after bulk actions, so exact counts stay index-only"


async def advise_settings(conn: asyncpg.Connection, config: Config) -> list[SettingAdvice]:
    """Recommended per-table storage settings and whether they are in place (or stricter)."""
    tables = AppTables.from_config(config)
    out: list[SettingAdvice] = []
    for table in (tables.dlq, tables.events):
        options = await conn.fetchval(
            "SELECT reloptions FROM pg_class WHERE oid = to_regclass($1)",
            quote_ident(f"{table.schema}.{table.name}"),
        )
        current = dict(opt.split("=", 1) for opt in options or [])
        for name, value in VACUUM_SETTINGS.items():
            have = current.get(name)
            try:
                ok = have is not None and float(have) <= float(value)
            except ValueError:
                ok = False
            out.append(
                SettingAdvice(
                    table=table.display,
                    setting=name,
                    value=value,
                    current=have,
                    ok=ok,
                    why=_SETTINGS_WHY,
                    alter_sql=f"ALTER TABLE {table.q} SET ({name} = {value})",
                )
            )
    return out


def missing_sql(advice: Sequence[IndexAdvice], settings: Sequence[SettingAdvice] = ()) -> list[str]:
    """Statements that create what is missing (extensions first); run each outside a transaction."""
    statements: list[str] = []
    needed = {a.extension for a in advice if not a.exists and a.extension and not a.extension_installed}
    for ext in sorted(needed):
        statements.append(f"CREATE EXTENSION IF NOT EXISTS {quote_ident(ext)}")
    for a in advice:
        if a.exists:
            continue
        if a.invalid_leftover:
            schema = a.table.split(".", 1)[0]
            statements.append(f"DROP INDEX CONCURRENTLY IF EXISTS {quote_ident(f'{schema}.{a.name}')}")
        statements.append(a.create_sql)
    statements += [s.alter_sql for s in settings if not s.ok]
    return statements


async def apply_advice(
    conn: asyncpg.Connection,
    config: Config,
    progress: Callable[[str], None] | None = None,
    *,
    actor: str | None = None,
) -> list[str]:
    """Create the missing indexes (CONCURRENTLY; no statement timeout) and settings; returns the
    statements run."""
    statements = missing_sql(await advise(conn, config), await advise_settings(conn, config))
    await conn.execute("SET statement_timeout = 0")
    done: list[str] = []
    who = default_actor(actor or config.triage.actor)
    error: Exception | None = None
    try:
        for sql in statements:
            if progress is not None:
                progress(sql)
            await conn.execute(sql)  # CONCURRENTLY cannot run in a transaction: audited afterwards
            done.append(sql)
    except Exception as exc:
        error = exc
    if done or error is not None:
        await write_audit(
            conn,
            actor=who,
            action="db.advise_apply",
            target_kind="schema",
            target_key="indexes",
            outcome="applied" if error is None else "partial" if done else "failed",
            detail={"ran": done} if error is None else {"ran": done, "error": str(error)[:300]},
        )
    if error is not None:
        raise error
    return statements
