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
        self._key: tuple[object, ...] = (None, None, None, None, None)
        self._title_widget = Static(plain(title), classes="tile-title")
        self._big = Digits("", classes="tile-big")
        self._body = Static(classes="tile-body")
        self._sparkline = Sparkline([0.0], classes="tile-spark")

    def compose(self) -> ComposeResult:
        yield self._title_widget
        yield self._big
        yield self._body
        if self._spark:
            yield self._sparkline

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
        old = self._key
        if key == old:
            return
        self._key = key
        for sev in Severity:
            self.set_class(sev is severity, f"-{sev.value}")
        self.set_class(stale is not None, "-stale")
        if stale != old[3] or old[0] is None:
            title = plain(self._title, "bold")
            if stale is not None:
                title.append(f"  STALE {stale}", style="reverse")
            self._title_widget.update(title, layout=False)
        if body != old[0]:
            self._body.update(body, layout=False)
        if big != old[4]:
            self._big.update(big)
        if self._spark and trend is not None and key[2] != old[2]:
            self._sparkline.data = list(trend) or [0.0]
