"""Versioned, idempotent SQL migrations for schema ``opswatch``, and the demo/test app schema.

Migration files are ``NNNN_name.sql`` inside the ``core.migrations`` package (shipped in the
wheel). Each runs once, in its own transaction, under an advisory lock so that several
opswatch instances starting together do not race.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources

import asyncpg

_MIGRATION_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")
_LOCK_KEY = 0x6F707377  # "opsw"

APP_TABLES = ("businesses", "social_channels", "social_messages", "event_failures", "dead_letter_messages")


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str


def available_migrations() -> list[Migration]:
    found = []
    for entry in resources.files("core.migrations").iterdir():
        match = _MIGRATION_NAME.match(entry.name)
        if match:
            found.append(Migration(int(match.group(1)), match.group(2), entry.read_text(encoding="utf-8")))
    found.sort(key=lambda m: m.version)
    versions = [m.version for m in found]
    if len(versions) != len(set(versions)):
        raise RuntimeError(f"duplicate migration versions: {versions}")
    return found


async def migrate(conn: asyncpg.Connection) -> list[Migration]:
    """Apply pending migrations; returns the ones applied now."""
    applied_now: list[Migration] = []
    await conn.execute("SELECT pg_advisory_lock($1)", _LOCK_KEY)
    try:
        await conn.execute(
            """
            CREATE SCHEMA IF NOT EXISTS opswatch;
            CREATE TABLE IF NOT EXISTS opswatch.schema_migrations (
                version    INTEGER PRIMARY KEY,
                name       TEXT NOT NULL,
                applied_at TIMESTAMPTZ NOT NULL DEFAULT now()
            );
            """
        )
        done = {r["version"] for r in await conn.fetch("SELECT version FROM opswatch.schema_migrations")}
        for migration in available_migrations():
            if migration.version in done:
                continue
            async with conn.transaction():
                await conn.execute(migration.sql)
                await conn.execute(
                    "INSERT INTO opswatch.schema_migrations (version, name) VALUES ($1, $2)",
                    migration.version,
                    migration.name,
                )
            applied_now.append(migration)
    finally:
        await conn.execute("SELECT pg_advisory_unlock($1)", _LOCK_KEY)
    return applied_now


def quote_ident(name: str) -> str:
    """Quote a possibly schema-qualified identifier (``public.dead_letter_messages``)."""
    return ".".join('"' + part.replace('"', '""') + '"' for part in name.split("."))


def app_schema_sql(tables: Mapping[str, str] | None = None) -> str:
    names = {t: t for t in APP_TABLES} | dict(tables or {})
    template = resources.files("core.schema").joinpath("app_schema.sql").read_text(encoding="utf-8")
    return template.format(**{k: quote_ident(v) for k, v in names.items()})


async def init_app_schema(conn: asyncpg.Connection, tables: Mapping[str, str] | None = None) -> None:
    """Create the monitored app's tables (seed DDL) — for demo and tests, never for production."""
    async with conn.transaction():
        await conn.execute(app_schema_sql(tables))
