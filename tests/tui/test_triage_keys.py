"""Keyboard triage against the real core and PostgreSQL: r, a, R with the typed-count modal."""

from __future__ import annotations

import asyncpg

from tests.tui.support import build_app, count_status, dlq_status, make_config, seed_app_rows, wait_for
from tui.screens.triage import DeadLettersScreen
from tui.widgets.confirm_modal import ConfirmModal
from tui.widgets.progress_modal import ProgressModal
from tui.widgets.prompt_modal import PromptModal


async def open_dlq(pilot) -> DeadLettersScreen:  # type: ignore[no-untyped-def]
    await pilot.press("3")
    screen = pilot.app.screen
    assert isinstance(screen, DeadLettersScreen)
    await wait_for(pilot, lambda: screen.page is not None and screen.table.row_count > 0, what="first page")
    return screen


async def test_r_retries_the_row_under_the_cursor(db_dsn: str) -> None:
    await seed_app_rows(db_dsn, dlq=12)
    app, _, db = build_app(db_dsn)
    try:
        async with app.run_test(size=(120, 30)) as pilot:
            screen = await open_dlq(pilot)
            assert screen.table.keys()[:3] == ["1", "2", "3"]  # newest first
            await pilot.press("j")
            assert screen.current_id() == 2
            loads = screen.page_loads
            await pilot.press("r")
            await wait_for(
                pilot,
                lambda: screen.page_loads > loads and "2" not in screen.table.keys(),
                what="page reload without row 2",
            )
            assert await dlq_status(db_dsn, 2) == ("retried", 3)
            assert screen.page is not None and screen.page.total == 11
            assert screen.current_id() == 3  # cursor stays at the same place in the list
            assert any(text.startswith("Retried #2 (WhatsApp API 429") for _, text in app.notices)
    finally:
        await db.close()


async def test_a_abandons_with_a_reason(db_dsn: str) -> None:
    await seed_app_rows(db_dsn, dlq=5)
    app, _, db = build_app(db_dsn)
    try:
        async with app.run_test(size=(120, 30)) as pilot:
            screen = await open_dlq(pilot)
            await pilot.press("a")
            await wait_for(pilot, lambda: isinstance(app.screen, PromptModal), what="reason modal")
            await pilot.press("enter")  # empty reason is refused, the modal stays
            assert isinstance(app.screen, PromptModal)
            await pilot.press(*"duplicate order", "enter")
            await wait_for(pilot, lambda: "1" not in screen.table.keys(), what="row 1 gone from pending")
            assert (await dlq_status(db_dsn, 1))[0] == "abandoned"
        conn = await asyncpg.connect(db_dsn)
        try:
            reason = await conn.fetchval(
                "SELECT reason FROM opswatch.audit_log WHERE action = 'dlq.abandon' AND 1 = ANY(target_ids) "
                "ORDER BY id DESC LIMIT 1"
            )
        finally:
            await conn.close()
        assert reason == "duplicate order"
    finally:
        await db.close()


async def test_bulk_retry_by_filter_asks_for_the_typed_count(db_dsn: str) -> None:
    await seed_app_rows(db_dsn, dlq=20)
    config = make_config()
    config = config.model_copy(update={"triage": config.triage.model_copy(update={"confirm_typed_over": 5})})
    app, _, db = build_app(db_dsn, config=config)
    try:
        async with app.run_test(size=(120, 30)) as pilot:
            screen = await open_dlq(pilot)
            await pilot.press("b")
            await wait_for(pilot, lambda: isinstance(app.screen, PromptModal), what="business prompt")
            await pilot.press("1", "enter")
            await wait_for(
                pilot, lambda: screen.page is not None and screen.page.total == 10, what="filtered"
            )

            await pilot.press("R")
            await wait_for(pilot, lambda: isinstance(app.screen, ConfirmModal), what="confirm modal")
            modal = app.screen
            assert isinstance(modal, ConfirmModal) and modal.typed_count == 10
            assert app.screen.focused is not None and app.screen.focused.id == "cancel"  # default: Cancel
            await pilot.press("enter")
            await wait_for(pilot, lambda: not isinstance(app.screen, ConfirmModal), what="cancelled")
            assert await count_status(db_dsn, "retried") == 0

            await pilot.press("R")
            await wait_for(pilot, lambda: isinstance(app.screen, ConfirmModal), what="confirm modal again")
            confirm = app.screen.query_one("#confirm")
            assert confirm.disabled
            app.screen.query_one("#typed-count").focus()
            await pilot.press("9", "enter")
            assert isinstance(app.screen, ConfirmModal) and confirm.disabled  # wrong count: still refused
            await pilot.press("backspace", "1", "0")
            assert not confirm.disabled
            await pilot.press("enter")
            await wait_for(
                pilot, lambda: not isinstance(app.screen, ConfirmModal | ProgressModal), what="bulk finished"
            )
            await wait_for(
                pilot, lambda: screen.page is not None and screen.page.total == 0, what="page empty"
            )
            assert await count_status(db_dsn, "retried") == 10
            assert await count_status(db_dsn, "pending") == 10
            assert any(text.startswith("Retried 10: #") for _, text in app.notices)
    finally:
        await db.close()


async def test_full_view_of_a_huge_payload_keeps_the_ui_responsive(db_dsn: str) -> None:
    """`v` on an 8 MB payload: formatting runs off the event loop and the view stays bounded."""
    import asyncio
    import json
    import time

    from textual.widgets import TextArea

    from tui.widgets.text_view import FULL_VIEW_LIMIT, TextViewModal

    await seed_app_rows(db_dsn, dlq=3, hostile_at=1)
    huge = json.dumps({"items": [{"sku": i, "note": "\x1b[31m[red]x[/red]" * 4} for i in range(120_000)]})
    conn = await asyncpg.connect(db_dsn)
    try:
        await conn.execute("UPDATE dead_letter_messages SET message_data = $1::jsonb WHERE id = 1", huge)
    finally:
        await conn.close()
    app, _, db = build_app(db_dsn)
    try:
        async with app.run_test(size=(120, 30)) as pilot:
            screen = await open_dlq(pilot)
            assert screen.current_id() == 1
            gaps: list[float] = []
            stop = asyncio.Event()

            async def ticker() -> None:  # measures how long the event loop is stalled
                last = time.perf_counter()
                while not stop.is_set():
                    await asyncio.sleep(0.01)
                    now = time.perf_counter()
                    gaps.append(now - last)
                    last = now

            task = asyncio.ensure_future(ticker())
            await pilot.press("v")
            await wait_for(pilot, lambda: isinstance(app.screen, TextViewModal), what="full view", within=30)
            stop.set()
            await task
            area = app.screen.query_one("#text-view-content", TextArea)
            assert area.text.startswith("Error\n") and "Payload" in area.text
            assert "\x1b" not in area.text and len(area.text) <= FULL_VIEW_LIMIT + 1
            assert max(gaps) < 1.0, f"event loop stalled {max(gaps):.2f} s"
    finally:
        await db.close()
