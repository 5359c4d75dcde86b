"""A titled panel with a few lines of text and an optional sparkline (trend)."""

from __future__ import annotations

from collections.abc import Sequence

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import Digits, Sparkline, Static

from core.snapshot import Severity
from tui.render import plain


class SparkTile(Vertical):
    DEFAULT_CSS = """
    SparkTile { height: auto; }
    SparkTile > Static { height: 1; width: 1fr; }
    SparkTile > .tile-body { height: 1fr; }
    SparkTile > Sparkline { height: 1; }
    SparkTile > Digits { display: none; width: auto; }
    """

    def __init__(self, title: str, *, spark: bool = False, id: str | None = None) -> None:
        super().__init__(id=id, classes="tile panel-tile")
        self._title = title
        self._spark = spark
        self._key: object = None

    def compose(self) -> ComposeResult:
        yield Static(plain(self._title), classes="tile-title")
        yield Digits("", classes="tile-big")
        yield Static(classes="tile-body")
        if self._spark:
            yield Sparkline([0.0], classes="tile-spark")

    def show(
        self,
        body: Text,
        *,
        severity: Severity = Severity.OK,
        trend: Sequence[float] | None = None,
        stale: str | None = None,
        big: str = "",
    ) -> None:
        """``big`` is the headline number, drawn in large digits on the wall screen."""
        key = (body, severity, tuple(trend or ()), stale, big)
        if key == self._key:
            return
        self._key = key
        for sev in Severity:
            self.set_class(sev is severity, f"-{sev.value}")
        self.set_class(stale is not None, "-stale")
        title = plain(self._title, "bold")
        if stale is not None:
            title.append(f"  STALE {stale}", style="reverse")
        self.query_one(".tile-title", Static).update(title, layout=False)
        self.query_one(".tile-body", Static).update(body, layout=False)
        self.query_one(Digits).update(big)
        if self._spark and trend is not None:
            self.query_one(Sparkline).data = list(trend) or [0.0]
