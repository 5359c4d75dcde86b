"""Alerts screen keys against the real AlertActions: acknowledge, silence, test alert; themes."""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager
from typing import Any

import pytest
from textual.widgets import DataTable

from core.config import Config
from core.notify.outbox import OutboxItem, enqueue
from core.notify.registry import build_notifiers
from tests.tui.support import Running, connected, console, fixed_snapshot, wait_for
from tui.screens.alerts import AlertsScreen
from tui.themes import ANSI, DARK, HIGH_CONTRAST, resolve_theme
from tui.widgets.confirm_modal import ConfirmModal
from tui.widgets.paged_table import cursor_key
from tui.widgets.silence_modal import SilenceModal


def alerts_screen(dsn: str, size: tuple[int, int], **build: Any) -> AbstractAsyncContextManager[Running]:
    """The console on its Alerts screen (key 5); by default the fixed snapshot with a critical alert."""
    return console(
        dsn, size=size, key="5", screen=AlertsScreen, **({"snapshot": fixed_snapshot(critical=True)} | build)
    )


async def _fetchval(dsn: str, sql: str, *args: object) -> object:
    async with connected(dsn) as conn:
        return await conn.fetchval(sql, *args)


async def test_acknowledge_silence_and_test_alert(db_dsn: str) -> None:
    await _fetchval(db_dsn, "DELETE FROM opswatch.alert_state")
    await _fetchval(
        db_dsn,
        "INSERT INTO opswatch.alert_state (rule, scope, state, severity, value, threshold) "
        "VALUES ('api-down', 'pos-api-02', 'firing', 'critical', 312, 300)",
    )
    # loops off: the rule engine would reconcile the hand-made alert row; only the actions are under test.
    async with alerts_screen(db_dsn, (140, 40), loops=False) as (app, _, pilot, _):
        await pilot.press("a")  # cursor starts on the critical api-down alert
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmModal), what="ack confirm")
        await pilot.press("tab", "enter")
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
    async with console(db_dsn, snapshot=fixed_snapshot(), size=(80, 24)) as (app, _, _, _):
        assert app.no_color


async def test_outbox_lists_recent_notifications_and_x_retargets_a_stranded_one(db_dsn: str) -> None:
    config = Config.model_validate(
        {"notifications": {"slack": {"webhooks": {"critical": "http://127.0.0.1:9/now"}}}}
    )
    current = build_notifiers(config)["slack"].targets()["slack:critical"]
    async with connected(db_dsn) as conn:
        await conn.execute("TRUNCATE opswatch.notification_outbox, opswatch.audit_log RESTART IDENTITY")
        items = [
            OutboxItem(
                key, "slack", "slack:critical", "critical", "firing", {"text": key}, f"s {key}", (), target
            )
            for key, target in (("sent", current), ("failed", current), ("stranded", "0123456789abcdef"))
        ]
        async with conn.transaction():
            ids = await enqueue(conn, items)
        await conn.execute(
            "UPDATE opswatch.notification_outbox SET status = 'delivered' WHERE id = $1", ids[0]
        )
        await conn.execute(
            "UPDATE opswatch.notification_outbox SET status = 'dead', last_error = 'HTTP 404' WHERE id = $1",
            ids[1],
        )
    async with alerts_screen(db_dsn, (160, 40), config=config, snapshot=fixed_snapshot()) as (
        app,
        _,
        pilot,
        screen,
    ):
        table = screen.query_one("#alerts-outbox", DataTable)
        await wait_for(pilot, lambda: table.row_count == 3, what="outbox rows")
        statuses = [table.get_row(str(i))[2].plain for i in reversed(ids)]
        assert statuses == ["▲ stranded", "✖ dead", "✔ delivered"]
        await pilot.press("f", "f")  # active alerts -> history -> outbox; the newest row first
        assert screen.focused is table
        await pilot.press("x")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmModal), what="resend confirm")
        await pilot.press("tab", "enter")
        await wait_for(pilot, lambda: any("current destination" in t for _, t in app.notices), what="notice")
        assert (
            await _fetchval(db_dsn, "SELECT target FROM opswatch.notification_outbox WHERE id = $1", ids[2])
            is None
        )
        await pilot.press("down", "down", "x")  # the delivered one: nothing to resend
        await wait_for(pilot, lambda: any("is delivered" in t for _, t in app.notices), what="refused")


async def _seed_history(dsn: str, first: int, count: int) -> None:
    """``count`` alert transitions after the first ``first - 1`` ones, one second apart (ids ascend)."""
    async with connected(dsn) as conn:
        await conn.executemany(
            "INSERT INTO opswatch.alert_history (at, rule, scope, from_state, to_state, severity) "
            "VALUES (TIMESTAMPTZ '2025-03-14 13:00:00+00' + make_interval(secs => $1), $2, $3, "
            "'pending', 'firing', 'warning')",
            [(float(i), f"rule-{i:03d}", "pos-api-01") for i in range(first, first + count)],
        )


def _publish_change(monitor: object, n: int) -> None:
    """A new snapshot whose outbox summary differs: the screen reloads its lists, as it does live."""
    from dataclasses import replace

    from core.snapshot import OutboxSummary

    snapshot = fixed_snapshot(critical=True)
    outbox = OutboxSummary(pending=n, dead=0, delivered_last_hour=n)
    monitor.publish(replace(snapshot, outbox=outbox))  # type: ignore[attr-defined]


async def test_history_follows_the_newest_row_until_the_operator_moves_away(fresh_db_dsn: str) -> None:
    """Bug 2: new rows appeared above the visible area because the cursor stuck to its row id."""
    await _seed_history(fresh_db_dsn, 1, 30)
    # loops off: only the screen's reloads are under test.
    async with alerts_screen(fresh_db_dsn, (160, 45), loops=False) as (_, monitor, pilot, screen):
        table = screen.query_one("#alerts-history", DataTable)
        await wait_for(pilot, lambda: table.row_count == 30, what="history rows")
        await pilot.press("f")
        assert screen.focused is table
        assert cursor_key(table) == "30"

        await _seed_history(fresh_db_dsn, 31, 5)
        _publish_change(monitor, 1)
        await wait_for(pilot, lambda: table.get_row_at(0)[1].plain == "rule-035", what="reload")
        assert cursor_key(table) == "35", "the cursor follows the head"
        assert table.scroll_y == 0
        assert "new ↑" not in _title(screen, "history")

        await pilot.press("j", "j")  # away from the head: keep the row, count what arrives
        assert cursor_key(table) == "33"
        await _seed_history(fresh_db_dsn, 36, 3)
        _publish_change(monitor, 2)
        await wait_for(pilot, lambda: table.get_row_at(0)[1].plain == "rule-038", what="reload")
        assert cursor_key(table) == "33"
        assert "3 new ↑" in _title(screen, "history")

        await pilot.press("g")  # back to the head: following again
        assert cursor_key(table) == "38"
        assert "new ↑" not in _title(screen, "history")
        await _seed_history(fresh_db_dsn, 39, 1)
        _publish_change(monitor, 3)
        await wait_for(pilot, lambda: table.get_row_at(0)[1].plain == "rule-039", what="reload")
        assert cursor_key(table) == "39"

        await pilot.pause()  # the reload's own scrolling (cursor into view) is done before the wheel's
        await wait_for(pilot, lambda: table.max_scroll_y >= 2, what="history taller than the view")
        table.scroll_relative(y=2, animate=False)  # what the mouse wheel does: away from the head
        await wait_for(pilot, lambda: table.scroll_y >= 1, what="scrolled")
        scrolled = table.scroll_y
        assert cursor_key(table) == "39"
        await _seed_history(fresh_db_dsn, 40, 2)
        _publish_change(monitor, 4)
        await wait_for(pilot, lambda: table.get_row_at(0)[1].plain == "rule-041", what="reload")
        assert cursor_key(table) == "39"
        await wait_for(pilot, lambda: table.scroll_y == scrolled + 2, what="rows kept in view")
        assert "2 new ↑" in _title(screen, "history")
        await pilot.press("home")
        assert cursor_key(table) == "41" and table.scroll_y == 0
        assert "new ↑" not in _title(screen, "history")


def _title(screen: AlertsScreen, which: str) -> str:
    from textual.widgets import Static

    return str(screen.query_one(f"#{which}-title", Static).render())


async def test_k_moves_and_acknowledging_asks_first(db_dsn: str) -> None:
    """Bug 4: ``k`` acknowledged the alert under the cursor at once; on every list it means "up"."""
    await _fetchval(db_dsn, "DELETE FROM opswatch.alert_state")
    await _fetchval(
        db_dsn,
        "INSERT INTO opswatch.alert_state (rule, scope, state, severity, value, threshold) VALUES "
        "('api-down', 'pos-api-02', 'firing', 'critical', 312, 300), "
        "('event-failures', '', 'firing', 'warning', 9, 5)",
    )
    # loops off: the rule engine would reconcile the hand-made alert rows; only the keys are under test.
    acked = "SELECT count(*) FROM opswatch.alert_state WHERE acknowledged_by IS NOT NULL"
    async with alerts_screen(db_dsn, (140, 40), loops=False) as (app, _, pilot, screen):
        table = screen.query_one("#alerts-active", DataTable)
        await wait_for(pilot, lambda: table.row_count == 3, what="active alerts")
        await pilot.press("j")
        assert table.cursor_row == 1
        await pilot.press("k")
        assert table.cursor_row == 0
        await pilot.pause(0.2)  # the time a wrongly bound "k" would take to open its dialog: none may come
        assert not isinstance(app.screen, ConfirmModal)
        assert await _fetchval(db_dsn, acked) == 0, "k must never acknowledge"

        await pilot.press("a")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmModal), what="ack confirm")
        assert "api-down" in str(app.screen.query_one("#dialog-title").render())
        await pilot.press("enter")  # Cancel is the default
        await wait_for(pilot, lambda: not isinstance(app.screen, ConfirmModal), what="cancelled")
        assert await _fetchval(db_dsn, acked) == 0

        await pilot.press("a")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmModal), what="ack confirm")
        await pilot.press("tab", "enter")
        await wait_for(pilot, lambda: any("acknowledged" in t for _, t in app.notices), what="ack")
        ruled = await _fetchval(
            db_dsn,
            "SELECT string_agg(rule, ',') FROM opswatch.alert_state WHERE acknowledged_by IS NOT NULL",
        )
        assert ruled == "api-down"


async def test_footer_shows_screen_keys_and_actions_and_f1_help_is_grouped(db_dsn: str) -> None:
    """Discoverability: the footer showed only "? Help  q Quit"; help listed Textual's internals."""
    from textual.widgets import Static

    from tui.screens.help import HelpScreen

    async with alerts_screen(db_dsn, (120, 30)) as (app, _, pilot, _):
        footer = app.screen.query_one("#key-footer-line", Static)
        await wait_for(pilot, lambda: "Screens" in str(footer.render()), what="footer")
        line = str(footer.render())
        for shown in ("1234567 Screens", "? Help", "a Acknowledge", "S Silence", "x Resend", "q Quit"):
            assert shown in line
        assert line.rstrip().endswith("q Quit"), "Quit fits at 120 columns"

        await pilot.press("f1")
        await wait_for(pilot, lambda: isinstance(app.screen, HelpScreen), what="help on F1")
        table = app.screen.query_one(DataTable)
        rows = [tuple(c.plain for c in table.get_row_at(i)) for i in range(table.row_count)]
        sections = [r[1] for r in rows if not r[0] and r[1]]
        assert sections[:3] == ["Alerts (this screen)", "Lists", "Screens and app"]
        assert {"Dead letters", "Event failures", "Endpoints"} <= set(sections)
        own = rows[1 : [r[1] for r in rows].index("Lists")]
        assert ("a", "Acknowledge", "alerts.acknowledge") in own
        assert ("k", "Up", "table.up") in rows
        assert ("r", "Retry", "dlq.retry") in rows, "other screens' actions are listed too"
        descriptions = {r[1] for r in rows}
        assert not descriptions & {"Scroll Left", "Copy selected text", "Focus Next", "Cursor up"}
        await pilot.press("escape")
        assert isinstance(app.screen, AlertsScreen)


@pytest.mark.parametrize("size", [(80, 24), (56, 20)], ids=lambda s: f"{s[0]}x{s[1]}")
async def test_wall_clock_is_never_cut(db_dsn: str, size: tuple[int, int]) -> None:
    """Wall mode: with every badge shown (WALL, PAUSED, READ-ONLY) the clock stays whole."""
    from textual.widgets import Static

    async with console(db_dsn, wall=True, snapshot=fixed_snapshot(critical=True), size=size) as (
        app,
        _,
        pilot,
        _,
    ):
        await pilot.press("space")
        assert app.paused
        clock = app.screen.query_one("#status-clock", Static)
        await wait_for(pilot, lambda: "14:02" in str(clock.render()), what="clock")
        bar = app.screen.query_one("#status-bar")
        await wait_for(
            pilot, lambda: clock.content_region.width > 0 and bar.content_region.width > 0, what="layout"
        )
        text = str(clock.render()).strip()
        assert clock.region.right <= bar.content_region.right
        assert clock.content_region.width >= len(text), f"{text!r} cut to {clock.content_region.width}"


async def test_wall_pages_show_big_counts_and_no_dense_lists(db_dsn: str) -> None:
    """Wall mode: the alerts page shows active alerts only, with the counts large; so do endpoints."""
    from tui.widgets.wall_counts import WallCounts

    # loops off: the fixed snapshot is the state under test.
    async with console(
        db_dsn, wall=True, snapshot=fixed_snapshot(critical=True), size=(120, 40), loops=False
    ) as (app, _, pilot, _):
        app.action_goto("alerts")
        await wait_for(pilot, lambda: isinstance(app.screen, AlertsScreen), what="alerts page")
        screen = app.screen

        def active_rows() -> int:
            tables = screen.query("#alerts-active").results(DataTable)
            return next((t.row_count for t in tables), 0)

        await wait_for(pilot, lambda: active_rows() == 3, what="active alerts")
        for hidden in ("#alerts-history", "#alerts-outbox", "#alerts-silences"):
            assert not screen.query_one(hidden).visible or screen.query_one(hidden).region.height == 0
        counts = screen.query_one(WallCounts)
        await wait_for(pilot, lambda: counts.shown, what="counts")
        assert [(label, n) for label, n, _ in counts.shown] == [
            ("✖ CRITICAL", 1),
            ("▲ WARNING", 1),
            ("… PENDING", 1),
        ]
        active = screen.query_one("#alerts-active")
        assert active.region.bottom >= screen.region.bottom - 2, "the alerts fill the page"

        app.action_goto("endpoints")
        await wait_for(pilot, lambda: app.current_mode == "endpoints", what="endpoints page")
        await wait_for(
            pilot, lambda: any(c.shown for c in app.screen.query(WallCounts)), what="endpoint counts"
        )
        shown = {label: n for label, n, _ in app.screen.query_one(WallCounts).shown}
        assert shown["✖ DOWN"] == 1 and shown["● UP"] == 5


@pytest.mark.parametrize("wall", [False, True], ids=["console", "wall"])
async def test_alert_counts_say_unknown_while_the_database_is_down(db_dsn: str, wall: bool) -> None:
    """Unknown is never green: no alerts known is not "no active alerts"."""
    from dataclasses import replace

    from tui.widgets.wall_counts import WallCounts

    down = replace(fixed_snapshot(db_up=False), alerts=())
    # loops off: the fixed snapshot is the state under test.
    async with console(db_dsn, wall=wall, snapshot=down, size=(120, 40), loops=False) as (app, _, pilot, _):
        app.action_goto("alerts")
        await wait_for(pilot, lambda: isinstance(app.screen, AlertsScreen), what="alerts")
        screen = app.screen
        assert isinstance(screen, AlertsScreen)
        await wait_for(
            pilot,
            lambda: screen.query("#active-title") and "UNKNOWN" in _title(screen, "active"),
            what="unknown",
        )
        assert "no active alerts" not in _title(screen, "active")
        if wall:
            counts = screen.query_one(WallCounts)
            await wait_for(pilot, lambda: counts.shown, what="counts")
            assert {kind for _, _, kind in counts.shown} == {"-stale"}
            assert {n for _, n, _ in counts.shown} == {-1}
