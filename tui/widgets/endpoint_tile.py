"""One endpoint at a glance: state, latency, p95, uptime 24 h, error-rate gauge, sparkline."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import Sparkline, Static

from core.config import AlertRule
from core.snapshot import EndpointState, EndpointView, Severity
from tui.render import (
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
from tui.widgets.gauge import Gauge, GaugeValue


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


class EndpointTile(Vertical):
    DEFAULT_CSS = """
    EndpointTile { height: auto; }
    EndpointTile > Static { height: 1; width: 1fr; }
    EndpointTile > Sparkline { height: 1; }
    """

    def __init__(self, name: str, *, id: str | None = None) -> None:
        super().__init__(id=id, classes="tile endpoint-tile")
        self.endpoint = name
        self._key: tuple[object, ...] | None = None
        self._ready = False
        self._pending: tuple[EndpointView, Thresholds, Palette, datetime, str | None] | None = None

    def compose(self) -> ComposeResult:
        yield Static(safe(self.endpoint, 60), classes="tile-title")
        yield Static(classes="tile-line tile-latency")
        yield Static(classes="tile-line tile-uptime")
        yield Gauge(classes="tile-gauge")
        yield Sparkline([], classes="tile-spark")

    def on_mount(self) -> None:
        self._ready = True
        if self._pending is not None:
            self.show(*self._pending)

    def show(
        self, view: EndpointView, t: Thresholds, palette: Palette, now: datetime, stale: str | None
    ) -> None:
        if not self._ready:
            self._pending = (view, t, palette, now, stale)
            return
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
        self.query_one(".tile-title", Static).update(title, layout=False)
        self.query_one(".tile-latency", Static).update(
            plain(f"now {fmt_ms(view.last_latency_ms)}  p95 {fmt_ms(view.p95_ms)}"), layout=False
        )
        self.query_one(".tile-uptime", Static).update(
            plain(f"up 24h {fmt_ratio_pct(view.uptime_24h, 2)}  err {fmt_ratio_pct(view.error_rate)}"),
            layout=False,
        )
        self.query_one(Gauge).set_value(
            GaugeValue(
                "err",
                None if view.error_rate is None else view.error_rate * 100,
                t.error_warning,
                t.error_critical,
                maximum=max(20.0, (t.error_critical or 10.0) * 1.5),
                unit="%",
            )
        )
        self.query_one(Sparkline).data = list(view.latency_history[-60:]) or [0.0]


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
