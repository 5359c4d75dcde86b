"""Issue 12 on the triage screens: the detail is the cursor row's, actions name their rows,
`x` clears the search box, confirmations take y/n and say "cancelled"."""

from __future__ import annotations

import asyncpg
from textual.widgets import Input, Static

from tests.tui.support import build_app, count_status, dlq_status, seed_app_rows, wait_for
from tui.screens.triage import DeadLettersScreen
from tui.widgets.confirm_modal import ConfirmModal
from tui.widgets.payload_view import PayloadView
from tui.widgets.prompt_modal import PromptModal
from tui.widgets.silence_modal import SilenceModal


async def open_dlq(pilot) -> DeadLettersScreen:  # type: ignore[no-untyped-def]
    await pilot.press("3")
    screen = pilot.app.screen
    assert isinstance(screen, DeadLettersScreen)
    await wait_for(pilot, lambda: screen.page is not None and screen.table.row_count > 0, what="first page")
    await wait_for(pilot, lambda: screen.detail is not None, what="first detail")
    return screen


def header_text(screen: DeadLettersScreen) -> str:
    static = screen.query_one(PayloadView).query_one(".detail-header", Static)
    return str(static.visual)


def detail_matches_cursor(screen: DeadLettersScreen) -> bool:
    row_id = screen.current_id()
    return (
        screen.detail is not None
        and screen.detail.row.id == row_id
        and header_text(screen).startswith(f"#{row_id} ")
    )


async def settle(pilot, screen: DeadLettersScreen, loads: int) -> None:  # type: ignore[no-untyped-def]
    """Wait for the reload after an action and for the detail worker to finish."""
    await wait_for(pilot, lambda: screen.page_loads > loads, what="page reload")
    await wait_for(pilot, lambda: not any(w.is_running for w in screen.workers), what="workers idle")


async def test_detail_follows_the_cursor_after_abandon(db_dsn: str) -> None:
    await seed_app_rows(db_dsn, dlq=5)
    app, _, db = build_app(db_dsn)
    try:
        async with app.run_test(size=(120, 30)) as pilot:
            screen = await open_dlq(pilot)
            assert screen.current_id() == 1 and header_text(screen).startswith("#1 ")
            loads = screen.page_loads
            await pilot.press("a")
            await wait_for(pilot, lambda: isinstance(app.screen, PromptModal), what="reason modal")
            title = str(app.screen.query_one("#dialog-title", Static).visual)
            assert "#1" in title
            await pilot.press(*"dup", "enter")
            await settle(pilot, screen, loads)
            assert (await dlq_status(db_dsn, 1))[0] == "abandoned"
            assert screen.current_id() == 2
            await wait_for(pilot, lambda: detail_matches_cursor(screen), what="detail of the cursor row #2")
            assert "pending" in header_text(screen)
            toast = app.notices[-1][1]
            assert toast.startswith("Abandoned #1 (") and "WhatsApp API 429" in toast
            assert "applied" not in toast
    finally:
        await db.close()


async def test_detail_follows_the_cursor_after_a_reload_that_keeps_the_cursor(db_dsn: str) -> None:
    """Another operator retries the row under the cursor: the periodic reload keeps the cursor
    position, and the detail must follow the row now under it."""
    await seed_app_rows(db_dsn, dlq=5)
    app, monitor, db = build_app(db_dsn)
    try:
        async with app.run_test(size=(120, 30)) as pilot:
            screen = await open_dlq(pilot)
            await pilot.press("j")
            await wait_for(
                pilot, lambda: detail_matches_cursor(screen) and screen.current_id() == 2, what="#2"
            )
            loads = screen.page_loads  # before the change: the monitor's own poll may see it first
            conn = await asyncpg.connect(db_dsn)
            try:
                await conn.execute("UPDATE dead_letter_messages SET status = 'retried' WHERE id = 2")
            finally:
                await conn.close()
            await monitor.refresh_now()
            await settle(pilot, screen, loads)
            assert "2" not in screen.table.keys() and screen.current_id() == 3
            await wait_for(pilot, lambda: detail_matches_cursor(screen), what="detail of the cursor row #3")
    finally:
        await db.close()


async def test_bulk_retry_of_selected_rows_names_them_and_shows_the_cursor_row(db_dsn: str) -> None:
    await seed_app_rows(db_dsn, dlq=6)
    app, _, db = build_app(db_dsn)
    try:
        async with app.run_test(size=(120, 30)) as pilot:
            screen = await open_dlq(pilot)
            await pilot.press("space", "j", "j", "space", "k")
            await wait_for(
                pilot, lambda: detail_matches_cursor(screen) and screen.current_id() == 2, what="#2"
            )
            await pilot.press("R")
            await wait_for(pilot, lambda: isinstance(app.screen, ConfirmModal), what="confirm modal")
            lines = " ".join(str(s.visual) for s in app.screen.query(".dialog-line").results(Static))
            assert "#1" in lines and "#3" in lines
            loads = screen.page_loads
            await pilot.press("y")
            await settle(pilot, screen, loads)
            assert await count_status(db_dsn, "retried") == 2
            assert screen.current_id() == 2
            await wait_for(pilot, lambda: detail_matches_cursor(screen), what="detail of #2")
            assert any(text.startswith("Retried 2: #1, #3") for _, text in app.notices)
    finally:
        await db.close()


async def test_skipped_rows_are_named(db_dsn: str) -> None:
    await seed_app_rows(db_dsn, dlq=3)
    app, _, db = build_app(db_dsn)
    try:
        async with app.run_test(size=(120, 30)) as pilot:
            screen = await open_dlq(pilot)
            await pilot.press("s", "s", "s", "s")  # any status: #1 stays on the page whatever reloads
            await wait_for(pilot, lambda: screen.filter.status == () and screen.current_id() == 1, what="any")
            conn = await asyncpg.connect(db_dsn)
            try:  # someone else abandons #1 while it is still on our page
                await conn.execute("UPDATE dead_letter_messages SET status = 'abandoned' WHERE id = 1")
            finally:
                await conn.close()
            loads = screen.page_loads
            await pilot.press("r")
            await settle(pilot, screen, loads)
            severity, toast = app.notices[-1]
            assert severity == "warning"
            assert toast.startswith("Retry skipped #1 (") and "abandoned" in toast
            await wait_for(pilot, lambda: detail_matches_cursor(screen), what="detail of the cursor row")
    finally:
        await db.close()


async def test_x_clears_the_search_box_too(db_dsn: str) -> None:
    await seed_app_rows(db_dsn, dlq=12)
    app, _, db = build_app(db_dsn)
    try:
        async with app.run_test(size=(120, 30)) as pilot:
            screen = await open_dlq(pilot)
            await pilot.press("slash", *"attempt 1", "enter")
            await wait_for(
                pilot, lambda: screen.page is not None and screen.page.total == 4, what="search applied"
            )  # attempt 1, 10, 11, 12
            await pilot.press("x")
            await wait_for(
                pilot, lambda: screen.page is not None and screen.page.total == 12, what="filter cleared"
            )
            assert screen.filter.text is None
            assert screen.query_one("#filter-text", Input).value == ""
    finally:
        await db.close()


async def test_confirmation_takes_y_and_n_and_says_cancelled(db_dsn: str) -> None:
    await seed_app_rows(db_dsn, dlq=4)
    app, _, db = build_app(db_dsn)
    try:
        async with app.run_test(size=(120, 30)) as pilot:
            screen = await open_dlq(pilot)
            await pilot.press("space")
            for key in ("n", "escape", "enter"):  # Enter: Cancel stays the safe default
                before = len(app.notices)
                await pilot.press("R")
                await wait_for(pilot, lambda: isinstance(app.screen, ConfirmModal), what="confirm modal")
                await pilot.press(key)
                await wait_for(pilot, lambda: app.screen is screen, what=f"closed by {key}")
                await wait_for(pilot, lambda b=before: len(app.notices) > b, what="a toast")
                assert "cancelled" in app.notices[-1][1], key
                assert await count_status(db_dsn, "retried") == 0
            await pilot.press("R")
            await wait_for(pilot, lambda: isinstance(app.screen, ConfirmModal), what="confirm modal")
            await pilot.press("y")
            await wait_for(pilot, lambda: app.screen is screen, what="closed by y")
            await wait_for(pilot, lambda: app.notices[-1][1].startswith("Retried #1"), what="retried toast")
            assert await dlq_status(db_dsn, 1) == ("retried", 2)
    finally:
        await db.close()


async def test_y_does_not_bypass_the_typed_count(db_dsn: str) -> None:
    await seed_app_rows(db_dsn, dlq=4)
    app, _, db = build_app(db_dsn)
    try:
        async with app.run_test(size=(120, 30)) as pilot:
            await open_dlq(pilot)
            modal = ConfirmModal("Retry 4?", [], typed_count=4)
            app.push_screen(modal)
            await wait_for(pilot, lambda: app.screen is modal, what="modal")
            await pilot.press("y")
            assert app.screen is modal
            await pilot.press("n")
            await wait_for(pilot, lambda: app.screen is not modal, what="cancelled by n")
    finally:
        await db.close()


async def test_a_cancelled_silence_says_so(db_dsn: str) -> None:
    await seed_app_rows(db_dsn, dlq=1)
    app, _, db = build_app(db_dsn)
    try:
        async with app.run_test(size=(120, 30)) as pilot:
            await open_dlq(pilot)
            results: list[object] = []
            app.push_screen(SilenceModal("api-down pos-api-02"), callback=results.append)
            await wait_for(pilot, lambda: isinstance(app.screen, SilenceModal), what="silence modal")
            await pilot.press("escape")
            await wait_for(pilot, lambda: results == [None], what="dismissed")
            assert "cancelled" in app.notices[-1][1] and "silence" in app.notices[-1][1].lower()
    finally:
        await db.close()


async def test_detail_follows_a_change_of_the_cursor_row_in_place(db_dsn: str) -> None:
    """Any status: another operator retries the cursor row, which stays under the cursor."""
    await seed_app_rows(db_dsn, dlq=3)
    app, monitor, db = build_app(db_dsn)
    try:
        async with app.run_test(size=(120, 30)) as pilot:
            screen = await open_dlq(pilot)
            await pilot.press("s", "s", "s", "s")
            await wait_for(
                pilot, lambda: screen.filter.status == () and detail_matches_cursor(screen), what="any"
            )
            loads = screen.page_loads
            conn = await asyncpg.connect(db_dsn)
            try:
                await conn.execute("UPDATE dead_letter_messages SET status = 'retried' WHERE id = 1")
            finally:
                await conn.close()
            await monitor.refresh_now()
            await settle(pilot, screen, loads)
            assert screen.current_id() == 1
            await wait_for(
                pilot,
                lambda: detail_matches_cursor(screen) and "retried" in header_text(screen),
                what="detail shows the new status",
            )
    finally:
        await db.close()
