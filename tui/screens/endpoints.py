"""2 Endpoints: every endpoint in one table; Enter opens its history."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.widgets import DataTable

from core.snapshot import EndpointState, EndpointView, Snapshot
from tui.keymap import bind
from tui.render import (
    age_between,
    fmt_age,
    fmt_ms,
    fmt_ratio_pct,
    plain,
    safe,
    severity_text,
    state_text,
)
from tui.screens.base import OpsScreen
from tui.widgets.endpoint_tile import tile_severity
from tui.widgets.paged_table import PagedTable
from tui.widgets.wall_counts import Count, WallCounts

COLUMNS = (
    ("name", "Endpoint"),
    ("state", "State"),
    ("health", "Health"),
    ("status", "Last"),
    ("latency", "Now"),
    ("p50", "p50"),
    ("p95", "p95"),
    ("p99", "p99"),
    ("errors", "Errors"),
    ("up1h", "Up 1h"),
    ("up24h", "Up 24h"),
    ("down", "Down since"),
    ("error", "Last error"),
)
VALUE_WIDTHS = {  # widest formatted value: a column never shrinks below it ("9999ms", "100.00%", "12d03h")
    "latency": 6, "p50": 6, "p95": 6, "p99": 6, "errors": 6, "up1h": 7, "up24h": 7, "down": 6,
}  # fmt: skip
WALL_COLUMNS = ("name", "state", "health", "latency", "p95", "errors", "up24h", "down")
"""The wall shows fewer columns: readable from afar, and a cheaper redraw."""


def wall_counts(views: tuple[EndpointView, ...]) -> list[Count]:
    """The wall's headline: endpoints by state (unknown is its own count, never up)."""
    by = {state: sum(v.state is state for v in views) for state in EndpointState}
    return [
        ("✖ DOWN", by[EndpointState.DOWN], "-critical" if by[EndpointState.DOWN] else "-ok"),
        ("▲ FAILING", by[EndpointState.FAILING], "-warning" if by[EndpointState.FAILING] else "-ok"),
        ("? UNKNOWN", by[EndpointState.UNKNOWN], "-stale" if by[EndpointState.UNKNOWN] else "-ok"),
        ("● UP", by[EndpointState.UP], "-ok"),
    ]


class EndpointsScreen(OpsScreen):
    SCREEN_TITLE = "Endpoints"
    BINDINGS = [bind("endpoints.history", "enter", "history", "History")]

    def __init__(self) -> None:
        super().__init__()
        self._rows: dict[str, tuple[tuple[object, ...], list[Text]]] = {}

    def compose_body(self) -> ComposeResult:
        if self.ops.wall:
            yield WallCounts(4, id="endpoints-wall-counts")
        yield PagedTable(id="endpoints-table")

    def on_mount(self) -> None:
        table = self.query_one(PagedTable)
        for key, label in COLUMNS:
            if key in self._keys:
                width = VALUE_WIDTHS.get(key)
                table.add_column(label, key=key, width=None if width is None else max(width, len(label)))
        table.focus()

    @property
    def _keys(self) -> tuple[str, ...]:
        return WALL_COLUMNS if self.ops.wall else tuple(key for key, _ in COLUMNS)

    def _cells(self, view: EndpointView) -> list[Text]:
        now = self.now()
        last = (
            plain(str(view.last_status))
            if view.last_status is not None
            else safe(view.last_outcome or "—", 16)
        )
        down = fmt_age(age_between(view.down_since, now)) if view.down_since else "—"
        cells = {
            "name": safe(view.name, 40),
            "state": state_text(view.state, self.palette),
            "health": severity_text(tile_severity(view, self.ops.thresholds), self.palette),
            "status": last,
            "latency": plain(fmt_ms(view.last_latency_ms)),
            "p50": plain(fmt_ms(view.p50_ms)),
            "p95": plain(fmt_ms(view.p95_ms)),
            "p99": plain(fmt_ms(view.p99_ms)),
            "errors": plain(fmt_ratio_pct(view.error_rate)),
            "up1h": plain(fmt_ratio_pct(view.uptime_1h, 2)),
            "up24h": plain(fmt_ratio_pct(view.uptime_24h, 2)),
            "down": plain(down),
            "error": safe(view.last_error, 120),
        }
        return [cells[key] for key in self._keys]

    def apply_snapshot(self, snapshot: Snapshot) -> None:
        self.query_one(PagedTable).sync([(e.name, self._row(e)) for e in snapshot.endpoints])
        if self.ops.wall:
            self.query_one(WallCounts).show(wall_counts(snapshot.endpoints))

    def _row(self, view: EndpointView) -> list[Text]:
        """Cells of one endpoint, rebuilt only when its view (or the down-for age) changed."""
        down = fmt_age(age_between(view.down_since, self.now())) if view.down_since else ""
        key = (view, down, self.palette)
        cached = self._rows.get(view.name)
        if cached is None or cached[0] != key:
            cached = (key, self._cells(view))
            self._rows[view.name] = cached
        return cached[1]

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        event.stop()
        self.action_history()

    def action_history(self) -> None:
        name = self.query_one(PagedTable).current_key
        if name is not None:
            from tui.screens.endpoint_history import EndpointHistoryScreen

            self.app.push_screen(EndpointHistoryScreen(name))
