"""Overview screenshots at 80x24, 120x40 and 200x60, and the layout rule behind them: tiles
reflow and shrink so that nothing is cut.

Deterministic: a published fixed Snapshot, a frozen clock, UTC display, an explicit theme.
Update with: pytest tests/tui/test_overview_snapshots.py --snapshot-update (then look at the SVGs).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from core.snapshot import DbHealthView
from tests.tui.support import NOW, build_app, fixed_snapshot, wait_for
from tui.screens.overview import MIN_TILE_WIDTH, fit_grid
from tui.widgets.endpoint_tile import EndpointTile
from tui.widgets.sparkline_tile import SparkTile

SIZES = [(80, 24), (120, 40), (200, 60)]


def tiles_shown(app: Any) -> bool:
    return any(t.shown for t in app.screen.query(EndpointTile))


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_overview(snap_compare: Any, db_dsn: str, size: tuple[int, int]) -> None:
    app, _, _ = build_app(db_dsn, own_db=True, snapshot=fixed_snapshot(critical=True))

    async def ready(pilot: Any) -> None:
        await wait_for(pilot, lambda: tiles_shown(app), what="tiles")
        await pilot.pause()  # the last refresh drawn (waits for the idle app, not a fixed time)

    assert snap_compare(app, terminal_size=size, run_before=ready)


def test_overview_database_down_80x24(snap_compare: Any, db_dsn: str) -> None:
    down = DbHealthView(False, None, "connection refused", NOW.replace(minute=0, second=2), NOW)
    snapshot = replace(fixed_snapshot(), alerts=(), db=down, db_stats=None)
    app, _, _ = build_app(db_dsn, own_db=True, snapshot=snapshot)

    async def ready(pilot: Any) -> None:
        await wait_for(pilot, lambda: tiles_shown(app), what="tiles")
        await pilot.pause()  # the last refresh drawn (waits for the idle app, not a fixed time)

    assert snap_compare(app, terminal_size=(80, 24), run_before=ready)


@pytest.mark.parametrize(
    ("size", "endpoints"), [((80, 24), 5), ((80, 24), 6), ((120, 40), 12), ((100, 30), 8)]
)
async def test_nothing_is_cut(db_dsn: str, size: tuple[int, int], endpoints: int) -> None:
    """Every endpoint tile and every panel is whole on screen, with no scrolling needed."""
    app, _, db = build_app(db_dsn, snapshot=fixed_snapshot(critical=True, endpoints=endpoints))
    try:
        async with app.run_test(size=size) as pilot:
            await wait_for(pilot, lambda: tiles_shown(app), what="tiles")
            scroll = app.screen.query_one("#overview-endpoints")
            tiles = list(app.screen.query(EndpointTile))
            assert len(tiles) == endpoints

            def whole() -> bool:
                return scroll.max_scroll_y == 0 and all(
                    scroll.region.contains_region(t.region) and t.size.height >= 1 for t in tiles
                )

            await wait_for(pilot, whole, what="all tiles whole on screen")
            screen = app.screen.region
            for panel in app.screen.query(SparkTile):
                assert screen.contains_region(panel.region), panel.id
                body = panel.query_one(".tile-body")
                assert str(body.render()).count("\n") < body.size.height, panel.id  # no line below the fold
    finally:
        await db.close()


def test_fit_grid() -> None:
    assert fit_grid(6, 118, 31, 3) == (3, 7)  # roomy: comfortable columns, full tiles
    assert fit_grid(6, 78, 10, 2) == (2, 3)  # 80x24: three rows of one-line tiles
    assert fit_grid(5, 78, 12, 2) == (2, 4)
    assert fit_grid(12, 118, 31, 3) == (3, 7)  # 4 rows of 7
    assert fit_grid(12, 118, 20, 3) == (3, 5)
    assert fit_grid(50, 78, 10, 2) == (2, None)  # too many: keep the columns and scroll
    cols, height = fit_grid(8, 98, 12, 2)  # more columns rather than a scroll bar
    assert (cols, height) == (3, 4) and cols * MIN_TILE_WIDTH + cols - 1 <= 98
