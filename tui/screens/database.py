"""6 Database: connections vs max, database size, slowest statements, table sizes."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.widgets import DataTable, Static

from core.snapshot import Snapshot
from tui.render import fmt_bytes, fmt_ms, plain, safe
from tui.screens.base import OpsScreen
from tui.widgets.fast_table import FastTable
from tui.widgets.gauge import Gauge, GaugeValue
from tui.widgets.paged_table import sync_table


class DatabaseScreen(OpsScreen):
    SCREEN_TITLE = "Database"

    def compose_body(self) -> ComposeResult:
        with Vertical(id="db-head", classes="tile"):
            yield Static(id="db-health-line")
            yield Gauge(id="db-connections")
        with Horizontal(id="db-tables"):
            with Vertical(classes="db-column"):
                yield Static(plain("Slowest statements (pg_stat_statements)"), classes="section-title")
                yield FastTable(id="db-slow", cursor_type="row", zebra_stripes=True)
            with Vertical(classes="db-column"):
                yield Static(plain("Table sizes"), classes="section-title")
                yield FastTable(id="db-sizes", cursor_type="row", zebra_stripes=True)

    def on_mount(self) -> None:
        self.query_one("#db-slow", DataTable).add_columns("Mean", "Calls", "Statement")
        self.query_one("#db-sizes", DataTable).add_columns("Table", "Size")
        self.query_one("#db-slow", DataTable).focus()

    def apply_snapshot(self, snapshot: Snapshot) -> None:
        db, stats = snapshot.db, snapshot.db_stats
        line = plain("")
        if db is None:
            line.append("checking the database...")
        elif db.up:
            line.append(f"● UP  round trip {db.rtt_ms or 0:.1f}ms")
        else:
            line.append("✖ DOWN  ")
            line.append_text(safe(db.error or "", 160))
        stale = self.stale(snapshot, "db_stats", self.ops.db_stats_stale_after)
        if stats is not None:
            line.append(f"   size {fmt_bytes(stats.database_bytes)}")
        if stale is not None:
            line.append(f"   STALE {stale}", style="reverse")
        self.query_one("#db-health-line", Static).update(line)
        if stats is None:
            return
        used, most = stats.connections_used, max(stats.max_connections, 1)
        self.query_one("#db-connections", Gauge).set_value(
            GaugeValue(f"connections {used}/{most}", used / most * 100, 80.0, 95.0, maximum=100.0, unit="%")
        )
        if stats.slow_statements is None:
            slow_rows = [("none", [plain("—"), plain("—"), plain("pg_stat_statements is not available")])]
        else:
            slow_rows = [
                (str(i), [plain(fmt_ms(s.mean_ms)), plain(f"{s.calls:,}"), safe(s.query, 300)])
                for i, s in enumerate(stats.slow_statements)
            ]
        sync_table(self.query_one("#db-slow", DataTable), slow_rows)
        sync_table(
            self.query_one("#db-sizes", DataTable),
            [(t.name, [safe(t.name, 60), plain(fmt_bytes(t.bytes))]) for t in stats.tables],
        )
