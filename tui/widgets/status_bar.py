"""Top line: app and screen name, mode badges, last update and clock."""

from __future__ import annotations

from datetime import datetime

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.widgets import Static

from tui.render import fmt_clock, fmt_hhmm, plain


class StatusBar(Horizontal):
    DEFAULT_CSS = """
    StatusBar { height: 1; width: 1fr; }
    StatusBar > Static { width: auto; height: 1; text-wrap: nowrap; text-overflow: ellipsis; }
    StatusBar > #status-title { width: 1fr; min-width: 0; }
    StatusBar > #status-clock { dock: right; width: auto; padding-left: 1; }
    """
    # the clock is docked: laid out first, so the title and badges give way, never the clock

    def __init__(self, title: str, *, seconds: bool = True) -> None:
        """``seconds=False`` (the wall): the clock shows minutes, so it redraws once a minute."""
        super().__init__(id="status-bar")
        self._title = title
        self._clock_format = fmt_clock if seconds else fmt_hhmm
        self._state: tuple[object, ...] | None = None
        self._badges: tuple[str, ...] | None = None
        self._badges_widget = Static(id="status-badges")
        self._clock = Static(id="status-clock")
        self._clock_width = 0

    def compose(self) -> ComposeResult:
        yield Static(plain(f"opswatch · {self._title}"), id="status-title")
        yield self._badges_widget
        yield self._clock

    def show(self, *, now: datetime, updated: datetime | None, badges: tuple[str, ...]) -> None:
        state = (self._clock_format(now), fmt_clock(updated), badges)
        if state == self._state:
            return
        self._state = state
        if badges != self._badges:
            self._badges = badges
            badge_text = Text(end="")
            for badge in badges:
                badge_text.append(f" {badge} ", style="reverse")
                badge_text.append(" ")
            self._badges_widget.update(badge_text)
        text = f"updated {state[1]}  {state[0]}"
        self._clock.update(plain(text), layout=len(text) != self._clock_width)  # re-measured if it grew
        self._clock_width = len(text)
