"""One endpoint's history: latency chart and recent failures with their error class."""

from __future__ import annotations

from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import BindingType
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import DataTable, Sparkline, Static

from core.snapshot import EndpointView, ProbeFailure
from tui.keymap import bind
from tui.render import fmt_ms, fmt_when, plain, safe, state_label
from tui.screens.base import WorkerErrors
from tui.widgets.fast_table import FastTable


class EndpointHistoryScreen(WorkerErrors, ModalScreen[None]):
    BINDINGS: ClassVar[list[BindingType]] = [bind("history.close", "escape,q", "close", "Close")]

    def __init__(self, endpoint: str) -> None:
        super().__init__(classes="modal history-modal")
        self.endpoint = endpoint

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog"):
            yield Static(id="dialog-title")
            yield Static(id="history-stats")
            yield Sparkline([0.0], id="history-chart")
            yield Static(plain("Recent failures"), classes="detail-section")
            yield FastTable(id="history-failures", cursor_type="row")

    def on_mount(self) -> None:
        table = self.query_one(DataTable)
        table.add_columns("When", "Class", "Status", "Latency", "Error")
        self.refresh_view()
        table.focus()

    def _view(self) -> EndpointView | None:
        snapshot = getattr(self.app, "snapshot", None)
        for view in getattr(snapshot, "endpoints", ()):
            if view.name == self.endpoint:
                return view  # type: ignore[no-any-return]
        return None

    def _failures(self) -> tuple[ProbeFailure, ...]:
        monitor = getattr(self.app, "monitor", None)
        window = getattr(monitor, "windows", {}).get(self.endpoint)
        return tuple(window.recent_failures()) if window is not None else ()

    def refresh_view(self) -> None:
        view = self._view()
        title = plain("History: ")
        title.append_text(safe(self.endpoint, 60))
        title.append("  (Esc to close)")
        self.query_one("#dialog-title", Static).update(title)
        if view is None:
            self.query_one("#history-stats", Static).update(plain("no data"))
            return
        history = list(view.latency_history)
        stats = plain(f"{state_label(view.state)}  ")
        stats.append_text(safe(view.url, 80))
        if history:
            stats.append(
                f"\nlatency over last {len(history)} probes: min {fmt_ms(min(history))}  "
                f"max {fmt_ms(max(history))}  p95 {fmt_ms(view.p95_ms)}"
            )
        self.query_one("#history-stats", Static).update(stats)
        self.query_one(Sparkline).data = history or [0.0]
        table = self.query_one(DataTable)
        table.clear()
        for failure in reversed(self._failures()):
            table.add_row(
                plain(fmt_when(failure.at)),
                safe(failure.outcome, 20),
                plain(str(failure.status_code) if failure.status_code is not None else "—"),
                plain(fmt_ms(failure.latency_ms)),
                safe(failure.error, 200),
            )

    def action_close(self) -> None:
        self.dismiss(None)
