"""Top line: app and screen name, mode badges, last update and clock."""

from __future__ import annotations

from datetime import datetime

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.widgets import Static

from tui.render import fmt_clock, plain


class StatusBar(Horizontal):
    DEFAULT_CSS = """
    StatusBar { height: 1; width: 1fr; }
    StatusBar > #status-title { width: 1fr; }
    StatusBar > Static { width: auto; height: 1; }
    StatusBar > #status-clock { width: 28; text-align: right; }
    """

    def __init__(self, title: str) -> None:
        super().__init__(id="status-bar")
        self._title = title
        self._state: tuple[object, ...] | None = None
        self._badges: tuple[str, ...] | None = None

    def compose(self) -> ComposeResult:
        yield Static(plain(f"opswatch · {self._title}"), id="status-title")
        yield Static(id="status-badges")
        yield Static(id="status-clock")

    def show(self, *, now: datetime, updated: datetime | None, badges: tuple[str, ...]) -> None:
        state = (fmt_clock(now), fmt_clock(updated), badges)
        if state == self._state:
            return
        self._state = state
        badge_text = Text(end="")
        for badge in badges:
            badge_text.append(f" {badge} ", style="reverse")
            badge_text.append(" ")
        badges_widget = self.query_one("#status-badges", Static)
        if badges != self._badges:
            self._badges = badges
            badges_widget.update(badge_text)
        self.query_one("#status-clock", Static).update(plain(f"updated {state[1]}  {state[0]}"), layout=False)
