"""SQL text for triage reads, built from config names and a filter (parameters, never literals).

Every builder returns ``(sql, args)`` so that the benchmark can run the very same statement
through bare asyncpg and report the overhead of the service around it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import asyncpg

from core.db import Database
from core.triage.models import (
    DLQ_STATUSES,
    EVENT_STATUSES,
    Cursor,
    DlqFilter,
    EventFilter,
    Kind,
    Sort,
)
from core.triage.schema import AppTables, Table

ERROR_HEAD_CHARS = 1000
DETAIL_TEXT_CHARS = 100_000
DETAIL_PAYLOAD_CHARS = 200_000

Filter = DlqFilter | EventFilter


async def fetch_planned(db: Database, sql: str, args: Sequence[Any]) -> list[asyncpg.Record]:
    """Run a filtered read with a plan made for these very parameters.

    asyncpg prepares statements and PostgreSQL switches a prepared statement to a generic plan
    after five runs; for ``ILIKE $n`` or an age range a generic plan cannot know how selective
    the value is and may walk the whole table for a rare search (0.5 s instead of 10 ms at a
    million rows). The setting is per connection and the pool resets it on release.
    """
    async with db.acquire() as conn:
        await conn.execute("SET plan_cache_mode = force_custom_plan")
        rows: list[asyncpg.Record] = await conn.fetch(sql, *args)
        return rows


@dataclass(frozen=True)
class KindSpec:
    kind: Kind
    table: Table
    payload: str  # logical payload column
    statuses: tuple[str, ...]


def spec_for(tables: AppTables, kind: Kind) -> KindSpec:
    if kind == "dlq":
        return KindSpec("dlq", tables.dlq, "message_data", DLQ_STATUSES)
    if kind == "event":
        return KindSpec("event", tables.events, "event_data", EVENT_STATUSES)
    raise ValueError(f"unknown kind {kind!r} (dlq or event)")


class Args:
    """Collects positional parameters: ``args.add(v)`` returns its ``$n`` placeholder."""

    def __init__(self) -> None:
        self.values: list[Any] = []

    def add(self, value: Any, cast: str = "") -> str:
        self.values.append(value)
        return f"${len(self.values)}{cast}"


def like_pattern(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def status_condition(column: str, statuses: tuple[str, ...], args: Args) -> str | None:
    if not statuses:
        return None
    if len(statuses) == 1:
        return f"{column} = {args.add(statuses[0])}"
    return f"{column} = ANY({args.add(list(statuses), '::text[]')})"


def filter_conditions(spec: KindSpec, f: Filter, args: Args, alias: str = "t") -> list[str]:
    t = spec.table

    def col(name: str) -> str:
        return f"{alias}.{t.c(name)}"

    conditions: list[str] = []
    status = status_condition(col("status"), f.status, args)
    if status:
        conditions.append(status)
    if f.business_id is not None:
        conditions.append(f"{col('business_id')} = {args.add(f.business_id)}")
    if isinstance(f, DlqFilter) and f.channel_id is not None:
        conditions.append(f"{col('channel_id')} = {args.add(f.channel_id)}")
    if isinstance(f, EventFilter) and f.event_name is not None:
        conditions.append(f"{col('event_name')} = {args.add(f.event_name)}")
    if f.text:
        conditions.append(f"{col('error_message')} ILIKE {args.add(like_pattern(f.text))}")
    if f.min_age_s is not None:
        conditions.append(
            f"{col('created_at')} <= LOCALTIMESTAMP - {args.add(float(f.min_age_s), '::float8')} "
            "* interval '1 second'"
        )
    if f.max_age_s is not None:
        conditions.append(
            f"{col('created_at')} >= LOCALTIMESTAMP - {args.add(float(f.max_age_s), '::float8')} "
            "* interval '1 second'"
        )
    return conditions


def where(conditions: list[str]) -> str:
    return f"WHERE {' AND '.join(conditions)}" if conditions else ""


def channel_join(c: Table, channel_id: str, name_as: str) -> tuple[str, str]:
    """(LEFT JOIN clause, "name, platform" select list) for the channel of ``channel_id``.

    A column the app's table lacks (``Table.missing``, from the schema doctor) is selected as
    NULL, and without either column the join is left out: the channel is then shown as ``#id``.
    """
    name = f"c.{c.c('name')}" if c.has("name") else "NULL::text"
    platform = f"c.{c.c('platform')}" if c.has("platform") else "NULL::text"
    columns = f"{name} AS {name_as}, {platform} AS platform"
    if not (c.has("name") or c.has("platform")):
        return "", columns
    return f" LEFT JOIN {c.q} c ON c.{c.c('id')} = {channel_id}", columns


# --------------------------------------------------------------------------- pages


def _descending(sort: Sort, backward: bool) -> bool:
    return (sort in (Sort.NEWEST, Sort.MOST_RETRIES)) != backward


def _rows_select(
    tables: AppTables, kind: Kind, sort: Sort, backward: bool, condition_sql: str, limit_sql: str
) -> str:
    """The row columns of a page (with business/channel names joined after the limit)."""
    t = spec_for(tables, kind).table
    direction = "DESC" if _descending(sort, backward) else "ASC"
    key_col = t.c("retry_count" if sort == Sort.MOST_RETRIES else "created_at")
    extra = (
        f"t.{t.c('message_id')} AS message_id, t.{t.c('channel_id')} AS channel_id,"
        if kind == "dlq"
        else f"t.{t.c('event_name')} AS event_name,"
    )
    inner = f"""
        SELECT t.{t.c("id")} AS id, {extra}
               t.{t.c("business_id")} AS business_id, t.{t.c("status")} AS status,
               t.{t.c("retry_count")} AS retry_count,
               t.{t.c("created_at")}::timestamptz AS created_at,
               t.{t.c("resolved_at")}::timestamptz AS resolved_at,
               left(t.{t.c("error_message")}, {ERROR_HEAD_CHARS}) AS error_head,
               t.{key_col} AS k_first
        FROM {t.q} t {condition_sql}
        ORDER BY t.{key_col} {direction}, t.{t.c("id")} {direction}
        {limit_sql}"""
    b = tables.businesses
    joins = f"LEFT JOIN {b.q} b ON b.{b.c('id')} = p.business_id"
    names = f"b.{b.c('name')} AS business_name"
    if kind == "dlq":
        channel_joins, channel_names = channel_join(tables.channels, "p.channel_id", "channel_name")
        joins += channel_joins
        names += f", {channel_names}"
    return f"""
        SELECT p.*, {names}
        FROM ({inner}) p {joins}
        ORDER BY p.k_first {direction}, p.id {direction}"""


def page_sql(
    tables: AppTables, kind: Kind, f: Filter, sort: Sort, cursor: Cursor | None, limit: int
) -> tuple[str, list[Any]]:
    """One page of ``limit`` rows after/before ``cursor`` (keyset, never OFFSET)."""
    spec = spec_for(tables, kind)
    t = spec.table
    args = Args()
    conditions = filter_conditions(spec, f, args)
    backward = cursor.backward if cursor else False
    if cursor is not None:
        first_col = t.c("retry_count" if sort == Sort.MOST_RETRIES else "created_at")
        op = "<" if _descending(sort, backward) else ">"
        first, ident = cursor.key
        conditions.append(f"(t.{first_col}, t.{t.c('id')}) {op} ({args.add(first)}, {args.add(ident)})")
    sql = _rows_select(tables, kind, sort, backward, where(conditions), f"LIMIT {args.add(limit)}")
    return sql, args.values


def count_sql(tables: AppTables, kind: Kind, f: Filter) -> tuple[str, list[Any]]:
    spec = spec_for(tables, kind)
    args = Args()
    conditions = filter_conditions(spec, f, args)
    return f"SELECT count(*) FROM {spec.table.q} t {where(conditions)}", args.values


def rows_by_id_sql(tables: AppTables, kind: Kind) -> str:
    """The page columns of explicit ids ($1 bigint[])."""
    t = spec_for(tables, kind).table
    return _rows_select(tables, kind, Sort.NEWEST, False, f"WHERE t.{t.c('id')} = ANY($1::bigint[])", "")


def detail_sql(tables: AppTables, kind: Kind) -> str:
    """Bounded full texts and payload of one row ($1 id), for the detail view."""
    spec = spec_for(tables, kind)
    t = spec.table
    p = f"(t.{t.c(spec.payload)})::jsonb"
    stack = (
        f"left(t.{t.c('error_stack')}, {DETAIL_TEXT_CHARS + 1}) AS error_stack," if kind == "event" else ""
    )
    return f"""
        SELECT left(t.{t.c("error_message")}, {DETAIL_TEXT_CHARS + 1}) AS error_message, {stack}
               jsonb_typeof({p}) AS payload_type,
               CASE WHEN jsonb_typeof({p}) = 'string'
                    THEN left({p} #>> '{{}}', {DETAIL_PAYLOAD_CHARS + 1})
                    ELSE left(jsonb_pretty({p}), {DETAIL_PAYLOAD_CHARS + 1}) END AS payload_body,
               octet_length({p}::text) AS payload_bytes
        FROM {t.q} t WHERE t.{t.c("id")} = $1"""


def raw_sql(tables: AppTables, kind: Kind, column: str) -> str:
    spec = spec_for(tables, kind)
    t = spec.table
    logical = spec.payload if column == "payload" else column
    cast = "::text" if column == "payload" else ""
    return f"SELECT t.{t.c(logical)}{cast} AS value FROM {t.q} t WHERE t.{t.c('id')} = $1"


# --------------------------------------------------------------------------- bulk


def candidates_sql(
    tables: AppTables, kind: Kind, f: Filter, after: tuple[Any, int] | None, limit: int
) -> tuple[str, list[Any]]:
    """The next ``limit`` ids matching ``f`` in (created_at, id) order, oldest first; no locks."""
    spec = spec_for(tables, kind)
    t = spec.table
    args = Args()
    conditions = filter_conditions(spec, f, args)
    key = f"(t.{t.c('created_at')}, t.{t.c('id')})"
    if after is not None:
        conditions.append(f"{key} > ({args.add(after[0])}, {args.add(after[1])})")
    sql = f"""
        SELECT t.{t.c("id")} AS id, t.{t.c("created_at")} AS k_created
        FROM {t.q} t {where(conditions)}
        ORDER BY t.{t.c("created_at")}, t.{t.c("id")}
        LIMIT {args.add(limit)}"""
    return sql, args.values


def lock_sql(tables: AppTables, kind: Kind) -> str:
    """Lock the given ids ($1) in id order (no deadlocks between batches) and read their state."""
    t = spec_for(tables, kind).table
    message = f", t.{t.c('message_id')} AS message_id" if kind == "dlq" else ""
    return f"""
        SELECT t.{t.c("id")} AS id, t.{t.c("status")} AS status, t.{t.c("retry_count")} AS retry_count
               {message}
        FROM {t.q} t WHERE t.{t.c("id")} = ANY($1::bigint[])
        ORDER BY t.{t.c("id")} FOR UPDATE"""


def payload_sql(tables: AppTables, kind: Kind) -> str:
    """The raw payload (JSON text) of one row ($1)."""
    spec = spec_for(tables, kind)
    t = spec.table
    return f"SELECT t.{t.c(spec.payload)}::text FROM {t.q} t WHERE t.{t.c('id')} = $1"


def preview_sqls(tables: AppTables, kind: Kind, f: Filter) -> dict[str, tuple[str, list[Any]]]:
    """Dry-run statements: totals, error classes, businesses, channels (dlq) or event names."""
    spec = spec_for(tables, kind)
    t = spec.table
    out: dict[str, tuple[str, list[Any]]] = {}

    def build(select: str, tail: str = "") -> tuple[str, list[Any]]:
        args = Args()
        conditions = filter_conditions(spec, f, args)
        return f"SELECT {select} FROM {t.q} t {where(conditions)} {tail}", args.values

    out["totals"] = build(
        f"count(*) AS n, min(t.{t.c('created_at')})::timestamptz AS oldest, "
        f"max(t.{t.c('created_at')})::timestamptz AS newest"
    )
    # error class = first line, CSI escape sequences dropped (so "\x1b[31m" is not grouped as "m"),
    # digits folded so "(#131048) ... 5511" and "(#131048) ... 5522" count as one class
    first = f"left(split_part(t.{t.c('error_message')}, E'\\n', 1), 200)"
    no_csi = f"regexp_replace({first}, '(\\x1b\\[|\\x9b)[0-9;?]*[ -/]*[@-~]', '', 'g')"
    err_class = f"regexp_replace({no_csi}, '[0-9]+', 'N', 'g')"
    out["errors"] = build(f"{err_class} AS k, count(*) AS n", "GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT 5")
    b = tables.businesses
    sql, args = build(f"t.{t.c('business_id')} AS k, count(*) AS n", "GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT 10")
    out["businesses"] = (
        f"SELECT g.k, g.n, b.{b.c('name')} AS name FROM ({sql}) g "
        f"LEFT JOIN {b.q} b ON b.{b.c('id')} = g.k ORDER BY g.n DESC, g.k",
        args,
    )
    if kind == "dlq":
        c = tables.channels
        sql, args = build(
            f"t.{t.c('channel_id')} AS k, count(*) AS n", "GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT 10"
        )
        joins, names = channel_join(c, "g.k", "name")
        out["channels"] = (f"SELECT g.k, g.n, {names} FROM ({sql}) g{joins} ORDER BY g.n DESC, g.k", args)
    else:
        out["event_names"] = build(
            f"t.{t.c('event_name')} AS k, count(*) AS n", "GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT 10"
        )
    return out


# --------------------------------------------------------------------------- lookups


def same_message_sql(tables: AppTables) -> str:
    """Dead letters of one message ($1), oldest first, at most $2, each with the total count."""
    t = tables.dlq
    return f"""
        SELECT t.{t.c("id")} AS id, count(*) OVER () AS n
        FROM {t.q} t WHERE t.{t.c("message_id")} = $1
        ORDER BY t.{t.c("id")} LIMIT $2"""


def business_by_name_sql(tables: AppTables, *, substring: bool) -> str:
    """Businesses named $1 (case-insensitive; ``substring``: containing it), at most $2."""
    b = tables.businesses
    name = f"lower(b.{b.c('name')})"
    match = f"strpos({name}, lower($1)) > 0" if substring else f"{name} = lower($1)"
    return f"""
        SELECT b.{b.c("id")} AS id, b.{b.c("name")} AS name
        FROM {b.q} b WHERE {match} ORDER BY b.{b.c("id")} LIMIT $2"""
