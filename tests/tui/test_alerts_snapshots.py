"""Screenshots of the Alerts screen and of every page the wall cycles through, at 80x24, 120x40
and 200x60.

Deterministic: a published fixed Snapshot, alert history / outbox / silence rows with fixed
times, a frozen clock, UTC display and an explicit theme.
Update with: pytest tests/tui/test_alerts_snapshots.py --snapshot-update (then look at the SVGs).
"""

from __future__ import annotations

import json
from typing import Any

import pytest
import pytest_asyncio
from textual.widgets import DataTable

from tests.tui.support import build_app, connected, fixed_snapshot, make_config, seed_app_rows, wait_for
from tui.screens.alerts import AlertsScreen
from tui.widgets.endpoint_tile import EndpointTile

SIZES = [(80, 24), (120, 40), (200, 60)]
WALL_PAGES = make_config().ui.wall.screens


@pytest_asyncio.fixture(scope="module")
async def alert_rows(db_dsn: str) -> str:
    await seed_app_rows(db_dsn, dlq=5, events=3)
    async with connected(db_dsn) as conn:
        await conn.execute(
            "TRUNCATE opswatch.alert_history, opswatch.notification_outbox, opswatch.silences "
            "RESTART IDENTITY"
        )
        changes = [("ok", "pending"), ("pending", "firing"), ("firing", "resolved")]
        await conn.executemany(
            "INSERT INTO opswatch.alert_history (at, rule, scope, from_state, to_state, severity) VALUES "
            "(TIMESTAMPTZ '2025-03-14 13:00:00+00' + make_interval(mins => $1), $2, $3, $4, $5, $6)",
            [
                (
                    i,
                    ("api-down", "error-rate", "event-failures")[i % 3],
                    f"pos-api-{i % 4:02d}" if i % 3 != 2 else "",
                    *changes[i % 3],
                    ("critical", "warning", "warning")[i % 3],
                )
                for i in range(40)
            ],
        )
        statuses = ("delivered", "delivered", "dead", "pending")
        await conn.executemany(
            "INSERT INTO opswatch.notification_outbox (dedup_key, channel, route, severity, kind, payload, "
            "status, attempts, last_error, created_at, summary) VALUES ($1, $2, $3, $4, $5, $6::jsonb, $7, "
            "$8, $9, TIMESTAMPTZ '2025-03-14 13:00:00+00' + make_interval(mins => $10), $11)",
            [
                (
                    f"k{i}",
                    ("slack", "pagerduty")[i % 2],
                    ("slack:critical", "pagerduty:oncall")[i % 2],
                    "critical",
                    ("firing", "resolved", "repeat")[i % 3],
                    json.dumps({"n": i}),
                    statuses[i % 4],
                    i % 4,
                    "HTTP 404 from the webhook: channel_not_found (the channel was archived)"
                    if statuses[i % 4] == "dead"
                    else None,
                    2 * i,
                    f"notification {i}",
                )
                for i in range(20)
            ],
        )
        await conn.execute(
            "INSERT INTO opswatch.silences (rule, scope, starts_at, ends_at, reason, created_by, created_at) "
            "VALUES ('error-rate', 'pos-api-01', '2025-03-14 13:50+00', '2099-01-01 00:00+00', "
            "'deploy window', 'tester', '2025-03-14 13:50+00')"
        )
    return db_dsn


def _quiet(monitor: Any) -> None:
    async def no_loops() -> None:
        """The fixed snapshot is the state under test: no rule engine, no summaries."""

    monitor.start = no_loops


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_alerts_screen(snap_compare: Any, alert_rows: str, size: tuple[int, int]) -> None:
    app, monitor, _ = build_app(alert_rows, own_db=True, snapshot=fixed_snapshot(critical=True))
    _quiet(monitor)

    async def ready(pilot: Any) -> None:
        await pilot.press("5")
        screen = app.screen
        assert isinstance(screen, AlertsScreen)
        history = screen.query_one("#alerts-history", DataTable)
        outbox = screen.query_one("#alerts-outbox", DataTable)
        await wait_for(pilot, lambda: history.row_count == 40 and outbox.row_count == 20, what="lists")
        tables = list(screen.query(DataTable))
        await wait_for(
            pilot,
            lambda: all(t.row_count and not any(c.auto_width for c in t.ordered_columns) for t in tables),
            what="columns fitted",
        )
        await pilot.wait_for_scheduled_animations()
        await pilot.pause()  # the last refresh drawn (waits for the idle app, not a fixed time)

    assert snap_compare(app, terminal_size=size, run_before=ready)


@pytest.mark.parametrize("page", WALL_PAGES)
@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_wall_page(snap_compare: Any, alert_rows: str, size: tuple[int, int], page: str) -> None:
    app, monitor, _ = build_app(alert_rows, wall=True, own_db=True, snapshot=fixed_snapshot(critical=True))
    _quiet(monitor)

    async def ready(pilot: Any) -> None:
        await wait_for(pilot, lambda: app.base_screen is not None and app.base_screen.applied, what="data")
        app.action_goto(page)
        await wait_for(
            pilot,
            lambda: app.current_mode == page and app.base_screen is not None and app.base_screen.applied,
            what=page,
        )
        if page == "overview":
            await wait_for(pilot, lambda: any(t.shown for t in app.screen.query(EndpointTile)), what="tiles")
        await pilot.pause()  # the last refresh drawn (waits for the idle app, not a fixed time)

    assert snap_compare(app, terminal_size=size, run_before=ready)
