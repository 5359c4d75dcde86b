"""6 Database: what the server is doing (active queries, blocking locks as a tree, long and
idle-in-transaction sessions, connections by state vs max), slowest statements, table sizes.

Read-only. Activity is read every ``ACTIVITY_EVERY_S`` while the screen is shown, in a worker;
health, statements and sizes come with the Monitor's snapshots.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from rich.text import Text
from textual import events
from textual.app import ComposeResult
from textual.containers import Grid, Vertical, VerticalScroll
from textual.timer import Timer
from textual.widget import Widget
from textual.widgets import DataTable, Static

from core.api import DatabaseUnavailable, DbActivity, Session, collect_activity
from core.snapshot import Snapshot
from tui.keymap import bind
from tui.render import fmt_age, fmt_bytes, fmt_clock, fmt_ms, plain, safe
from tui.screens.base import OpsScreen, describe_failure
from tui.widgets.fast_table import FastTable
from tui.widgets.gauge import Gauge, GaugeValue
from tui.widgets.paged_table import sync_table

ACTIVITY_EVERY_S = 3.0
QUERY_WIDTH = 200
"""Query text per cell; the table cuts it to the column."""


def _query(session: Session) -> Text:
    return safe(session.query or "—", QUERY_WIDTH)


def _age(seconds: float | None) -> Text:
    return plain(fmt_age(seconds))


def _session_row(s: Session, *cells: Text) -> tuple[str, list[Text]]:
    """A row keyed by the backend pid: pid, the table's own ``cells``, application, query."""
    return str(s.pid), [plain(str(s.pid)), *cells, safe(s.application, 30), _query(s)]


def active_rows(activity: DbActivity) -> list[tuple[str, list[Text]]]:
    return [
        _session_row(s, _age(s.query_age_s), safe(s.wait or "—", 40)) for s in activity.active if not s.own
    ]


def lock_rows(activity: DbActivity) -> list[tuple[str, list[Text]]]:
    rows = []
    for i, node in enumerate(activity.blocking_tree):
        s = node.session
        pid = plain(("  " * (node.depth - 1) + "└─ " if node.depth else "") + str(s.pid))
        if node.depth == 0:
            pid.stylize("bold")
        role = f"blocks {node.blocks}" if node.depth == 0 else f"waits {fmt_age(s.query_age_s or 0.0)}"
        rows.append(
            (f"{i}:{s.pid}", [pid, plain(role), safe(s.state or "—", 30), safe(s.application, 30), _query(s)])
        )
    return rows


def transaction_rows(activity: DbActivity) -> list[tuple[str, list[Text]]]:
    return [
        _session_row(
            s,
            _age(s.xact_age_s),
            safe(s.state or "—", 30),
            _age(s.state_age_s if s.idle_in_transaction else None),
        )
        for s in activity.long_transactions()
    ]


def states_line(activity: DbActivity) -> Text:
    use = activity.connections
    line = plain("by state: ")
    line.append("  ".join(f"{state} {n}" for state, n in use.by_state) or "no other sessions")
    own = sum(1 for s in activity.sessions if s.own)
    line.append(f"  ·  opswatch's own {own + 1}")  # and the session that asked
    if use.reserved:
        line.append(f"  ·  {use.reserved} of {use.max_connections} reserved for superusers")
    return line


SECTIONS = ("db-active", "db-locks", "db-xacts", "db-slow", "db-sizes")


class DatabaseScreen(OpsScreen):
    SCREEN_TITLE = "Database"
    BINDINGS = [
        bind("database.next_list", "right_square_bracket", "section(1)", "Next list", key_display="]"),
        bind(
            "database.previous_list", "left_square_bracket", "section(-1)", "Previous list", key_display="["
        ),
    ]

    def __init__(self) -> None:
        super().__init__()
        self._timer: Timer | None = None
        self.activity: DbActivity | None = None
        self._activity_at: datetime | None = None

    def compose_body(self) -> ComposeResult:
        with Vertical(id="db-head", classes="tile"):
            yield Static(id="db-health-line")
            yield Gauge(id="db-connections")
            yield Static(id="db-states")
        with VerticalScroll(id="db-body"), Grid(id="db-grid"):
            yield from self._section("db-active", "Active queries (longest first; opswatch's own left out)")
            yield from self._section("db-locks", "Blocking locks (who blocks whom)")
            yield from self._section("db-xacts", "Long and idle-in-transaction sessions")
            yield from self._section("db-slow", "Slowest statements (opswatch's own left out)")
            yield from self._section("db-sizes", "Table sizes")

    @staticmethod
    def _section(table_id: str, title: str) -> ComposeResult:
        with Vertical(classes="db-section", id=f"{table_id}-section"):
            yield Static(plain(title), classes="section-title")
            yield FastTable(id=table_id, cursor_type="row", zebra_stripes=True)

    def on_mount(self) -> None:
        super().on_mount()
        columns = {
            "db-active": ("PID", "Running", "Wait", "Application", "Query"),
            "db-locks": ("PID", "Blocks / waits", "State", "Application", "Query"),
            "db-xacts": ("PID", "Transaction", "State", "Idle for", "Application", "Query"),
            "db-slow": ("Mean", "Calls", "Statement"),
            "db-sizes": ("Table", "Size"),
        }
        for table_id, names in columns.items():
            self.query_one(f"#{table_id}", DataTable).add_columns(*names)
        self.query_one("#db-active", DataTable).focus()

    def action_section(self, step: int) -> None:
        """Focus the next (or previous) list and bring it into view (the page scrolls at 80x24)."""
        tables = [self.query_one(f"#{name}", DataTable) for name in SECTIONS]
        current = next((i for i, t in enumerate(tables) if t.has_focus), -1)
        target = tables[(current + step) % len(tables)]
        target.focus()
        section = target.parent
        if isinstance(section, Widget):
            section.scroll_visible(animate=False)

    def on_resize(self, event: events.Resize) -> None:
        self.set_class(event.size.width < 100 or event.size.height < 30, "-narrow")

    # -- activity: read only while shown ---------------------------------------------------------

    def on_screen_resume(self) -> None:
        self._refresh_activity()
        if self._timer is None:
            self._timer = self.set_interval(ACTIVITY_EVERY_S, self._refresh_activity, name="db-activity")
        else:
            self._timer.resume()

    def on_screen_suspend(self) -> None:
        super().on_screen_suspend()
        if self._timer is not None:
            self._timer.pause()

    def _refresh_activity(self) -> None:
        # Textual types a function worker as returning Never
        work: Any = self._load_activity
        self.run_worker(work, group="db-activity", exclusive=True, exit_on_error=False)

    async def _load_activity(self) -> None:
        states = self.query_one("#db-states", Static)
        try:
            activity = await collect_activity(self.ops.services.db, slow=False)
        except DatabaseUnavailable as exc:
            line = plain(f"activity unknown: {describe_failure(exc)}")
            if self.activity is not None:
                line.append(f"  (tables below as of {fmt_clock(self._activity_at)})", style="reverse")
            states.update(line)
            return
        self.activity, self._activity_at = activity, self.now()
        states.update(states_line(activity))
        sync_table(self.query_one("#db-active", DataTable), active_rows(activity))
        sync_table(self.query_one("#db-locks", DataTable), lock_rows(activity))
        sync_table(self.query_one("#db-xacts", DataTable), transaction_rows(activity))

    # -- snapshot: health, statements, sizes -----------------------------------------------------

    def apply_snapshot(self, snapshot: Snapshot) -> None:
        db, stats = snapshot.db, snapshot.db_stats
        line = plain("")
        if db is None:
            line.append("? checking the database...")
        elif db.up:
            line.append(f"● UP  round trip {fmt_ms(db.rtt_ms)}")
        else:
            line.append(f"✖ DOWN since {fmt_clock(db.down_since or db.checked_at)}  ")
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
