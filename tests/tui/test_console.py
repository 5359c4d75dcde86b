"""Console behaviour: read-only, hostile text, keymap, help, palette, live updates, wall, quit."""

from __future__ import annotations

import asyncio
from dataclasses import replace

import pytest
from rich.text import Text
from textual.command import DiscoveryHit
from textual.widgets import DataTable, Footer, Static

from core.errors import ReadOnlyError
from core.triage import DlqFilter
from tests.tui.support import (
    HOSTILE_HTTP,
    build_app,
    dlq_status,
    fixed_snapshot,
    make_config,
    seed_app_rows,
    wait_for,
)
from tui.keymap import ActionsProvider
from tui.screens.alerts import AlertsScreen
from tui.screens.endpoints import EndpointsScreen
from tui.screens.help import HelpScreen, binding_rows
from tui.screens.overview import OverviewScreen
from tui.screens.triage import DeadLettersScreen
from tui.widgets.confirm_modal import ConfirmModal
from tui.widgets.payload_view import PayloadView


async def palette_names(app) -> set[str]:  # type: ignore[no-untyped-def]
    provider = ActionsProvider(app.screen)
    return {hit.text for hit in [h async for h in provider.discover()] if isinstance(hit, DiscoveryHit)}


def footer_keys(app) -> set[str]:  # type: ignore[no-untyped-def]
    app.screen.query_one(Footer)
    return {b.binding.id for b in app.screen.active_bindings.values() if b.binding.show and b.binding.id}


async def test_read_only_hides_mutating_actions_and_core_refuses(db_dsn: str) -> None:
    await seed_app_rows(db_dsn, dlq=3)
    app, monitor, db = build_app(db_dsn, read_only=True)
    try:
        async with app.run_test(size=(120, 30)) as pilot:
            await pilot.press("3")
            screen = app.screen
            assert isinstance(screen, DeadLettersScreen)
            await wait_for(pilot, lambda: screen.table.row_count == 3, what="page")
            ids = {b.binding.id for b in screen.active_bindings.values()}
            assert not ids & {"dlq.retry", "dlq.abandon", "dlq.bulk_retry", "dlq.resolve", "dlq.reopen"}
            assert "dlq.search" in ids
            assert "dlq.retry" not in footer_keys(app)
            assert not {"Retry", "Abandon", "Retry all"} & await palette_names(app)
            assert "Search" in await palette_names(app)
            assert "dlq.retry" not in {ident for _, _, ident in binding_rows(screen)}
            assert "READ-ONLY" in app.badges()
            await pilot.press("r", "a", "R")
            await pilot.pause(0.2)
            assert not isinstance(app.screen, ConfirmModal)
            assert (await dlq_status(db_dsn, 1))[0] == "pending"
            with pytest.raises(ReadOnlyError):
                await monitor.triage.kind("dlq").act("retry", [1])
            with pytest.raises(ReadOnlyError):
                await monitor.triage.kind("dlq").bulk(DlqFilter(), "retry")
    finally:
        await db.close()


async def test_hostile_text_renders_literally(db_dsn: str) -> None:
    await seed_app_rows(db_dsn, dlq=3, hostile_at=1)
    snapshot = fixed_snapshot()
    views = list(snapshot.endpoints)
    views[2] = replace(views[2], last_error=HOSTILE_HTTP)
    app, _, db = build_app(db_dsn, snapshot=replace(snapshot, endpoints=tuple(views)))
    try:
        async with app.run_test(size=(160, 40)) as pilot:
            await pilot.press("3")
            screen = app.screen
            assert isinstance(screen, DeadLettersScreen)
            await wait_for(pilot, lambda: screen.detail is not None, what="detail of row 1")
            cell = screen.table.cells_for("1")[-1]
            assert isinstance(cell, Text)
            assert cell.plain == "[bold red]x[/] red end" and not cell.spans
            error = screen.query_one(PayloadView).query_one(".detail-error", Static).render()
            assert "[bold red]x[/]" in str(error) and "\x1b" not in str(error)

            await pilot.press("2")
            table = app.screen.query_one(DataTable)
            last_error = table.get_row("pos-api-02")[-1]
            assert last_error.plain == "[bold red]x[/] red end".replace(" end", " NUL:\ufffd end")
            assert "\x00" not in last_error.plain and "\x1b" not in last_error.plain
    finally:
        await db.close()


async def test_keymap_remaps_by_binding_id_and_reports_unknown_ids(db_dsn: str) -> None:
    await seed_app_rows(db_dsn, dlq=3)
    config = make_config(keymap={"goto.alerts": "f5", "dlq.retry": "ctrl+t", "dlq.retyr": "x"})
    app, _, db = build_app(db_dsn, config=config)
    try:
        async with app.run_test(size=(120, 30)) as pilot:
            assert any("unknown binding id 'dlq.retyr'" in t and "dlq.retry" in t for _, t in app.notices)
            await pilot.press("5")
            assert not isinstance(app.screen, AlertsScreen)  # old key is gone
            await pilot.press("f5")
            assert isinstance(app.screen, AlertsScreen)
            await pilot.press("3")
            screen = app.screen
            assert isinstance(screen, DeadLettersScreen)
            await wait_for(pilot, lambda: screen.table.row_count == 3, what="page")
            await pilot.press("ctrl+t")
            await wait_for(pilot, lambda: "1" not in screen.table.keys(), what="retried by ctrl+t")
            assert (await dlq_status(db_dsn, 1))[0] == "retried"
    finally:
        await db.close()


async def test_help_lists_the_screen_bindings_and_palette_every_action(db_dsn: str) -> None:
    await seed_app_rows(db_dsn, dlq=2)
    app, _, db = build_app(db_dsn)
    try:
        async with app.run_test(size=(120, 30)) as pilot:
            await pilot.press("3")
            await pilot.press("question_mark")
            assert isinstance(app.screen, HelpScreen)
            table = app.screen.query_one(DataTable)
            ids = {table.get_row_at(i)[2].plain for i in range(table.row_count)}
            assert {
                "dlq.retry",
                "dlq.abandon",
                "dlq.bulk_retry",
                "dlq.select",
                "goto.alerts",
                "app.quit",
                "table.down",
            } <= ids
            await pilot.press("escape")
            assert isinstance(app.screen, DeadLettersScreen)
            names = await palette_names(app)
            assert {
                "Retry",
                "Abandon",
                "Retry all",
                "Abandon all",
                "Reopen",
                "Resolve",
                "Search",
                "Alerts",
                "Overview",
                "Quit",
                "Help",
            } <= names
    finally:
        await db.close()


async def test_snapshots_update_cells_in_place_and_hidden_screens_wait(db_dsn: str) -> None:
    await seed_app_rows(db_dsn)
    snapshot = fixed_snapshot()
    app, monitor, db = build_app(db_dsn, snapshot=snapshot)
    try:
        async with app.run_test(size=(160, 40)) as pilot:
            await pilot.press("2")
            screen = app.screen
            assert isinstance(screen, EndpointsScreen)
            table = screen.query_one(DataTable)
            rows_before = dict(table.rows)
            cleared: list[bool] = []
            original_clear = table.clear
            table.clear = lambda *a, **k: cleared.append(True) or original_clear(*a, **k)  # type: ignore[method-assign]
            views = list(snapshot.endpoints)
            views[0] = replace(views[0], last_latency_ms=999.0)
            newer = replace(snapshot, endpoints=tuple(views))
            monitor.publish(newer)
            await wait_for(
                pilot,
                lambda: table.get_cell("pos-api-00", "latency").plain == "999ms",
                what="latency cell updated",
            )
            assert not cleared and dict(table.rows).keys() == rows_before.keys()

            overview = next(s for s in app.get_screen_stack("overview") if isinstance(s, OverviewScreen))
            assert overview.applied is not newer  # hidden: skipped
            await pilot.press("1")
            await wait_for(pilot, lambda: overview.applied is newer, what="caught up on resume")
    finally:
        await db.close()


async def test_wall_mode_is_read_only_cycles_pauses_and_frames_criticals(db_dsn: str) -> None:
    await seed_app_rows(db_dsn)
    config = make_config(wall={"cycle_interval": 0.3, "screens": ("overview", "endpoints", "alerts")})
    app, _, db = build_app(db_dsn, config=config, wall=True, snapshot=fixed_snapshot(critical=True))
    try:
        async with app.run_test(size=(160, 48)) as pilot:
            assert app.read_only and app.theme == "opswatch-dark"
            assert not app.screen.query(Footer)
            assert app.screen.has_class("-wall") and app.screen.has_class("-critical")
            await wait_for(pilot, lambda: app.current_mode == "endpoints", what="cycled to endpoints")
            await pilot.press("space")
            assert app.paused and "⏸ PAUSED" in app.badges()
            mode = app.current_mode
            await asyncio.sleep(0.7)
            assert app.current_mode == mode
            await pilot.press("space")
            await wait_for(pilot, lambda: app.current_mode != mode, what="cycling resumed")
    finally:
        await db.close()


async def test_quit_asks_first_while_a_bulk_action_runs(db_dsn: str) -> None:
    app, _, db = build_app(db_dsn, snapshot=fixed_snapshot())
    try:
        async with app.run_test(size=(120, 30)) as pilot:
            cancel = asyncio.Event()
            app.bulk_started(cancel)
            await pilot.press("q")
            await wait_for(pilot, lambda: isinstance(app.screen, ConfirmModal), what="quit confirmation")
            await pilot.press("enter")  # Cancel is the default
            await wait_for(pilot, lambda: not isinstance(app.screen, ConfirmModal), what="dismissed")
            assert app.is_running and not cancel.is_set()
            await pilot.press("q")
            await wait_for(pilot, lambda: isinstance(app.screen, ConfirmModal), what="asked again")
            await pilot.press("tab", "enter")
            await wait_for(pilot, lambda: cancel.is_set(), what="bulk cancelled on quit")
    finally:
        await db.close()


async def test_held_alerts_are_listed_after_live_ones_and_not_counted(db_dsn: str) -> None:
    """An alert held back by its cause, or silenced, is shown but is not one more critical."""
    await seed_app_rows(db_dsn)
    snapshot = fixed_snapshot(critical=True)
    held_back = replace(snapshot.alerts[0], rule="error-rate", suppressed_by="api-down")
    silenced = replace(snapshot.alerts[0], scope="pos-api-04", silenced=True)
    app, _, db = build_app(db_dsn, snapshot=replace(snapshot, alerts=(held_back, silenced, *snapshot.alerts)))
    try:
        async with app.run_test(size=(160, 40)) as pilot:
            screen = app.screen
            assert isinstance(screen, OverviewScreen)
            body = screen.query_one("#panel-alerts .tile-body", Static)
            await wait_for(pilot, lambda: "held" in str(body.render()), what="alerts panel")
            lines = str(body.render()).splitlines()
            assert lines[0] == "✖ 1 crit  ▲ 1 warn  … 1 pending  ⏸ 2 held"
            assert lines[1].startswith("✖ CRITICAL api-down pos-api-02")
            assert lines[2].startswith("▲ WARNING event-failures")  # live ones first, held ones last
            assert lines[3] == "+3 more (5 Alerts)"  # the body has four lines: nothing below the fold
            assert len(lines) == body.size.height == 4
    finally:
        await db.close()
