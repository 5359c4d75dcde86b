"""The Database screen on a real server: a row lock held in an open transaction, two sessions
waiting on it. The screen shows who blocks whom as a tree and the idle-in-transaction session."""

from __future__ import annotations

import asyncio
from typing import Any

import asyncpg
from textual.widgets import DataTable, Static

from tests.tui.support import build_app, console, make_config, wait_for
from tui.screens.database import DatabaseScreen

HOSTILE_APP = "[bold]evil[/] \x1b[31m"


def column(table: DataTable[Any], index: int) -> list[str]:
    return [str(table.get_row_at(r)[index]) for r in range(table.row_count)]


async def test_blocking_tree_and_idle_in_transaction(db_dsn: str) -> None:
    holder = await asyncpg.connect(db_dsn, server_settings={"application_name": "pos-backend"})
    waiter = await asyncpg.connect(db_dsn, server_settings={"application_name": HOSTILE_APP})
    second = await asyncpg.connect(db_dsn, server_settings={"application_name": "pos-worker"})
    tasks: list[asyncio.Task[object]] = []
    app, _, db = build_app(db_dsn, config=make_config(refresh_interval=0.5), clock=None)
    try:
        await holder.execute("INSERT INTO businesses (name) VALUES ('Acme') ON CONFLICT DO NOTHING")
        row_id = await holder.fetchval("SELECT min(id) FROM businesses")
        hold = holder.transaction()
        await hold.start()
        await holder.execute("UPDATE businesses SET name = 'held' WHERE id = $1", row_id)
        update = waiter.execute("UPDATE businesses SET name = 'w' WHERE id = $1", row_id)
        tasks.append(asyncio.ensure_future(update))
        tasks.append(asyncio.ensure_future(second.execute("DELETE FROM businesses WHERE id = $1", row_id)))
        pids = [c.get_server_pid() for c in (holder, waiter, second)]

        async with app.run_test(size=(160, 48)) as pilot:
            await pilot.press("6")
            screen = app.screen
            assert isinstance(screen, DatabaseScreen)
            locks = screen.query_one("#db-locks", DataTable)
            await wait_for(pilot, lambda: locks.row_count >= 3, within=10, what="blocking tree")
            tree = column(locks, 0)
            assert tree[0] == str(pids[0])  # the blocker is the root ...
            # ... with its waiters below it (the second may wait on the first as well: a chain)
            assert all(line.lstrip().startswith("└─ ") for line in tree[1:])
            assert {line.split()[-1] for line in tree[1:]} == {str(p) for p in pids[1:]}
            assert column(locks, 1)[0] == "blocks 2"
            assert column(locks, 2)[0] == "idle in transaction"
            apps = column(locks, 3)
            assert all("\x1b" not in a for a in apps) and any("[bold]evil[/]" in a for a in apps)

            xacts = screen.query_one("#db-xacts", DataTable)
            await wait_for(pilot, lambda: str(pids[0]) in column(xacts, 0), what="idle in transaction listed")
            row = column(xacts, 0).index(str(pids[0]))
            assert str(xacts.get_row_at(row)[2]) == "idle in transaction"

            active = screen.query_one("#db-active", DataTable)
            await wait_for(pilot, lambda: {str(p) for p in pids[1:]} <= set(column(active, 0)), what="active")
            assert all(w.startswith("Lock:") for w in column(active, 2) if w != "—")
            states = str(screen.query_one("#db-states", Static).render())
            assert "idle in transaction 1" in states and "opswatch's own" in states

            await hold.rollback()  # the lock goes: the tree empties on the next read
            await wait_for(pilot, lambda: locks.row_count == 0, within=10, what="tree gone")
    finally:
        for conn in (waiter, second):
            conn.terminate()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await holder.close()
        await db.close()


async def test_activity_is_read_only_while_the_screen_is_shown(db_dsn: str) -> None:
    async with console(db_dsn, clock=None, size=(100, 30), key="6", screen=DatabaseScreen) as (
        _,
        _,
        pilot,
        screen,
    ):
        await wait_for(pilot, lambda: screen.activity is not None, what="first read")
        assert screen._timer is not None and screen._timer._active.is_set()
        await pilot.press("1")
        assert not screen._timer._active.is_set()  # paused: no queries for a hidden screen
        await pilot.press("6")
        assert screen._timer._active.is_set()


async def test_every_list_is_reachable_by_keys_at_80x24(db_dsn: str) -> None:
    """At 80x24 the sections stack and the page scrolls; ] and [ move between the lists."""
    async with console(db_dsn, clock=None, size=(80, 24), key="6", screen=DatabaseScreen) as (
        app,
        _,
        pilot,
        screen,
    ):
        body = screen.query_one("#db-body")
        seen = []
        for _ in range(5):
            await pilot.press("right_square_bracket")
            await pilot.pause()
            focused = app.focused
            assert isinstance(focused, DataTable) and focused.parent is not None
            seen.append(focused.id)
            region = focused.parent.region
            assert body.region.contains_region(region), focused.id  # scrolled into view, whole
        assert seen == ["db-locks", "db-xacts", "db-slow", "db-sizes", "db-active"]
        await pilot.press("left_square_bracket")
        assert app.focused is not None and app.focused.id == "db-sizes"


async def test_database_down_says_activity_is_unknown() -> None:
    async with console(
        "postgresql://postgres@127.0.0.1:1/none", clock=None, size=(120, 40), key="6", screen=DatabaseScreen
    ) as (_, _, pilot, screen):
        states = screen.query_one("#db-states", Static)
        unknown = lambda: "activity unknown" in str(states.render())  # noqa: E731
        await wait_for(pilot, unknown, within=10, what="activity unknown")
        assert "database unreachable" in str(states.render())
        health = screen.query_one("#db-health-line", Static)
        await wait_for(pilot, lambda: "DOWN since" in str(health.render()), within=10, what="down")
        assert screen.query_one("#db-locks", DataTable).row_count == 0
