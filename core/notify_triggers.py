"""Live change notifications from the app's DLQ and event-failure tables (opt-in).

``opswatch db install-notify`` adds statement-level triggers to ``dead_letter_messages`` and
``event_failures`` that ``pg_notify('opswatch_changes', ...)`` once per INSERT statement and
once per UPDATE statement that changed a status (payload JSON: ``{"kind": "dlq"|"event",
"op": "insert"|"update", "count": n, "max_id": m}``). Statement level keeps a 100,000-row
bulk update to a handful of notifications. The trigger functions live in schema ``opswatch``.

Without the triggers, :class:`ChangeWatcher` polls a cheap token instead: ``max(id)`` of both
tables (new rows, immediately) and the tables' update counters from ``pg_stat_user_tables``
(status changes by others; the statistics system publishes them within about a second).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import asyncpg
from loguru import logger

from core.aio import get_within, wait_event
from core.audit import default_actor, write_audit
from core.config import Config
from core.db import Database, DatabaseUnavailable
from core.migrate import quote_ident
from core.triage.schema import AppTables, Table

CHANGES_CHANNEL = "opswatch_changes"
_TRIGGER_INSERT = "opswatch_notify_insert"
_TRIGGER_UPDATE = "opswatch_notify_update"


@dataclass(frozen=True)
class Change:
    kind: str | None  # dlq | event | None (polling cannot tell)
    op: str  # insert | update | poll
    count: int = 0
    max_id: int = 0


def _function(kind: str, op: str) -> str:
    return f"opswatch.notify_{kind}_{op}"


def install_sql(config: Config) -> str:
    """DDL installing (or replacing) the notify triggers on the two tables."""
    tables = AppTables.from_config(config)
    parts = ["CREATE SCHEMA IF NOT EXISTS opswatch;"]
    for kind, table in (("dlq", tables.dlq), ("event", tables.events)):
        parts.append(_table_sql(kind, table))
    return "\n".join(parts)


def _table_sql(kind: str, t: Table) -> str:
    ident, status = t.c("id"), t.c("status")
    return f"""
CREATE OR REPLACE FUNCTION {_function(kind, "insert")}() RETURNS trigger LANGUAGE plpgsql AS $fn$
DECLARE n bigint; m bigint;
BEGIN
    SELECT count(*), max({ident}) INTO n, m FROM new_rows;
    IF n > 0 THEN
        PERFORM pg_notify('{CHANGES_CHANNEL}', json_build_object(
            'kind', '{kind}', 'op', 'insert', 'count', n, 'max_id', m)::text);
    END IF;
    RETURN NULL;
END $fn$;
CREATE OR REPLACE FUNCTION {_function(kind, "update")}() RETURNS trigger LANGUAGE plpgsql AS $fn$
DECLARE n bigint; m bigint;
BEGIN
    SELECT count(*), max(nr.{ident}) INTO n, m
    FROM new_rows nr JOIN old_rows o ON o.{ident} = nr.{ident}
    WHERE nr.{status} IS DISTINCT FROM o.{status};
    IF n > 0 THEN
        PERFORM pg_notify('{CHANGES_CHANNEL}', json_build_object(
            'kind', '{kind}', 'op', 'update', 'count', n, 'max_id', m)::text);
    END IF;
    RETURN NULL;
END $fn$;
DROP TRIGGER IF EXISTS {_TRIGGER_INSERT} ON {t.q};
CREATE TRIGGER {_TRIGGER_INSERT} AFTER INSERT ON {t.q}
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION {_function(kind, "insert")}();
DROP TRIGGER IF EXISTS {_TRIGGER_UPDATE} ON {t.q};
CREATE TRIGGER {_TRIGGER_UPDATE} AFTER UPDATE ON {t.q}
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION {_function(kind, "update")}();
"""


def uninstall_sql(config: Config) -> str:
    tables = AppTables.from_config(config)
    parts = []
    for kind, table in (("dlq", tables.dlq), ("event", tables.events)):
        parts.append(f"DROP TRIGGER IF EXISTS {_TRIGGER_INSERT} ON {table.q};")
        parts.append(f"DROP TRIGGER IF EXISTS {_TRIGGER_UPDATE} ON {table.q};")
        parts.append(f"DROP FUNCTION IF EXISTS {_function(kind, 'insert')}();")
        parts.append(f"DROP FUNCTION IF EXISTS {_function(kind, 'update')}();")
    return "\n".join(parts)


async def install(conn: asyncpg.Connection, config: Config, *, actor: str | None = None) -> None:
    """Install the change triggers on the app's tables; audited like every change opswatch makes."""
    async with conn.transaction():
        await conn.execute(install_sql(config))
        await write_audit(
            conn,
            actor=default_actor(actor or config.triage.actor),
            action="db.install_notify",
            target_kind="schema",
            target_key="notify-triggers",
            outcome="applied",
        )


async def uninstall(conn: asyncpg.Connection, config: Config, *, actor: str | None = None) -> None:
    async with conn.transaction():
        await conn.execute(uninstall_sql(config))
        await write_audit(
            conn,
            actor=default_actor(actor or config.triage.actor),
            action="db.remove_notify",
            target_kind="schema",
            target_key="notify-triggers",
            outcome="applied",
        )


async def installed(conn: asyncpg.Connection, config: Config) -> bool:
    """True when both tables carry both triggers."""
    tables = AppTables.from_config(config)
    found = await conn.fetchval(
        "SELECT count(*) FROM pg_trigger WHERE NOT tgisinternal AND tgname = ANY($1::text[]) "
        "AND tgrelid IN (to_regclass($2), to_regclass($3))",
        [_TRIGGER_INSERT, _TRIGGER_UPDATE],
        quote_ident(f"{tables.dlq.schema}.{tables.dlq.name}"),
        quote_ident(f"{tables.events.schema}.{tables.events.name}"),
    )
    return int(found) == 4


def parse_change(payload: str) -> Change:
    try:
        data: Any = json.loads(payload)
        return Change(str(data["kind"]), str(data["op"]), int(data["count"]), int(data["max_id"] or 0))
    except (ValueError, KeyError, TypeError):
        return Change(None, "unknown")


async def change_token(db: Database, config: Config) -> tuple[int, ...]:
    """Changes whenever a row is added, or (within ~1 s) updated, in either table."""
    tables = AppTables.from_config(config)
    d, e = tables.dlq, tables.events
    row = await db.fetchrow(
        f"""
        SELECT /* opswatch */
               (SELECT max({d.c("id")}) FROM {d.q}) AS d, (SELECT max({e.c("id")}) FROM {e.q}) AS e,
               (SELECT coalesce(sum(n_tup_upd + n_tup_del), 0) FROM pg_stat_user_tables
                WHERE relid IN (to_regclass($1), to_regclass($2))) AS changed
        """,
        quote_ident(f"{d.schema}.{d.name}"),
        quote_ident(f"{e.schema}.{e.name}"),
    )
    assert row is not None
    return int(row["d"] or 0), int(row["e"] or 0), int(row["changed"] or 0)


OnChange = Callable[[Change], Awaitable[None] | None]


class ChangeWatcher:
    """Calls ``on_change`` when the DLQ or event tables change: via LISTEN when the triggers are
    installed, else by polling :func:`change_token` every ``interval`` seconds."""

    def __init__(self, db: Database, config: Config, on_change: OnChange, *, interval: float = 1.0) -> None:
        self.db = db
        self.config = config
        self.on_change = on_change
        self.interval = interval
        self.mode = "stopped"
        self._task: asyncio.Task[None] | None = None
        self._queue: asyncio.Queue[Change] = asyncio.Queue()
        self._retuned = asyncio.Event()

    def set_interval(self, seconds: float) -> None:
        """Poll every ``seconds`` from now on (the wait in progress is cut short)."""
        if seconds != self.interval:
            self.interval = seconds
            self._retuned.set()

    async def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="opswatch-change-watcher")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            try:
                await task
            except asyncio.CancelledError:
                pass
            except asyncpg.exceptions.InternalClientError as exc:
                # Cancelled mid-query, the pool's release finds the connection still busy
                # ("cannot switch to state ..."); the watcher is stopping, so that is the end of it.
                logger.debug("change watcher stopped mid-query: {}", exc)
        self.mode = "stopped"

    async def _emit(self, change: Change) -> None:
        result = self.on_change(change)
        if result is not None:
            await result

    async def _run(self) -> None:
        while True:
            try:
                async with self.db.acquire() as conn:
                    use_notify = await installed(conn, self.config)
                    if use_notify:
                        await self._listen(conn)
                        continue
                await self._poll()
            except DatabaseUnavailable:
                self.mode = "waiting"
                await asyncio.sleep(self.interval)

    async def _listen(self, conn: asyncpg.Connection) -> None:
        self.mode = "notify"

        def received(_c: object, _pid: int, _channel: str, payload: str) -> None:
            self._queue.put_nowait(parse_change(payload))

        await conn.add_listener(CHANGES_CHANNEL, received)
        try:
            while not conn.is_closed():
                change = await get_within(self._queue, max(self.interval, 5.0))
                if change is None:
                    await conn.fetchval("SELECT 1")  # notice a dropped connection
                    continue
                await self._emit(change)
        finally:
            with contextlib.suppress(Exception):
                await conn.remove_listener(CHANGES_CHANNEL, received)

    async def _poll(self) -> None:
        self.mode = "poll"
        last = await change_token(self.db, self.config)
        while True:
            await wait_event(self._retuned, self.interval)
            self._retuned.clear()
            token = await change_token(self.db, self.config)
            if token != last:
                last = token
                await self._emit(Change(None, "poll", max_id=token[0]))
