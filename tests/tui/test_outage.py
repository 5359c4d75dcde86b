"""The database goes away mid-session: banner and STALE tiles, navigation keeps working, recovery."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import asyncpg
import pytest
from textual.widgets import Static

from core.embedded import EmbeddedPostgres
from core.migrate import init_app_schema, migrate
from tests.tui.support import build_app, make_config, wait_for
from tui.screens.overview import OverviewScreen
from tui.screens.triage import DeadLettersScreen
from tui.widgets.db_banner import DbBanner
from tui.widgets.sparkline_tile import SparkTile


def banner(app) -> DbBanner:  # type: ignore[no-untyped-def]
    return app.screen.query_one(DbBanner)


@pytest.mark.skipif(bool(os.environ.get("OPSWATCH_TEST_DSN")), reason="needs a server this test can stop")
async def test_db_outage_shows_banner_and_recovers() -> None:
    with tempfile.TemporaryDirectory(prefix="opswatch-tui-outage-") as tmp:
        server = EmbeddedPostgres(Path(tmp)).start()
        try:
            conn = await asyncpg.connect(server.dsn)
            try:
                await init_app_schema(conn)
                await migrate(conn)
            finally:
                await conn.close()
            app, _, db = build_app(server.dsn, config=make_config(refresh_interval=0.2), clock=None)
            try:
                async with app.run_test(size=(120, 30)) as pilot:
                    await wait_for(
                        pilot, lambda: app.snapshot.db is not None and app.snapshot.db.up, what="database up"
                    )
                    assert not banner(app).has_class("-visible")

                    server.stop()
                    await wait_for(
                        pilot, lambda: banner(app).has_class("-visible"), within=10, what="outage banner"
                    )
                    text = str(banner(app).render())
                    assert text.startswith("✖ database unreachable since ") and ", retrying" in text

                    await pilot.press("3")  # navigation still works while the database is down
                    assert isinstance(app.screen, DeadLettersScreen)
                    assert banner(app).has_class("-visible")
                    await pilot.press("1")
                    assert isinstance(app.screen, OverviewScreen)
                    dlq = app.screen.query_one("#panel-dlq", SparkTile)
                    # backlog tiles turn STALE after two summary periods and a second (summary_stale_after)
                    await wait_for(pilot, lambda: dlq.has_class("-stale"), within=20, what="STALE tile")
                    assert "STALE" in str(dlq.query_one(".tile-title", Static).render())

                    server.start()
                    await wait_for(
                        pilot,
                        lambda: not banner(app).has_class("-visible"),
                        within=30,
                        what="banner gone after recovery",
                    )
                    await wait_for(pilot, lambda: not dlq.has_class("-stale"), within=10, what="fresh again")
            finally:
                await db.close()
        finally:
            server.stop()


async def test_unreachable_database_at_start_does_not_stop_the_console() -> None:
    app, _, db = build_app("postgresql://postgres@127.0.0.1:1/none", clock=None)
    try:
        async with app.run_test(size=(100, 30)) as pilot:
            await wait_for(pilot, lambda: banner(app).has_class("-visible"), within=10, what="banner")
            assert "connection refused" in str(banner(app).render())
            await pilot.press("3")
            assert isinstance(app.screen, DeadLettersScreen)
            await wait_for(pilot, lambda: any("unreachable" in t for _, t in app.notices), what="notice")
            await pilot.press("1")
            assert isinstance(app.screen, OverviewScreen)
    finally:
        await db.close()
