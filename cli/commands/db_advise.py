"""opswatch db advise | db install-notify — wired into `opswatch db` by ``add_db_actions(sub)``.

No ``register`` here on purpose: cli/commands/db.py owns the ``db`` subparser and calls
:func:`add_db_actions` with its sub-subparsers.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
from collections.abc import AsyncIterator
from typing import Any

import asyncpg

from cli.commands.common import UsageError, action, add_common_options, load_config_for, run_on_connection
from core.api import (
    CHANGES_CHANNEL,
    Config,
    advise,
    advise_settings,
    apply_advice,
    display_text,
    install,
    install_sql,
    installed,
    missing_sql,
    uninstall,
)


def add_db_actions(sub: Any) -> None:
    adv = action(
        sub,
        "advise",
        "show the indexes (and autovacuum settings) opswatch needs on the app's tables",
        _advise,
        "List the indexes that keep triage fast on large dead_letter_messages and "
        "event_failures tables (pages, bulk actions, summaries, error-text search), whether each "
        "exists, and the CREATE INDEX CONCURRENTLY statements for the missing ones; plus per-table "
        "autovacuum scale factors so counts stay fast after bulk actions. With --apply, run them "
        "(no write lock on the tables; may take minutes on big tables). Exit 0 when nothing is "
        "missing, 1 otherwise.",
    )
    only_sql = ("--sql", "print only the SQL for what is missing")
    _switches(adv, ("--apply", "create the missing indexes now"), only_sql)
    notify = action(
        sub,
        "install-notify",
        "(opt-in) add triggers so consoles see new dead letters and status changes instantly",
        _install_notify,
        f"Install statement-level triggers on dead_letter_messages and event_failures that "
        f"pg_notify channel '{CHANGES_CHANNEL}' on inserts and status changes, so every opswatch console "
        "updates at once instead of polling max(id) and counters each refresh. The trigger functions "
        "live in schema 'opswatch'; needs the TRIGGER privilege on the two tables. --remove takes "
        "them out again; --sql prints the DDL without running it.",
    )
    _switches(notify, ("--remove", "remove the triggers"), ("--sql", "print the DDL instead of running it"))


def _switches(parser: argparse.ArgumentParser, *switches: tuple[str, str]) -> None:
    """--config and --read-only first (the help lists them first), then on/off ``(flag, help)`` options."""
    add_common_options(parser)
    for flag, help_text in switches:
        parser.add_argument(flag, action="store_true", help=help_text)


@contextlib.asynccontextmanager
async def _database_errors(denied: str | None = None) -> AsyncIterator[None]:
    """PostgreSQL errors as one line; ``denied`` names what a missing privilege stopped."""
    try:
        yield
    except asyncpg.PostgresError as exc:
        if denied is not None and isinstance(exc, asyncpg.InsufficientPrivilegeError):
            raise UsageError(f"{denied}: {display_text(str(exc), 200)}") from exc
        raise UsageError(f"database error: {display_text(str(exc), 300)}") from exc


def _advise(args: argparse.Namespace) -> int:
    async def job(config: Config, conn: asyncpg.Connection) -> int:
        async with _database_errors():
            items = await advise(conn, config)
            settings = await advise_settings(conn, config)
            missing = missing_sql(items, settings)
            if args.sql and not args.apply:
                for statement in missing:
                    print(statement + ";")
                return 1 if missing else 0
            for a in items:
                mark = "ok     " if a.exists else "MISSING"
                using = f" {a.method}" if a.method != "btree" else ""
                cols = ", ".join(a.columns) + (f" {a.opclass}" if a.opclass else "")
                include = f" INCLUDE ({', '.join(a.include)})" if a.include else ""
                have = f" (as {a.existing_name})" if a.exists and a.existing_name != a.name else ""
                print(f"{mark}  {a.table}{using} ({cols}){include}{have}")
                print(f"         for: {a.why}")
                if a.extension and not a.extension_installed:
                    print(f"         needs extension {a.extension}")
            for st in settings:
                mark = "ok     " if st.ok else "MISSING"
                now = st.current if st.current is not None else "server default"
                print(f"{mark}  {st.table} {st.setting} <= {st.value} (now: {now})")
                print(f"         for: {st.why}")
            if not missing:
                print("all recommended indexes and settings are in place")
                return 0
            if not args.apply:
                print("\nto create what is missing (or run 'opswatch db advise --apply'):")
                for statement in missing:
                    print(f"  {statement};")
                return 1
            await apply_advice(conn, config, progress=lambda sql: print(f"running: {sql}", file=sys.stderr))
            print("done: indexes created and settings applied")
            return 0

    return run_on_connection(args, job)


def _install_notify(args: argparse.Namespace) -> int:
    config = load_config_for(args)
    if args.sql:
        print(install_sql(config))
        return 0

    async def job(config: Config, conn: asyncpg.Connection) -> int:
        async with _database_errors("not allowed to create triggers"):
            if args.remove:
                await uninstall(conn, config)
                print("notify triggers removed; consoles fall back to polling")
                return 0
            await install(conn, config)
            ok = await installed(conn, config)
            print(
                f"notify triggers installed on {config.database.table('dead_letter_messages')} and "
                f"{config.database.table('event_failures')} (channel {CHANGES_CHANNEL})"
                if ok
                else "triggers were not found after installing"
            )
            return 0 if ok else 1

    return run_on_connection(args, job, config)
