"""opswatch db migrate | init-app-schema | doctor"""

from __future__ import annotations

import argparse
from typing import Any

import asyncpg

from core.db import describe_error
from core.migrate import init_app_schema, migrate
from core.triage.doctor import diagnose, read_columns
from core.triage.schema import AppTables
from tui.commands.common import UsageError, load_config_for, require_dsn, run_async, subparser
from tui.commands.db_advise import add_db_actions


def register(subparsers: Any) -> None:
    parser = subparser(subparsers, "db", "manage opswatch's own schema in PostgreSQL")
    sub = parser.add_subparsers(dest="db_command", metavar="ACTION", required=True)
    mig = sub.add_parser(
        "migrate",
        help="create or upgrade schema 'opswatch' (audit log, alert state, outbox, probe samples)",
        description="Apply opswatch's versioned SQL migrations to schema 'opswatch' in database.dsn. "
        "Safe to run repeatedly and from several hosts at once. Never alters the app's own tables.",
    )
    mig.set_defaults(handler=_migrate)
    app = sub.add_parser(
        "init-app-schema",
        help="create the POS app's tables (businesses, dead_letter_messages, ...) for demos and tests",
        description="Create the monitored app's tables from the seed DDL (businesses, social_channels, "
        "social_messages, event_failures, dead_letter_messages) if they do not exist. For demo and "
        "test databases; a production backend owns its own schema.",
    )
    app.set_defaults(handler=_init_app)
    doctor = sub.add_parser(
        "doctor",
        help="check the app's tables against the configured names; exit 0 ok, 1 degraded, 2 unusable",
        description="Read information_schema.columns for the app's tables (database.app_schema, "
        "database.tables) and report every missing table or column with the config key that maps "
        "it (database.tables.* or database.columns.<table>.<column>). Exit code: 0 all good, "
        "1 degraded but usable (optional columns missing, e.g. a channel name: shown as #id), "
        "2 unusable (required columns or tables missing), or on a usage or connection error.",
    )
    doctor.set_defaults(handler=_doctor)
    add_db_actions(sub)


async def _connect(dsn: str) -> asyncpg.Connection:
    try:
        return await asyncpg.connect(dsn, timeout=10)
    except Exception as exc:  # any connect failure is reported as one line
        raise UsageError(f"cannot connect to the database: {describe_error(exc)}") from exc


def _migrate(args: argparse.Namespace) -> int:
    dsn = require_dsn(load_config_for(args))

    async def go() -> int:
        conn = await _connect(dsn)
        try:
            applied = await migrate(conn)
        finally:
            await conn.close()
        names = ", ".join(f"{m.version:04d}_{m.name}" for m in applied) or "nothing to do"
        print(f"migrations applied: {names}")
        return 0

    return run_async(go())


def _init_app(args: argparse.Namespace) -> int:
    config = load_config_for(args)
    dsn = require_dsn(config)

    async def go() -> int:
        conn = await _connect(dsn)
        try:
            await init_app_schema(conn, dict(config.database.tables))
        finally:
            await conn.close()
        print("app schema ready")
        return 0

    return run_async(go())


def _doctor(args: argparse.Namespace) -> int:
    config = load_config_for(args)
    dsn = require_dsn(config)

    async def go() -> int:
        tables = AppTables.from_config(config)
        conn = await _connect(dsn)
        try:
            report = diagnose(tables, await read_columns(conn, tables))
        finally:
            await conn.close()
        for problem in report.problems:
            if problem.required:
                print(f"unusable  {problem.message}")
            else:
                print(f"degraded  {problem.message}" + (f" ({problem.impact})" if problem.impact else ""))
        print(report.summary())
        return int(report.status)

    return run_async(go())
