"""OpsWatchApp: the console. Thin: wires the Monitor to screens, owns global keys and modes.

The Monitor runs inside the app's event loop (started in a worker on mount); each
published Snapshot becomes a ``SnapshotUpdated`` message (a burst collapses to the newest)
that only the visible screen applies. The wall keeps just the newest snapshot and applies
it on its clock tick (at most every ``WALL_APPLY_INTERVAL``): one redraw for both.
"""

from __future__ import annotations

import asyncio
import gc
import os
from collections import deque
from collections.abc import Callable, Mapping
from functools import partial
from importlib import resources
from pathlib import Path, PurePath
from typing import TYPE_CHECKING, Any, ClassVar

from textual import work
from textual.app import App
from textual.binding import BindingType
from textual.notifications import SeverityLevel
from textual.screen import ModalScreen, Screen
from textual.timer import Timer

from core.api import SUMMARIES_EVERY_S, Clock, DatabaseUnavailable, SchemaStatus, utcnow
from core.snapshot import Snapshot
from tui.keymap import ActionsProvider, bind, known_ids, validate_keymap
from tui.messages import SnapshotUpdated
from tui.render import Palette
from tui.screens.alerts import AlertsScreen
from tui.screens.audit import AuditScreen
from tui.screens.base import OpsScreen, WorkerErrors
from tui.screens.database import DatabaseScreen
from tui.screens.endpoints import EndpointsScreen
from tui.screens.help import HelpScreen
from tui.screens.overview import OverviewScreen
from tui.screens.triage import DeadLettersScreen, EventsScreen
from tui.textual_internals import mark_styled, start_offstage
from tui.themes import THEMES, resolve_theme
from tui.widgets.confirm_modal import ConfirmModal
from tui.widgets.endpoint_tile import Thresholds, thresholds_from_rules
from tui.widgets.live_table import LiveTable
from tui.widgets.paged_table import PagedTable

if TYPE_CHECKING:
    from core.api import Services

SCREENS: dict[str, type[OpsScreen]] = {
    "overview": OverviewScreen,
    "endpoints": EndpointsScreen,
    "dead_letters": DeadLettersScreen,
    "events": EventsScreen,
    "alerts": AlertsScreen,
    "database": DatabaseScreen,
    "audit": AuditScreen,
}
ORDER = tuple(SCREENS)
WALL_APPLY_INTERVAL = 5.0
"""The wall redraws its data at most every 5 s, on a clock tick: read from across a room, and
each redraw costs a near full-screen paint."""
CLOCK_TICK_S = 1.0
PREBUILD = ("dead_letters", "events")
"""Screens built while the console idles after its first data paint: opening one is a paint."""
PREBUILD_FALLBACK_S = 3.0
PREBUILD_GAP_S = 0.1
SETTLE_AFTER_S = 1.0
STYLE_FILES = (
    "app.tcss",
    "overview.tcss",
    "tables.tcss",
    "database.tcss",
    "triage.tcss",
    "modals.tcss",
    "wall.tcss",
)


def style_paths() -> list[str | PurePath]:
    base = Path(str(resources.files("styles")))
    return [base / name for name in STYLE_FILES]


class OpsWatchApp(WorkerErrors, App[None]):
    TITLE = "opswatch"
    CSS_PATH = style_paths()
    DEFAULT_MODE = "overview"
    COMMANDS = App.COMMANDS | {ActionsProvider}
    BINDINGS: ClassVar[list[BindingType]] = [
        bind("app.quit", "q", "quit_app", "Quit"),
        bind("wall.pause", "space", "toggle_pause", "Pause cycling", show=False),
    ]

    def __init__(
        self,
        services: Services,
        *,
        wall: bool = False,
        theme: str | None = None,
        clock: Clock | None = None,
        environ: Mapping[str, str] | None = None,
        prebuild: bool = True,
    ) -> None:
        """``prebuild=False``: build every screen on its first visit (benchmarks compare)."""
        super().__init__()
        self.services = services
        self.monitor = monitor = services.monitor
        self.config = services.config
        self.wall = wall
        self.read_only = wall or bool(monitor.read_only)
        self.clock: Clock = clock or getattr(monitor, "clock", None) or utcnow
        self.snapshot: Snapshot = monitor.snapshot
        self.notices: deque[tuple[str, str]] = deque(maxlen=100)
        self.paused = False
        self._bulk_cancels: set[asyncio.Event] = set()
        self._unsubscribe: Callable[[], None] | None = None
        self._cycle_timer: Timer | None = None
        ui = self.config.ui
        self.thresholds: Thresholds = thresholds_from_rules(self.config.alerts.rules)
        self.event_threshold: float | None = next(
            (
                r.warning if r.warning is not None else r.critical
                for r in self.config.alerts.rules
                if r.metric == "events.failures_last_hour"
            ),
            None,
        )
        self.confirm_typed_over: int = self.config.triage.confirm_typed_over
        self.summary_stale_after = 2 * max(ui.refresh_interval, SUMMARIES_EVERY_S) + 1.0
        self.db_stats_stale_after = 60.0
        self.probe_stale_after = max((e.interval for e in self.config.endpoints), default=30.0) * 3
        self.wall_screens: tuple[str, ...] = tuple(ui.wall.screens)
        self.apply_interval = WALL_APPLY_INTERVAL if wall else 0.0
        env = os.environ if environ is None else environ
        self.theme_generation = 0
        """Counts theme changes (each re-parses the stylesheet and restyles the screens)."""
        for t in THEMES.values():
            self.register_theme(t)
        requested = theme or ("high-contrast" if wall and ui.theme == "dark" else ui.theme)
        self.theme = resolve_theme(requested, env)
        self.palette = Palette.from_variables(self.get_css_variables())
        keymap, self._keymap_problems = validate_keymap(
            ui.keymap, known_ids([type(self), *SCREENS.values(), PagedTable, LiveTable])
        )
        self.set_keymap(keymap)
        for name in SCREENS:
            self.add_mode(name, partial(self._mode_screen, name))
        self._built: dict[str, OpsScreen] = {}
        """The base screen of each mode built so far: pre-built (off-stage) or shown."""
        self._prebuild_on = prebuild
        self._prebuild: list[str] | None = None
        self._frozen_gc = False
        self.settled = False
        """True once the screens are pre-built and start-up garbage is out of the collector's way."""

    # -- lifecycle -----------------------------------------------------------------------------

    def on_mount(self) -> None:
        first = self.wall_screens[0] if self.wall else "overview"
        if first != self.current_mode:
            self.switch_mode(first)
        for problem in self._keymap_problems:
            self.report(problem, severity="warning")
        self.set_interval(CLOCK_TICK_S, self._tick, name="clock")
        if self.wall:
            self._cycle_timer = self.set_interval(
                self.config.ui.wall.cycle_interval, self._cycle_wall, name="wall-cycle"
            )
        self.set_timer(PREBUILD_FALLBACK_S, self._start_prebuild)
        self._run_monitor()

    # -- screens built ahead of time ---------------------------------------------------------------

    def _mode_screen(self, name: str) -> Screen[Any]:
        """The screen of mode ``name``: the pre-built one if there is one (then kept in the map).

        Textual re-parses the stylesheet and restyles every screen (twice) when a screen's CSS
        update count lags the app's; a screen registered now is styled with the current sheet
        (theme changes restyle every registered screen), so it starts in step.
        """
        screen = self._built.get(name) or SCREENS[name]()
        self._built[name] = screen
        mark_styled(self, screen)
        return screen

    def built_screen(self, mode: str) -> Screen[Any] | None:
        """The screen of ``mode`` if it exists already (built ahead of time or visited)."""
        return self._built.get(mode)

    def _start_prebuild(self) -> None:
        if self._prebuild is not None or not self.is_running:
            return
        names = [n for n in self.wall_screens if n != self.current_mode] if self.wall else list(PREBUILD)
        self._prebuild = [n for n in names if n in SCREENS] if self._prebuild_on else []
        self._prebuild_next()

    def _prebuild_next(self) -> None:
        """Compose and mount one screen off-stage (it loads its first data quietly), then the next."""
        while self._prebuild:
            name = self._prebuild.pop(0)
            if name in self._built:
                continue
            screen = SCREENS[name]()
            self._built[name] = screen
            start_offstage(self, screen)
            self.set_timer(PREBUILD_GAP_S, self._prebuild_next)
            return
        self.set_timer(SETTLE_AFTER_S, self._settle)

    def _settle(self) -> None:
        """Start-up objects (widgets, styles, modules: ~200,000) live as long as the console: keep
        the cyclic collector from re-scanning them on every full collection."""
        if not self.is_running or self._frozen_gc:
            return
        gc.collect(1)  # young garbage only: a full collection would stall the screen
        gc.freeze()
        self._frozen_gc = True
        self.settled = True

    @work(exclusive=True, group="monitor", exit_on_error=False, name="monitor start")
    async def _run_monitor(self) -> None:
        self._unsubscribe = self.monitor.subscribe(self._on_snapshot)
        await self.monitor.start()
        try:
            schema = await self.services.triage.schema_report()
        except Exception:
            return
        if not schema.ok:  # the reads degrade (channels as #id) or name the config key
            unusable = schema.status is SchemaStatus.UNUSABLE
            self.report(schema.summary(), severity="error" if unusable else "warning", title="App schema")

    def _on_snapshot(self, snapshot: Snapshot) -> None:
        if self.wall:
            self.snapshot = snapshot  # the next clock tick shows it
            return
        self.post_message(SnapshotUpdated(snapshot))

    async def on_unmount(self) -> None:
        if self._frozen_gc:
            gc.unfreeze()
            self._frozen_gc = False
        if self._unsubscribe is not None:
            self._unsubscribe()
        for event in self._bulk_cancels:
            event.set()
        await self.monitor.stop()

    def watch_theme(self, theme: str) -> None:
        self.theme_generation += 1
        self.palette = Palette.from_variables(self.get_css_variables())
        base = self.base_screen
        if base is not None and self.is_running:
            base.receive(self.snapshot, force=True)

    # -- snapshots -----------------------------------------------------------------------------

    @property
    def base_screen(self) -> OpsScreen | None:
        """The opswatch screen of the current mode (under any modal)."""
        try:
            stack = self.screen_stack
        except Exception:
            return None
        return next((s for s in stack if isinstance(s, OpsScreen)), None)

    def on_snapshot_updated(self, message: SnapshotUpdated) -> None:
        self.snapshot = message.snapshot
        base = self.base_screen
        if base is not None:
            base.receive(message.snapshot)
        self._prebuild_when_shown(message.snapshot)

    def _prebuild_when_shown(self, snapshot: Snapshot) -> None:
        if self._prebuild is None and snapshot.dlq is not None:
            self.call_after_refresh(self._start_prebuild)

    def _tick(self) -> None:
        base = self.base_screen
        if base is not None and base.is_mounted:
            if self.wall:
                base.receive(self.snapshot)
                self._prebuild_when_shown(self.snapshot)
            else:
                base.tick()

    def badges(self) -> tuple[str, ...]:
        shown = (
            (self.wall, "WALL"),
            (self.wall and self.paused, "⏸ PAUSED"),
            (self.read_only, "READ-ONLY"),
            (bool(self._bulk_cancels), "BULK RUNNING"),
        )
        return tuple(label for on, label in shown if on)

    async def refresh_monitor(self) -> None:
        """Re-collect summaries after an action so every panel shows its effect."""
        try:
            await self.monitor.refresh_now()
        except DatabaseUnavailable:
            pass

    # -- notifications and errors --------------------------------------------------------------

    def report(self, message: str, *, severity: SeverityLevel = "information", title: str = "") -> None:
        """Tell the operator something; never parsed as markup."""
        self.notices.append((severity, message))
        self.notify(
            message,
            title=title,
            severity=severity,
            markup=False,
            timeout=8 if severity != "information" else 5,
        )

    # -- navigation ----------------------------------------------------------------------------

    def action_goto(self, name: str) -> None:
        if name in SCREENS and not isinstance(self.screen, ModalScreen):
            self.switch_mode(name)

    def action_cycle(self, step: int) -> None:
        order = self.wall_screens if self.wall else ORDER
        current = self.current_mode
        index = order.index(current) if current in order else -1
        self.action_goto(order[(index + step) % len(order)])

    def action_help(self) -> None:
        screen = self.screen
        if isinstance(screen, ModalScreen):
            return
        title = getattr(screen, "SCREEN_TITLE", "") or self.current_mode
        others: dict[str, type[Screen[Any]]] = {
            str(getattr(cls, "SCREEN_TITLE", "") or name): cls for name, cls in SCREENS.items()
        }
        self.push_screen(HelpScreen(screen, title, others))

    def _cycle_wall(self) -> None:
        if not self.paused and not isinstance(self.screen, ModalScreen):
            self.action_cycle(1)

    def action_toggle_pause(self) -> None:
        self.paused = not self.paused
        self._tick()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "toggle_pause":
            return self.wall
        return True

    # -- bulk actions and quitting -------------------------------------------------------------

    def bulk_started(self, cancel: asyncio.Event) -> None:
        self._bulk_cancels.add(cancel)

    def bulk_finished(self, cancel: asyncio.Event) -> None:
        self._bulk_cancels.discard(cancel)

    @property
    def bulk_running(self) -> bool:
        return bool(self._bulk_cancels)

    async def action_quit_app(self) -> None:
        if not self.bulk_running:
            self.exit()
            return
        self._confirm_quit()

    @work(exclusive=True, group="quit", exit_on_error=False)
    async def _confirm_quit(self) -> None:
        from tui.render import plain

        sure = await self.push_screen_wait(
            ConfirmModal(
                "A bulk action is running. Quit anyway?",
                [plain("It stops after the current batch; rows already done stay done.")],
                confirm_label="Stop and quit",
            )
        )
        if sure:
            for event in self._bulk_cancels:
                event.set()
            self.exit()
