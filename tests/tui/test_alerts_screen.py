"""Alerts screen keys against the real AlertActions: acknowledge, silence, test alert; themes."""

from __future__ import annotations

import asyncpg
import pytest

from tests.tui.support import build_app, fixed_snapshot, wait_for
from tui.screens.alerts import AlertsScreen
from tui.themes import ANSI, DARK, HIGH_CONTRAST, resolve_theme
from tui.widgets.confirm_modal import ConfirmModal
from tui.widgets.silence_modal import SilenceModal


async def _fetchval(dsn: str, sql: str, *args: object) -> object:
    conn = await asyncpg.connect(dsn)
    try:
        return await conn.fetchval(sql, *args)
    finally:
        await conn.close()


async def test_acknowledge_silence_and_test_alert(db_dsn: str) -> None:
    await _fetchval(db_dsn, "DELETE FROM opswatch.alert_state")
    await _fetchval(
        db_dsn,
        "INSERT INTO opswatch.alert_state (rule, scope, state, severity, value, threshold) "
        "VALUES ('api-down', 'pos-api-02', 'firing', 'critical', 312, 300)",
    )
    app, monitor, db = build_app(db_dsn, snapshot=fixed_snapshot(critical=True))

    async def no_loops() -> None:
        """The rule engine would reconcile the hand-made alert row; only the actions are under test."""

    monitor.start = no_loops
    try:
        async with app.run_test(size=(140, 40)) as pilot:
            await pilot.press("5")
            assert isinstance(app.screen, AlertsScreen)
            await pilot.press("k")  # cursor starts on the critical api-down alert
            await wait_for(
                pilot,
                lambda: any("acknowledged" in t or "applied" in t for _, t in app.notices),
                what="ack notice",
            )
            by = await _fetchval(
                db_dsn, "SELECT acknowledged_by FROM opswatch.alert_state WHERE rule = 'api-down'"
            )
            assert by

            await pilot.press("S")
            await wait_for(pilot, lambda: isinstance(app.screen, SilenceModal), what="silence modal")
            await pilot.press(*"deploy window", "enter")
            await wait_for(pilot, lambda: not isinstance(app.screen, SilenceModal), what="silenced")
            reason = await _fetchval(
                db_dsn,
                "SELECT reason FROM opswatch.silences WHERE rule = 'api-down' ORDER BY id DESC LIMIT 1",
            )
            assert reason == "deploy window"

            await pilot.press("T")
            await wait_for(pilot, lambda: isinstance(app.screen, ConfirmModal), what="test confirm")
            await pilot.press("tab", "enter")
            await wait_for(pilot, lambda: any("route" in t for _, t in app.notices), what="test notice")
    finally:
        await db.close()


@pytest.mark.parametrize(
    ("requested", "environ", "expected"),
    [
        ("dark", {"TERM": "xterm-256color"}, DARK.name),
        ("dark", {"TERM": "xterm", "COLORTERM": "truecolor"}, DARK.name),
        ("dark", {"TERM": "linux"}, ANSI.name),
        ("high-contrast", {"TERM": "linux"}, HIGH_CONTRAST.name),
        ("ansi", {}, ANSI.name),
    ],
)
def test_theme_resolution_falls_back_to_16_colours(
    requested: str, environ: dict[str, str], expected: str
) -> None:
    assert resolve_theme(requested, environ) == expected


async def test_no_color_is_honoured(db_dsn: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NO_COLOR", "1")
    app, _, db = build_app(db_dsn, snapshot=fixed_snapshot())
    try:
        async with app.run_test(size=(80, 24)):
            assert app.no_color
    finally:
        await db.close()
