"""The console names an app schema that differs from the config, and keeps working on it."""

from __future__ import annotations

from tests.test_schema_doctor import _variant
from tests.tui.support import build_app, wait_for
from tui.screens.triage import DeadLettersScreen


async def test_console_names_a_degraded_app_schema_and_lists_channel_ids(fresh_db_dsn: str) -> None:
    ids = await _variant(fresh_db_dsn)
    app, _, db = build_app(fresh_db_dsn)
    try:
        async with app.run_test(size=(120, 30)) as pilot:
            await wait_for(pilot, lambda: any("app schema" in text for _, text in app.notices), what="toast")
            [(severity, text)] = [n for n in app.notices if "app schema" in n[1]]
            assert severity == "warning"
            assert text.startswith("app schema degraded: database.columns.social_channels.")
            await pilot.press("3")
            screen = app.screen
            assert isinstance(screen, DeadLettersScreen)
            await wait_for(
                pilot, lambda: screen.page is not None and screen.table.row_count == 3, what="3 rows"
            )
            assert screen.page is not None
            assert {r.channel_name for r in screen.page.rows} == {f"#{ids['c1']}", f"#{ids['c3']}"}
    finally:
        await db.close()
