"""One endpoint at a glance: state, latency, p95, uptime 24 h, error-rate gauge, sparkline."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import ClassVar

from rich.console import RenderableType
from rich.text import Text
from textual.renderables.sparkline import Sparkline as SparklineRenderable
from textual.strip import Strip
from textual.visual import Visual, visualize
from textual.widget import Widget

from core.api import AlertRule
from core.snapshot import EndpointState, EndpointView, Severity
from tui.render import (
    DEFAULT_PALETTE,
    Palette,
    age_between,
    fmt_age,
    fmt_ms,
    fmt_ratio_pct,
    plain,
    safe,
    state_label,
    state_severity,
)
from tui.widgets.gauge import GaugeValue, gauge_text


@dataclass(frozen=True)
class Thresholds:
    """Alert thresholds the tiles compare against (error rate in percent, latency in ms)."""

    error_warning: float | None = 5.0
    error_critical: float | None = 10.0
    latency_warning: float | None = 2000.0
    latency_critical: float | None = 5000.0


def tile_severity(view: EndpointView, t: Thresholds) -> Severity:
    if view.state is EndpointState.DOWN:
        return Severity.CRITICAL
    err = None if view.error_rate is None else view.error_rate * 100
    lat = view.last_latency_ms
    if (err is not None and t.error_critical is not None and err >= t.error_critical) or (
        lat is not None and t.latency_critical is not None and lat >= t.latency_critical
    ):
        return Severity.CRITICAL
    if (err is not None and t.error_warning is not None and err >= t.error_warning) or (
        lat is not None and t.latency_warning is not None and lat >= t.latency_warning
    ):
        return Severity.WARNING
    return state_severity(view.state)


class EndpointTile(Widget):
    """One widget, not a container of five: the overview shows 50 of these, and every widget
    costs on each redraw, style pass and screen switch. Lines from the top: title, latency,
    uptime, error gauge, sparkline; a shorter tile leaves out the gauge (4 lines), then the
    uptime (3), then the sparkline (2); a 1-line tile shows the latency after the title if it fits."""

    COMPONENT_CLASSES: ClassVar[set[str]] = {
        "endpoint-tile--title",
        "endpoint-tile--spark-min",
        "endpoint-tile--spark-max",
    }
    DEFAULT_CSS = """
    EndpointTile { height: auto; }
    EndpointTile > .endpoint-tile--title { text-style: bold; }
    EndpointTile > .endpoint-tile--spark-max { color: $primary; }
    EndpointTile > .endpoint-tile--spark-min { color: $primary 30%; }
    """

    def __init__(self, name: str, *, id: str | None = None) -> None:
        super().__init__(id=id, classes="tile endpoint-tile")
        self.endpoint = name
        self._key: tuple[object, ...] | None = None
        self._lines: tuple[Text, ...] = (safe(name, 60),)
        self._gauge: GaugeValue | None = None
        self._history: tuple[float, ...] = ()
        self._latency: float | None = None
        self._strips: dict[int, tuple[object, Strip]] = {}

    @property
    def shown(self) -> bool:
        """True once a view has been shown."""
        return self._key is not None

    def show(
        self, view: EndpointView, t: Thresholds, palette: Palette, now: datetime, stale: str | None
    ) -> None:
        now_age = fmt_age(age_between(view.down_since, now)) if view.state is EndpointState.DOWN else ""
        key = (view, t, palette, stale, now_age)
        if key == self._key:
            return
        self._key = key
        severity = tile_severity(view, t)
        for sev in Severity:
            self.set_class(sev is severity, f"-{sev.value}")
        self.set_class(stale is not None, "-stale")
        title = safe(view.name, 40)
        title.stylize("bold")
        title.append("  ")
        title.append_text(
            Text(state_label(view.state), style=palette.for_severity(state_severity(view.state)))
        )
        if view.state is EndpointState.DOWN and view.down_since is not None:
            title.append(f" {now_age}")
        if stale is not None:
            title.append(f"  STALE {stale}", style="reverse")
        lines = (
            title,
            plain(f"now {fmt_ms(view.last_latency_ms)}  p95 {fmt_ms(view.p95_ms)}"),
            plain(f"up 24h {fmt_ratio_pct(view.uptime_24h, 2)}  err {fmt_ratio_pct(view.error_rate)}"),
        )
        gauge = GaugeValue(
            "err",
            None if view.error_rate is None else view.error_rate * 100,
            t.error_warning,
            t.error_critical,
            maximum=max(20.0, (t.error_critical or 10.0) * 1.5),
            unit="%",
        )
        history = view.latency_history[-60:]
        if (lines, gauge, history) != (self._lines, self._gauge, self._history):
            self._lines, self._gauge, self._history = lines, gauge, history
            self._latency = view.last_latency_ms
            self.refresh()

    def render_line(self, y: int) -> Strip:
        """Line ``y`` of the content; a line is rebuilt only when what it shows changed."""
        width, height = self.size
        style = self.visual_style
        sources = self._sources(height)
        if y >= len(sources) or width <= 0:
            return Strip.blank(width, style.rich_style)
        key, build = sources[y]
        token = (key, width, style)
        cached = self._strips.get(y)
        if cached is not None and cached[0] == token:
            return cached[1]
        content = build(width)
        if isinstance(content, Text):
            content.truncate(width, overflow="ellipsis")
        strips = Visual.to_strips(self, visualize(self, content), width, 1, style)
        strip = strips[0] if strips else Strip.blank(width, style.rich_style)
        self._strips[y] = (token, strip)
        return strip

    def _sources(self, height: int) -> list[tuple[object, Callable[[int], RenderableType]]]:
        """(what the line depends on, how to build it) for each line, top to bottom."""
        lines = self._lines
        title_style = self.get_component_rich_style("endpoint-tile--title", partial=True)

        def title(_width: int) -> Text:
            text = lines[0].copy()
            text.stylize_before(title_style)
            return text

        if len(lines) == 1:
            return [((lines[0], title_style), title)]
        if height <= 1:

            def compact(width: int) -> Text:
                text = title(width)
                latency = plain(f"  {fmt_ms(self._latency)}")
                if self._latency is not None and text.cell_len + latency.cell_len <= width:
                    text.append_text(latency)
                return text

            return [((lines[0], title_style, self._latency), compact)]
        rows: list[tuple[object, Callable[[int], RenderableType]]] = [((lines[0], title_style), title)]
        rows.append((lines[1], lambda _w: lines[1].copy()))
        if height >= 4:
            rows.append((lines[2], lambda _w: lines[2].copy()))
        gauge = self._gauge
        if height >= 5 and gauge is not None:
            palette = getattr(self.app, "palette", DEFAULT_PALETTE)
            rows.append(((gauge, palette), lambda w: gauge_text(gauge, w, palette)))
        if height >= 3:
            spark_colors = (
                self.get_component_rich_style("endpoint-tile--spark-min"),
                self.get_component_rich_style("endpoint-tile--spark-max"),
            )
            rows.append(((self._history, spark_colors), self._sparkline))
        return rows

    def _sparkline(self, width: int) -> RenderableType:
        _, base = self.background_colors
        low = base + self.get_component_styles("endpoint-tile--spark-min").color
        high = base + self.get_component_styles("endpoint-tile--spark-max").color
        return SparklineRenderable(
            list(self._history) or [0.0],
            width=width,
            height=1,
            min_color=low.rich_color,
            max_color=high.rich_color,
            summary_function=max,
        )


def thresholds_from_rules(rules: Iterable[AlertRule]) -> Thresholds:
    """Tile thresholds from the configured alert rules (first rule per metric wins)."""
    by_metric: dict[str, AlertRule] = {}
    for rule in rules:
        by_metric.setdefault(rule.metric, rule)
    err = by_metric.get("endpoint.error_rate")
    lat = by_metric.get("endpoint.latency_ms")
    return Thresholds(
        error_warning=err.warning if err else None,
        error_critical=err.critical if err else None,
        latency_warning=lat.warning if lat else None,
        latency_critical=lat.critical if lat else None,
    )
