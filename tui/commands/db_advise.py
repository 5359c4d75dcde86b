"""opswatch db advise | db install-notify — wired into `opswatch db` by ``add_db_actions(sub)``.

No ``register`` here on purpose: tui/commands/db.py owns the ``db`` subparser and calls
:func:`add_db_actions` with its sub-subparsers.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

import asyncpg

from core.db import describe_error
from core.notify_triggers import CHANGES_CHANNEL, install, install_sql, installed, uninstall
from core.safe_text import display_text
from core.triage.advise import advise, advise_settings, apply_advice, missing_sql
from tui.commands.common import UsageError, add_common_options, load_config_for, require_dsn, run_async


def add_db_actions(sub: Any) -> None:
    adv: argparse.ArgumentParser = sub.add_parser(
        "advise",
        help="show the indexes (and autovacuum settings) opswatch needs on the app's tables",
        description="List the indexes that keep triage fast on large dead_letter_messages and "
        "event_failures tables (pages, bulk actions, summaries, error-text search), whether each "
        "exists, and the CREATE INDEX CONCURRENTLY statements for the missing ones; plus per-table "
        "autovacuum scale factors so counts stay fast after bulk actions. With --apply, run them "
        "(no write lock on the tables; may take minutes on big tables). Exit 0 when nothing is "
        "missing, 1 otherwise.",
    )
    add_common_options(adv)
    adv.add_argument("--apply", action="store_true", help="create the missing indexes now")
    adv.add_argument("--sql", action="store_true", help="print only the SQL for what is missing")
    adv.set_defaults(handler=_advise)

    notify: argparse.ArgumentParser = sub.add_parser(
        "install-notify",
        help="(opt-in) add triggers so consoles see new dead letters and status changes instantly",
        description=f"Install statement-level triggers on dead_letter_messages and event_failures that "
        f"pg_notify channel '{CHANGES_CHANNEL}' on inserts and status changes, so every opswatch console "
        "updates at once instead of polling max(id) and counters each refresh. The trigger functions "
        "live in schema 'opswatch'; needs the TRIGGER privilege on the two tables. --remove takes "
        "them out again; --sql prints the DDL without running it.",
    )
    add_common_options(notify)
    notify.add_argument("--remove", action="store_true", help="remove the triggers")
    notify.add_argument("--sql", action="store_true", help="print the DDL instead of running it")
    notify.set_defaults(handler=_install_notify)


async def _connect(dsn: str) -> asyncpg.Connection:
    try:
        return await asyncpg.connect(dsn, timeout=10)
    except Exception as exc:  # every connect failure is reported as one line
        raise UsageError(f"cannot connect to the database: {describe_error(exc)}") from exc


def _advise(args: argparse.Namespace) -> int:
    config = load_config_for(args)
    dsn = require_dsn(config)

    async def go() -> int:
        conn = await _connect(dsn)
        try:
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
        except asyncpg.PostgresError as exc:
            raise UsageError(f"database error: {display_text(str(exc), 300)}") from exc
        finally:
            await conn.close()

    return run_async(go())


def _install_notify(args: argparse.Namespace) -> int:
    config = load_config_for(args)
    if args.sql:
        print(install_sql(config))
        return 0
    dsn = require_dsn(config)

    async def go() -> int:
        conn = await _connect(dsn)
        try:
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
        except asyncpg.InsufficientPrivilegeError as exc:
            raise UsageError(f"not allowed to create triggers: {display_text(str(exc), 200)}") from exc
        except asyncpg.PostgresError as exc:
            raise UsageError(f"database error: {display_text(str(exc), 300)}") from exc
        finally:
            await conn.close()

    return run_async(go())
