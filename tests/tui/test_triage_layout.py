"""Triage screens adapt to the terminal (issue 12): at 80x24 the list gets the height and the
detail opens on Enter; the error column is readable at every size and never scrolled off."""

from __future__ import annotations

import pytest

from tests.tui.support import build_app, fixed_snapshot, seed_app_rows, wait_for
from tui.screens.triage import TriageScreen
from tui.widgets.payload_view import PayloadView

READABLE = 24


async def open_screen(pilot, key: str) -> TriageScreen:  # type: ignore[no-untyped-def]
    await pilot.press(key)
    screen = pilot.app.screen
    assert isinstance(screen, TriageScreen)
    await wait_for(pilot, lambda: screen.page is not None and screen.table.row_count > 0, what="first page")
    await pilot.pause(0.05)
    return screen


def visible_widths(screen: TriageScreen) -> dict[str, int]:
    """Cells of each column that are on screen without scrolling sideways."""
    table = screen.table
    room = table.scrollable_content_region.width
    out: dict[str, int] = {}
    x = 0
    for column in table.ordered_columns:
        width = column.get_render_width(table)
        out[str(column.key.value)] = max(0, min(width, room - x))
        x += width
    return out


@pytest.mark.parametrize("key", ["3", "4"], ids=["dlq", "events"])
async def test_80x24_gives_the_list_the_height_and_enter_opens_the_detail(db_dsn: str, key: str) -> None:
    await seed_app_rows(db_dsn, dlq=30, events=30)
    app, _, db = build_app(db_dsn, snapshot=fixed_snapshot())
    try:
        async with app.run_test(size=(80, 24)) as pilot:
            screen = await open_screen(pilot, key)
            detail = screen.query_one("#triage-detail")
            assert screen.table.size.height - 1 >= 10  # rows below the header
            assert not detail.display
            await pilot.press("enter")
            await wait_for(pilot, lambda: detail.display and detail.size.height >= 8, what="detail opened")
            await wait_for(pilot, lambda: screen.detail is not None, what="detail loaded")
            assert screen.table.size.height - 1 >= 5
            await pilot.press("j")
            await wait_for(
                pilot,
                lambda: screen.detail is not None and screen.detail.row.id == screen.current_id(),
                what="detail follows the cursor",
            )
            await pilot.press("escape")
            await wait_for(pilot, lambda: not detail.display, what="detail closed")
            assert screen.table.size.height - 1 >= 10
    finally:
        await db.close()


@pytest.mark.parametrize("size", [(80, 24), (120, 40), (160, 45), (200, 60)], ids=lambda s: f"{s[0]}x{s[1]}")
@pytest.mark.parametrize("key", ["3", "4"], ids=["dlq", "events"])
async def test_the_error_column_is_readable_and_the_widest(
    db_dsn: str, key: str, size: tuple[int, int]
) -> None:
    await seed_app_rows(db_dsn, dlq=30, events=30)
    app, _, db = build_app(db_dsn, snapshot=fixed_snapshot())
    try:
        async with app.run_test(size=size) as pilot:
            screen = await open_screen(pilot, key)
            widths = visible_widths(screen)
            assert sum(c.get_render_width(screen.table) for c in screen.table.ordered_columns) <= (
                screen.table.scrollable_content_region.width
            ), "no column is scrolled off to the side"
            assert widths["error"] >= READABLE, widths
            assert widths["error"] == max(widths.values()), widths
            if size[0] >= 120:
                assert widths["error"] >= 40, widths
            if size[1] >= 34:  # tall enough: list and detail both on screen
                assert screen.query_one(PayloadView).size.height >= 8
    finally:
        await db.close()
