"""Endpoint table columns keep a readable width when values grow after the first draw."""

from __future__ import annotations

from dataclasses import replace

from textual.widgets import DataTable

from tests.tui.support import console, fixed_snapshot, seed_app_rows, wait_for
from tui.screens.endpoints import EndpointsScreen

NUMERIC = ("latency", "p50", "p95", "p99", "errors", "up1h", "up24h", "down")


async def test_numeric_columns_are_never_cut_when_values_grow(db_dsn: str) -> None:
    await seed_app_rows(db_dsn)
    snapshot = fixed_snapshot()
    async with console(db_dsn, snapshot=snapshot, size=(160, 40), key="2", screen=EndpointsScreen) as (
        _,
        monitor,
        pilot,
        screen,
    ):
        table = screen.query_one(DataTable)
        views = list(snapshot.endpoints)
        views[0] = replace(
            views[0], last_latency_ms=7215.0, p50_ms=4321.0, p95_ms=12345.0, p99_ms=99999.0,
            error_rate=1.0, uptime_1h=0.1234, uptime_24h=1.0,
        )  # fmt: skip
        monitor.publish(replace(snapshot, endpoints=tuple(views)))
        await wait_for(
            pilot, lambda: table.get_cell("pos-api-00", "latency").plain == "7215ms", what="update"
        )
        await pilot.pause()
        for key in NUMERIC:
            column = table.columns[key]  # type: ignore[index]
            widest = max(len(table.get_cell(row, key).plain) for row in table.rows)
            assert column.width >= widest, f"{column.label.plain}: {column.width} < {widest}"
            assert column.width >= len(column.label.plain)
