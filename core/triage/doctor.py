"""Compare the monitored app's real tables with the names opswatch is configured to use.

The app's DDL is not opswatch's: a ``social_channels`` table may lack ``name`` and ``platform``,
or spell them differently. :func:`inspect_app_schema` reads ``information_schema.columns`` once
and returns a :class:`SchemaReport` naming, for every missing table or column, the config key
that maps it. Optional columns degrade (a channel without a name is shown as ``#id``); required
ones make the reads of their table unusable, and say so instead of failing every query.
"""

from __future__ import annotations

import difflib
from collections.abc import Collection, Iterable
from dataclasses import dataclass, field
from enum import IntEnum

import asyncpg
from loguru import logger

from core.config import Config
from core.db import Database
from core.safe_text import display_text
from core.triage.schema import LOGICAL_COLUMNS, AppTables, Table

# Columns opswatch can do without, and what is lost without them.
OPTIONAL_COLUMNS: dict[tuple[str, str], str] = {
    ("social_channels", "name"): "channels are shown as #id",
    ("social_channels", "platform"): "channel platforms are not shown",
    ("social_channels", "business_id"): "not used yet",
    ("social_messages", "id"): "the SQL redrive cannot reset messages",
    ("social_messages", "status"): "the SQL redrive cannot reset messages",
    ("social_messages", "error_message"): "the SQL redrive cannot reset messages",
    ("social_messages", "updated_at"): "the SQL redrive cannot reset messages",
}
# Tables that may be missing altogether: their columns are then all optional.
OPTIONAL_TABLES: dict[str, str] = {
    "social_channels": "channels are shown as #id",
    "social_messages": "the SQL redrive cannot reset messages",
}
# Tables each kind of read needs (a required problem in one of them makes that read unusable).
NEEDS: dict[str, tuple[str, ...]] = {
    "dlq": ("dead_letter_messages", "businesses", "social_channels"),
    "event": ("event_failures", "businesses"),
}
# Names an app commonly uses instead of opswatch's logical ones (suggested, never guessed silently).
SYNONYMS: dict[str, tuple[str, ...]] = {
    "name": ("title", "label", "display_name", "channel_name", "business_name"),
    "platform": ("kind", "type", "provider", "channel_type", "network"),
    "message_data": ("payload", "data", "body"),
    "event_data": ("payload", "data", "body"),
    "error_message": ("error", "message", "last_error"),
    "created_at": ("created", "inserted_at"),
    "updated_at": ("updated", "modified_at"),
    "resolved_at": ("resolved", "closed_at"),
    "event_name": ("event", "name", "type"),
    "status": ("state",),
}


class AppSchemaError(ValueError):
    """Reads of a table cannot work with the configured names; the message names the config key."""


class SchemaStatus(IntEnum):
    """Also ``opswatch db doctor``'s exit code."""

    OK = 0
    DEGRADED = 1
    UNUSABLE = 2


@dataclass(frozen=True)
class SchemaProblem:
    key: str  # the config key that maps it: database.columns.social_channels.name
    table: str  # logical table
    column: str | None  # logical column; None when the whole table is missing
    required: bool
    message: str  # one display-safe line, starting with the key
    impact: str = ""  # what is lost while it stays (optional problems)


@dataclass(frozen=True)
class SchemaReport:
    problems: tuple[SchemaProblem, ...] = ()
    tables_checked: int = 0
    missing: dict[str, frozenset[str]] = field(default_factory=dict)  # logical table -> logical columns

    @property
    def status(self) -> SchemaStatus:
        if any(p.required for p in self.problems):
            return SchemaStatus.UNUSABLE
        return SchemaStatus.DEGRADED if self.problems else SchemaStatus.OK

    @property
    def ok(self) -> bool:
        return self.status is SchemaStatus.OK

    def blocking(self, kind: str) -> tuple[SchemaProblem, ...]:
        """Required problems that make reads of ``kind`` (dlq | event) fail."""
        needed = NEEDS.get(kind, ())
        return tuple(p for p in self.problems if p.required and p.table in needed)

    def summary(self) -> str:
        """One line for a status bar, a log or ``check``: the first problem and how many more."""
        if not self.problems:
            return f"app schema ok ({self.tables_checked} tables)"
        ranked = sorted(self.problems, key=lambda p: not p.required)
        word = "unusable" if self.status is SchemaStatus.UNUSABLE else "degraded"
        more = f" (+{len(ranked) - 1} more; run 'opswatch db doctor')" if len(ranked) > 1 else ""
        return f"app schema {word}: {ranked[0].message}{more}"

    def apply(self, tables: AppTables) -> AppTables:
        """``tables`` with the missing columns marked, so reads leave optional ones out."""
        return tables.without(self.missing)


def _key(table: str, column: str | None) -> str:
    return f"database.tables.{table}" if column is None else f"database.columns.{table}.{column}"


def _suggest(logical: str, real: str, have: Collection[str]) -> str:
    candidates = [c for c in SYNONYMS.get(logical, ()) if c in have]
    candidates += difflib.get_close_matches(real, list(have), n=1, cutoff=0.75)
    return f'; maybe "{candidates[0]}"?' if candidates else ""


def _column_problems(table: Table, have: list[str], table_optional: bool) -> Iterable[SchemaProblem]:
    present = set(have)
    listing = ", ".join(have)
    for logical in LOGICAL_COLUMNS[table.logical]:
        real = table.real(logical)
        if real in present:
            continue
        impact = OPTIONAL_COLUMNS.get((table.logical, logical), "")
        required = not (impact or table_optional)
        message = (
            f'{_key(table.logical, logical)}: column "{real}" not found in {table.display} '
            f"(has: {listing}){_suggest(logical, real, present)}"
        )
        yield SchemaProblem(
            key=_key(table.logical, logical),
            table=table.logical,
            column=logical,
            required=required,
            message=display_text(message, 400),
            impact=impact or OPTIONAL_TABLES.get(table.logical, ""),
        )


def diagnose(tables: AppTables, columns: dict[tuple[str, str], list[str]]) -> SchemaReport:
    """The report for ``tables`` given the real ``(schema, table) -> columns`` (in table order)."""
    problems: list[SchemaProblem] = []
    missing: dict[str, frozenset[str]] = {}
    for table in tables.every():
        have = columns.get((table.schema, table.name))
        optional_table = table.logical in OPTIONAL_TABLES
        if have is None:
            problems.append(
                SchemaProblem(
                    key=_key(table.logical, None),
                    table=table.logical,
                    column=None,
                    required=not optional_table,
                    message=display_text(
                        f'{_key(table.logical, None)}: table "{table.display}" not found', 300
                    ),
                    impact=OPTIONAL_TABLES.get(table.logical, ""),
                )
            )
            missing[table.logical] = frozenset(LOGICAL_COLUMNS[table.logical])
            continue
        found = list(_column_problems(table, have, optional_table))
        problems.extend(found)
        gone = {p.column for p in found if p.column is not None}
        if optional_table and "id" in gone:  # nothing to join on: as good as no table
            gone = set(LOGICAL_COLUMNS[table.logical])
        if gone:
            missing[table.logical] = frozenset(gone)
    return SchemaReport(tuple(problems), len(tables.every()), missing)


INTROSPECT_SQL = """
    SELECT table_schema, table_name, array_agg(column_name::text ORDER BY ordinal_position) AS columns
    FROM information_schema.columns
    WHERE (table_schema, table_name) IN (SELECT * FROM unnest($1::text[], $2::text[]))
    GROUP BY 1, 2"""


async def read_columns(conn: asyncpg.Connection, tables: AppTables) -> dict[tuple[str, str], list[str]]:
    every = tables.every()
    rows = await conn.fetch(INTROSPECT_SQL, [t.schema for t in every], [t.name for t in every])
    return {(r["table_schema"], r["table_name"]): list(r["columns"]) for r in rows}


async def inspect_app_schema(db: Database, config: Config) -> SchemaReport:
    """Introspect the configured app tables (one catalogue query). Raises DatabaseUnavailable."""
    tables = AppTables.from_config(config)
    async with db.acquire() as conn:
        columns = await read_columns(conn, tables)
    return diagnose(tables, columns)


def unusable_error(report: SchemaReport, kind: str) -> AppSchemaError | None:
    blocking = report.blocking(kind)
    if not blocking:
        return None
    more = f" (+{len(blocking) - 1} more; run 'opswatch db doctor')" if len(blocking) > 1 else ""
    return AppSchemaError(f"app schema unusable: {blocking[0].message}{more}")


def log_report(report: SchemaReport) -> None:
    """At start-up: every problem once, as a warning (optional) or an error (required)."""
    if report.ok:
        logger.info("app schema ok ({} tables)", report.tables_checked)
        return
    for problem in report.problems:
        level = "ERROR" if problem.required else "WARNING"
        impact = f" ({problem.impact})" if problem.impact and not problem.required else ""
        logger.bind(config_key=problem.key).log(level, "app schema: {}{}", problem.message, impact)
