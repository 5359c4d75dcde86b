"""opswatch db migrate | init-app-schema | doctor"""

from __future__ import annotations

import argparse
from typing import Any

import asyncpg

from cli.commands.common import action, command_group, run_on_connection
from cli.commands.db_advise import add_db_actions
from core.api import AppTables, Config, diagnose, init_app_schema, migrate, read_columns


def register(subparsers: Any) -> None:
    sub = command_group(subparsers, "db", "manage opswatch's own schema in PostgreSQL")
    action(
        sub,
        "migrate",
        "create or upgrade schema 'opswatch' (audit log, alert state, outbox, probe samples)",
        _migrate,
        "Apply opswatch's versioned SQL migrations to schema 'opswatch' in database.dsn. "
        "Safe to run repeatedly and from several hosts at once. Never alters the app's own tables.",
    )
    action(
        sub,
        "init-app-schema",
        "create the POS app's tables (businesses, dead_letter_messages, ...) for demos and tests",
        _init_app,
        "Create the monitored app's tables from the seed DDL (businesses, social_channels, "
        "social_messages, event_failures, dead_letter_messages) if they do not exist. For demo and "
        "test databases; a production backend owns its own schema.",
    )
    action(
        sub,
        "doctor",
        "check the app's tables against the configured names; exit 0 ok, 1 degraded, 2 unusable",
        _doctor,
        "Read information_schema.columns for the app's tables (database.app_schema, "
        "database.tables) and report every missing table or column with the config key that maps "
        "it (database.tables.* or database.columns.<table>.<column>). Exit code: 0 all good, "
        "1 degraded but usable (optional columns missing, e.g. a channel name: shown as #id), "
        "2 unusable (required columns or tables missing), or on a usage or connection error.",
    )
    add_db_actions(sub)


def _migrate(args: argparse.Namespace) -> int:
    async def job(_config: Config, conn: asyncpg.Connection) -> int:
        applied = await migrate(conn)
        names = ", ".join(f"{m.version:04d}_{m.name}" for m in applied) or "nothing to do"
        print(f"migrations applied: {names}")
        return 0

    return run_on_connection(args, job)


def _init_app(args: argparse.Namespace) -> int:
    async def job(config: Config, conn: asyncpg.Connection) -> int:
        await init_app_schema(conn, dict(config.database.tables))
        print("app schema ready")
        return 0

    return run_on_connection(args, job)


def _doctor(args: argparse.Namespace) -> int:
    async def job(config: Config, conn: asyncpg.Connection) -> int:
        tables = AppTables.from_config(config)
        report = diagnose(tables, await read_columns(conn, tables))
        for problem in report.problems:
            if problem.required:
                print(f"unusable  {problem.message}")
            else:
                print(f"degraded  {problem.message}" + (f" ({problem.impact})" if problem.impact else ""))
        print(report.summary())
        return int(report.status)

    return run_on_connection(args, job)
