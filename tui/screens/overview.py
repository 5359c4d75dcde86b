"""1 Overview: endpoint tiles, alerts, DLQ backlog, event failures and database health."""

from __future__ import annotations

from datetime import datetime

from rich.text import Text
from textual import events
from textual.app import ComposeResult
from textual.containers import Grid, VerticalScroll

from core.snapshot import AlertView, EndpointView, Severity, Snapshot
from tui.render import (
    Palette,
    age_between,
    alerts_unknown,
    fmt_age,
    fmt_bytes,
    fmt_count,
    fmt_ms,
    plain,
    safe,
    severity_label,
)
from tui.screens.base import OpsScreen
from tui.widgets.endpoint_tile import EndpointTile, Thresholds
from tui.widgets.gauge import GaugeValue, gauge_text
from tui.widgets.sparkline_tile import SparkTile

FIRING = ("firing", "flapping")
TileArgs = tuple[EndpointView, Thresholds, Palette, datetime, str | None]
TILE_WIDTH = 38
WALL_TILE_WIDTH = 52
MIN_TILE_WIDTH = 30
"""Narrowest endpoint tile: name, state and down age on one line."""
TILE_HEIGHTS = (3, 4, 5, 6, 7)
MAX_COLUMNS = 6
WALL_TILE_HEIGHTS = (8, 5)  # styles/wall.tcss: Screen.-wall (and .-short) #endpoint-grid


def alert_line(alert: AlertView, age: str) -> Text:
    label = severity_label(alert.severity) if alert.state in FIRING else f"… {alert.state.upper()}"
    text = Text(end="", no_wrap=True, overflow="ellipsis")
    text.append(label + " ")
    text.append_text(safe(alert.rule, 40))
    if alert.scope:
        text.append(" ")
        text.append_text(safe(alert.scope, 40))
    text.append(f" {age}")
    if alert.acknowledged_by:
        text.append(" ack")
    if alert.silenced:
        text.append(" silenced")
    if alert.suppressed_by:
        text.append(" held by ")
        text.append_text(safe(alert.suppressed_by, 40))
    return text


def not_green(severity: Severity) -> Severity:
    """Unknown is never green: OK becomes INFO, anything worse stays."""
    return Severity.INFO if severity is Severity.OK else severity


def fit_grid(count: int, width: int, height: int, columns: int) -> tuple[int, int | None]:
    """(columns, tile height) showing all ``count`` tiles in ``width`` x ``height`` cells.

    Tallest tiles first, then the fewest columns (from ``columns``, the comfortable count, up to
    as many ``MIN_TILE_WIDTH`` tiles as fit). Height None: even the smallest tiles do not all fit,
    so the grid keeps ``columns`` and scrolls.
    """
    widest = max(1, min(MAX_COLUMNS, (width + 1) // (MIN_TILE_WIDTH + 1)))
    best: tuple[int, int | None] = (columns, None)
    for cols in range(min(columns, widest), widest + 1):
        rows = -(-max(count, 1) // cols)
        tile = min(TILE_HEIGHTS[-1], height // rows)
        if tile >= TILE_HEIGHTS[0] and (best[1] is None or tile > best[1]):
            best = (cols, tile)
    return best


def held(alert: AlertView) -> bool:
    """Silenced, or held back while its cause fires: shown, but not counted as needing action."""
    return alert.silenced or alert.suppressed_by is not None


class OverviewScreen(OpsScreen):
    SCREEN_TITLE = "Overview"

    def __init__(self) -> None:
        super().__init__()
        self._tiles: dict[str, EndpointTile] = {}
        self._hidden: dict[str, TileArgs] = {}
        """Updates for tiles scrolled out of view: applied when they may be seen again."""
        self._scroll = VerticalScroll(id="overview-endpoints")
        self._fitted: tuple[object, ...] | None = None

    def compose_body(self) -> ComposeResult:
        with Grid(id="overview-panels"):
            yield SparkTile("Alerts", id="panel-alerts")
            yield SparkTile("Dead letters", id="panel-dlq")
            yield SparkTile("Event failures", spark=True, id="panel-events")
            yield SparkTile("Database", id="panel-db")
        with self._scroll:
            yield Grid(id="endpoint-grid")

    def on_mount(self) -> None:
        super().on_mount()
        self.watch(self._scroll, "scroll_y", self._scrolled, init=False)

    def _scrolled(self) -> None:
        self.call_after_refresh(self._show_hidden)

    def _show_hidden(self) -> None:
        hidden, self._hidden = self._hidden, {}
        for name, args in hidden.items():
            tile = self._tiles.get(name)
            if tile is not None:
                tile.show(*args)

    def on_resize(self, event: events.Resize) -> None:
        width = event.size.width
        tile_width = WALL_TILE_WIDTH if self.ops.wall else TILE_WIDTH
        self._set_columns(max(1, min(MAX_COLUMNS, width // tile_width)))
        self.set_class(width < 100, "-narrow")
        self.set_class(event.size.height < 30, "-short")
        self._fitted = None
        self.call_after_refresh(self._fit_tiles)
        self.call_after_refresh(self._show_hidden)
        if self.applied is not None:  # panel bodies fit their new height
            self.call_after_refresh(self.receive, self.applied, force=True)

    def _wall_columns(self) -> int:
        for n in range(1, MAX_COLUMNS + 1):
            if self.has_class(f"-cols-{n}"):
                return n
        return 2  # styles/overview.tcss: #endpoint-grid grid-size

    def _set_columns(self, columns: int) -> None:
        for n in range(1, MAX_COLUMNS + 1):
            self.set_class(n == columns, f"-cols-{n}")

    def _fit_tiles(self) -> None:
        """Endpoint tiles reflow and shrink so that all of them show without scrolling, if they can."""
        if not self._scroll.is_mounted:
            return
        region = self._scroll.region
        key = (region.width, region.height, len(self._tiles))
        if key == self._fitted or region.height <= 0:
            return
        self._fitted = key
        if self.ops.wall:
            # the wall keeps its tall tiles; when they all fit, their rows share the whole height
            columns = self._wall_columns()
            rows = -(-max(len(self._tiles), 1) // columns)
            tile = WALL_TILE_HEIGHTS[1] if self.has_class("-short") else WALL_TILE_HEIGHTS[0]
            self.set_class(rows * tile <= region.height, "-wall-fill")
            return
        width = region.width - 2  # the scroll area's padding
        columns, height = fit_grid(len(self._tiles), width, region.height, max(1, width // TILE_WIDTH))
        self._set_columns(columns)
        for h in TILE_HEIGHTS:
            self.set_class(h == height, f"-tile-h{h}")

    def apply_snapshot(self, snapshot: Snapshot) -> None:
        self._sync_tiles(snapshot)
        self.call_after_refresh(self._fit_tiles)
        self._show_alerts(snapshot)
        self._show_dlq(snapshot)
        self._show_events(snapshot)
        self._show_db(snapshot)

    def _sync_tiles(self, snapshot: Snapshot) -> None:
        names = [e.name for e in snapshot.endpoints]
        fresh = names != list(self._tiles)
        if fresh:
            grid = self.query_one("#endpoint-grid", Grid)
            grid.remove_children()
            self._tiles = {name: EndpointTile(name) for name in names}
            self._hidden.clear()
            grid.mount_all(self._tiles.values())
        stale = self.stale(snapshot, "probes", self.ops.probe_stale_after)
        now = self.now()
        for view in snapshot.endpoints:
            tile = self._tiles.get(view.name)
            if tile is None:
                continue
            args: TileArgs = (view, self.ops.thresholds, self.palette, now, stale)
            # a tile out of view is not drawn: updating it would only cost a re-layout
            if fresh or self.can_view_partial(tile):
                tile.show(*args)
            else:
                self._hidden[view.name] = args

    @staticmethod
    def _body_lines(tile: SparkTile, default: int) -> int:
        """Lines the panel's body can show (``default`` before the first layout)."""
        height = tile.query_one(".tile-body").size.height
        return height if height > 0 else default

    def _show_alerts(self, snapshot: Snapshot) -> None:
        now = self.now()
        active = sorted(
            (a for a in snapshot.alerts if a.state in (*FIRING, "pending")),
            key=lambda a: (held(a), a.state not in FIRING, -a.severity.rank, a.since),
        )
        live = [a for a in active if not held(a)]
        critical = sum(1 for a in live if a.state in FIRING and a.severity is Severity.CRITICAL)
        warning = sum(1 for a in live if a.state in FIRING and a.severity is Severity.WARNING)
        pending = sum(1 for a in live if a.state == "pending")
        tile = self.query_one("#panel-alerts", SparkTile)
        unknown = alerts_unknown(snapshot.db)
        if unknown is not None and not active:  # no counts: "0 crit" would be a guess
            body = plain(f"? UNKNOWN alert state\n{unknown}")
        else:
            body = plain(f"✖ {critical} crit  ▲ {warning} warn  … {pending} pending")
        if len(live) < len(active):
            body.append(f"  ⏸ {len(active) - len(live)} held")
        body.no_wrap = True
        body.overflow = "ellipsis"
        lines = max(1, self._body_lines(tile, 5) - 1)  # below the counts line
        if unknown is not None and active:
            body.append(f"\n? {unknown}")
            lines -= 1
        shown = active if len(active) <= lines else active[: max(1, lines - 1)]
        for alert in shown:
            body.append("\n")
            body.append_text(alert_line(alert, fmt_age(age_between(alert.since, now))))
        if len(shown) < len(active):
            more = f"+{len(active) - len(shown)} more (5 Alerts)"
            body.append(f"\n{more}" if lines > 1 else f"  {more}")
        if not active and unknown is None:
            body.append("\n✔ no active alerts")
        severity = snapshot.worst_severity
        if unknown is not None:
            severity = not_green(severity)
        big = str(critical + warning) if active or unknown is None else "-"
        tile.show(body, severity=severity, big=big)

    def _show_dlq(self, snapshot: Snapshot) -> None:
        dlq = snapshot.dlq
        stale = self.stale(snapshot, "summaries", self.ops.summary_stale_after)
        if dlq is None:
            self.query_one("#panel-dlq", SparkTile).show(
                plain("no data yet"), severity=Severity.INFO, stale=stale
            )
            return
        pending, oldest = f"pending {fmt_count(dlq.pending)}", f"oldest {fmt_age(dlq.oldest_pending_age_s)}"
        flow = f"in {dlq.inflow_per_hour:,}/h  out {dlq.outflow_per_hour:,}/h"
        if self._body_lines(self.query_one("#panel-dlq", SparkTile), 3) >= 3:
            body = plain(f"{pending}\n{oldest}\n{flow}")
        else:
            body = plain(f"{pending}  {oldest}\n{flow}")
        severity = Severity.WARNING if dlq.pending else Severity.OK
        if stale is not None:
            severity = not_green(severity)
        self.query_one("#panel-dlq", SparkTile).show(
            body, severity=severity, stale=stale, big=str(dlq.pending)
        )

    def _show_events(self, snapshot: Snapshot) -> None:
        events_ = snapshot.events
        stale = self.stale(snapshot, "summaries", self.ops.summary_stale_after)
        tile = self.query_one("#panel-events", SparkTile)
        if events_ is None:
            tile.show(plain("no data yet"), severity=Severity.INFO, stale=stale)
            return
        limit = self.ops.event_threshold
        gauge = GaugeValue("1h", float(events_.last_hour), limit, None, maximum=max((limit or 5) * 2, 1))
        body = gauge_text(gauge, tile.content_size.width or 24, self.palette)
        body.append(
            f"\n24h {events_.last_24h:,}  (> {limit:g}/h alerts)" if limit else f"\n24h {events_.last_24h:,}"
        )
        severity = gauge.severity if limit else Severity.OK
        if stale is not None:
            severity = not_green(severity)
        tile.show(
            body,
            severity=severity,
            trend=[float(v) for v in events_.hourly],
            stale=stale,
            big=str(events_.last_hour),
        )

    def _show_db(self, snapshot: Snapshot) -> None:
        db, stats = snapshot.db, snapshot.db_stats
        tile = self.query_one("#panel-db", SparkTile)
        if db is None:
            tile.show(plain("checking..."), severity=Severity.INFO)
            return
        if db.up:
            body = plain(f"● UP  rtt {fmt_ms(db.rtt_ms)}")
            severity = Severity.OK
        else:
            body = plain(f"✖ DOWN for {fmt_age(age_between(db.down_since, self.now()))}")
            severity = Severity.CRITICAL
        if stats is not None:
            conn = f"conn {stats.connections_used}/{stats.max_connections}"
            size = f"size {fmt_bytes(stats.database_bytes)}"
            slowest = "" if stats.slowest_mean_ms is None else f"slowest {fmt_ms(stats.slowest_mean_ms)}"
            room = self._body_lines(tile, 3)
            if room >= 4:
                body.append(f"\n{conn}\n{size}" + (f"\n{slowest} mean" if slowest else ""))
            elif room == 3:
                body.append(f"\n{conn}  {size}" + (f"\n{slowest} mean" if slowest else ""))
            else:
                body.append(f"  {conn}\n{size}" + (f"  {slowest}" if slowest else ""))
        stale = self.stale(snapshot, "db_stats", self.ops.db_stats_stale_after) if stats else None
        big = f"{db.rtt_ms:.1f}" if db.up and db.rtt_ms is not None else "-"
        tile.show(body, severity=severity, stale=stale, big=big)
