"""A one-line gauge: value bar against warning/critical thresholds, with a level word."""

from __future__ import annotations

from dataclasses import dataclass

from rich.text import Text
from textual.widget import Widget

from core.snapshot import Severity
from tui.render import DEFAULT_PALETTE, SEVERITY_ICON, Palette


@dataclass(frozen=True)
class GaugeValue:
    label: str
    value: float | None
    warning: float | None
    critical: float | None
    maximum: float
    unit: str = ""

    @property
    def severity(self) -> Severity:
        if self.value is None:
            return Severity.INFO
        if self.critical is not None and self.value >= self.critical:
            return Severity.CRITICAL
        if self.warning is not None and self.value >= self.warning:
            return Severity.WARNING
        return Severity.OK


def gauge_text(g: GaugeValue, width: int, palette: Palette = DEFAULT_PALETTE) -> Text:
    severity = g.severity
    word = {Severity.OK: "OK", Severity.WARNING: "WARN", Severity.CRITICAL: "CRIT", Severity.INFO: "N/A"}[
        severity
    ]
    value = "—" if g.value is None else f"{g.value:.1f}{g.unit}"
    head = f"{g.label} " if g.label else ""
    tail = f" {value} {SEVERITY_ICON[severity]} {word}"
    bar_width = max(4, width - len(head) - len(tail) - 2)
    top = max(g.maximum, g.value or 0.0, 1e-9)

    def col(v: float | None) -> int | None:
        return None if v is None else min(bar_width - 1, int(v / top * bar_width))

    filled = 0 if g.value is None else min(bar_width, round(g.value / top * bar_width))
    marks = {col(g.warning): "┊", col(g.critical): "┃"}
    text = Text(head, end="", no_wrap=True)
    text.append("▕")
    style = palette.for_severity(severity)
    for i in range(bar_width):
        if i < filled:
            text.append("█", style=style)
        else:
            text.append(marks.get(i, "·"), style=palette.muted)
    text.append("▏")
    text.append(tail, style=style)
    return text


class Gauge(Widget):
    DEFAULT_CSS = """
    Gauge { height: 1; width: 1fr; }
    """

    def __init__(
        self, value: GaugeValue | None = None, *, id: str | None = None, classes: str | None = None
    ) -> None:
        super().__init__(id=id, classes=classes)
        self._value = value

    def set_value(self, value: GaugeValue) -> None:
        if value != self._value:
            self._value = value
            self.refresh()

    def render(self) -> Text:
        if self._value is None:
            return Text("")
        palette = getattr(self.app, "palette", DEFAULT_PALETTE)
        return gauge_text(self._value, self.content_size.width, palette)
