"""Unknown is never green: the overview started while the database is unreachable."""

from __future__ import annotations

from dataclasses import replace

from textual.widgets import Static

from tests.tui.support import build_app, console, fixed_snapshot, wait_for
from tui.screens.overview import OverviewScreen
from tui.widgets.sparkline_tile import SparkTile


def panel_text(app, panel: str) -> str:  # type: ignore[no-untyped-def]
    return str(app.screen.query_one(f"#{panel}", SparkTile).query_one(".tile-body", Static).render())


async def test_started_with_database_down_alerts_are_unknown_not_green() -> None:
    async with console(
        "postgresql://postgres@127.0.0.1:1/none", clock=None, size=(120, 30), screen=OverviewScreen
    ) as (
        app,
        _,
        pilot,
        _,
    ):
        down = lambda: app.snapshot.db is not None and not app.snapshot.db.up  # noqa: E731
        await wait_for(pilot, down, within=10, what="database down")
        since = lambda: "database down since" in panel_text(app, "panel-alerts")  # noqa: E731
        await wait_for(pilot, since, what="UNKNOWN alerts, database down since")
        alerts = app.screen.query_one("#panel-alerts", SparkTile)
        text = panel_text(app, "panel-alerts")
        assert "no active alerts" not in text and "✔" not in text
        assert "database down since" in text
        assert not alerts.has_class("-ok")
        for panel in ("panel-alerts", "panel-dlq", "panel-events", "panel-db"):
            assert not app.screen.query_one(f"#{panel}", SparkTile).has_class("-ok"), panel


async def test_no_database_reading_yet_is_unknown(tui_db) -> None:  # type: ignore[no-untyped-def]
    """Before the first health check (snapshot.db is None) nothing claims all clear."""
    snapshot = replace(fixed_snapshot(), alerts=(), db=None, dlq=None, events=None, db_stats=None)
    app, _, _ = build_app(tui_db.dsn, snapshot=snapshot)
    async with app.run_test(size=(120, 30)) as pilot:
        await wait_for(pilot, lambda: "UNKNOWN" in panel_text(app, "panel-alerts"), what="UNKNOWN alerts")
        assert "no active alerts" not in panel_text(app, "panel-alerts")
        for panel in ("panel-alerts", "panel-dlq", "panel-events", "panel-db"):
            assert not app.screen.query_one(f"#{panel}", SparkTile).has_class("-ok"), panel


async def test_database_up_without_alerts_is_all_clear(tui_db) -> None:  # type: ignore[no-untyped-def]
    app, _, _ = build_app(tui_db.dsn, snapshot=replace(fixed_snapshot(), alerts=()))
    async with app.run_test(size=(120, 30)) as pilot:
        await wait_for(pilot, lambda: "no active alerts" in panel_text(app, "panel-alerts"), what="all clear")
        assert app.screen.query_one("#panel-alerts", SparkTile).has_class("-ok")
