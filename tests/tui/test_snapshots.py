"""Screenshots (pytest-textual-snapshot) of overview, dead letters and wall mode at two sizes.

Deterministic: a published fixed Snapshot, fixed DLQ rows with fixed created_at, a frozen
clock, UTC display, an explicit theme and no focused text input (no cursor blink).
Update with: pytest tests/tui/test_snapshots.py --snapshot-update
"""

from __future__ import annotations

from typing import Any

import pytest
import pytest_asyncio

from tests.tui.support import build_app, fixed_snapshot, seed_app_rows, wait_for
from tui.screens.triage import DeadLettersScreen
from tui.widgets.endpoint_tile import EndpointTile

SIZES = [(80, 24), (160, 48)]


@pytest_asyncio.fixture(scope="module")
async def seeded(db_dsn: str) -> str:
    await seed_app_rows(db_dsn, dlq=30, events=10, hostile_at=3)
    return db_dsn


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_overview(snap_compare: Any, seeded: str, size: tuple[int, int]) -> None:
    app, _, _ = build_app(seeded, own_db=True, snapshot=fixed_snapshot(critical=True))

    async def ready(pilot: Any) -> None:
        await wait_for(pilot, lambda: any(t.shown for t in app.screen.query(EndpointTile)), what="tiles")
        await pilot.pause(0.1)

    assert snap_compare(app, terminal_size=size, run_before=ready)


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_dead_letters(snap_compare: Any, seeded: str, size: tuple[int, int]) -> None:
    app, _, _ = build_app(seeded, own_db=True, snapshot=fixed_snapshot())

    async def ready(pilot: Any) -> None:
        await pilot.press("3", "j", "j")
        screen = app.screen
        assert isinstance(screen, DeadLettersScreen)
        await wait_for(pilot, lambda: screen.detail is not None and screen.detail.row.id == 3, what="detail")
        await pilot.pause(0.1)

    assert snap_compare(app, terminal_size=size, run_before=ready)


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_wall(snap_compare: Any, seeded: str, size: tuple[int, int]) -> None:
    app, _, _ = build_app(seeded, wall=True, own_db=True, snapshot=fixed_snapshot(critical=True))

    async def ready(pilot: Any) -> None:
        await wait_for(pilot, lambda: any(t.shown for t in app.screen.query(EndpointTile)), what="tiles")
        await pilot.pause(0.1)

    assert snap_compare(app, terminal_size=size, run_before=ready)
