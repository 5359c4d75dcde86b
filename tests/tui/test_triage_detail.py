"""Detail pane data (issue 12): last action with who and when, rows of the same message, and
the business filter by name."""

from __future__ import annotations

import asyncpg
from textual.widgets import Static

from tests.tui.support import build_app, seed_app_rows, wait_for
from tests.tui.test_triage_trust import detail_matches_cursor, header_text, open_dlq
from tui.widgets.prompt_modal import PromptModal


async def reset_audit_and_repeat_message(dsn: str) -> None:
    """Rows 8 and 9 are new failures of row 2's message."""
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute("TRUNCATE opswatch.audit_log")
        await conn.execute(
            "INSERT INTO dead_letter_messages (message_id, business_id, channel_id, error_message, "
            "message_data, created_at) SELECT message_id, business_id, channel_id, 'again', '{}', "
            "created_at - interval '1 hour' * g FROM dead_letter_messages, generate_series(1, 2) g "
            "WHERE id = 2"
        )
    finally:
        await conn.close()


async def test_detail_shows_the_last_action_and_the_other_failures_of_the_message(db_dsn: str) -> None:
    await seed_app_rows(db_dsn, dlq=7)
    await reset_audit_and_repeat_message(db_dsn)
    app, _, db = build_app(db_dsn)
    try:
        async with app.run_test(size=(160, 45)) as pilot:
            screen = await open_dlq(pilot)
            await pilot.press("j")
            await wait_for(
                pilot, lambda: detail_matches_cursor(screen) and screen.current_id() == 2, what="#2"
            )
            assert "failed 3 times: #2, #8, #9" in header_text(screen)
            await pilot.press("s")  # status: retried
            await wait_for(pilot, lambda: screen.filter.status == ("retried",), what="status filter")
            await pilot.press("s", "s", "s")  # ... abandoned, any
            await wait_for(pilot, lambda: screen.filter.status == (), what="any status")
            await wait_for(
                pilot, lambda: screen.current_id() == 1 and detail_matches_cursor(screen), what="#1"
            )
            loads = screen.page_loads
            await pilot.press("r")
            await wait_for(pilot, lambda: screen.page_loads > loads, what="reload")
            await wait_for(
                pilot,
                lambda: detail_matches_cursor(screen) and "retried" in header_text(screen),
                what="retried",
            )
            text = header_text(screen)
            assert "retried 2025-03-14" not in text  # the audit time (now), not a made-up field
            conn = await asyncpg.connect(db_dsn)
            try:
                actor = await conn.fetchval("SELECT actor FROM opswatch.audit_log WHERE action = 'dlq.retry'")
            finally:
                await conn.close()
            assert f" by {actor}" in text and "resolved" not in text
            assert "failed once" in text
    finally:
        await db.close()


async def test_business_filter_takes_a_name(db_dsn: str) -> None:
    await seed_app_rows(db_dsn, dlq=6)
    app, _, db = build_app(db_dsn)
    try:
        async with app.run_test(size=(120, 30)) as pilot:
            screen = await open_dlq(pilot)
            await pilot.press("b")
            await wait_for(pilot, lambda: isinstance(app.screen, PromptModal), what="business prompt")
            await pilot.press(*"bobs bikes", "enter")
            await wait_for(pilot, lambda: screen.page is not None and screen.page.total == 3, what="filtered")
            assert screen.filter.business_id == 2
            summary = str(screen.query_one("#filter-summary", Static).visual)
            assert "business:Bobs Bikes (#2)" in summary
            await pilot.press("b")
            await wait_for(pilot, lambda: isinstance(app.screen, PromptModal), what="business prompt")
            await pilot.press("ctrl+u", *"nobody", "enter")
            await wait_for(pilot, lambda: "no business named 'nobody'" in app.notices[-1][1], what="warning")
            assert screen.filter.business_id == 2
    finally:
        await db.close()
