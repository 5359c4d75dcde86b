"""OpsWatchApp: the console. Thin: wires the Monitor to screens, owns global keys and modes.

The Monitor runs inside the app's event loop (started in a worker on mount); each
published Snapshot becomes a ``SnapshotUpdated`` message (a burst collapses to the newest)
that only the visible screen applies.
"""

from __future__ import annotations

import asyncio
import os
from collections import deque
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path, PurePath
from typing import TYPE_CHECKING, Any, ClassVar

from textual import work
from textual.app import App
from textual.binding import BindingType
from textual.notifications import SeverityLevel
from textual.screen import ModalScreen, Screen
from textual.timer import Timer

from core.db import DatabaseUnavailable
from core.monitor import SUMMARIES_EVERY_S
from core.snapshot import Snapshot
from tui.keymap import ActionsProvider, bind, known_ids, validate_keymap
from tui.messages import SnapshotUpdated
from tui.render import Palette
from tui.screens.alerts import AlertsScreen
from tui.screens.audit import AuditScreen
from tui.screens.base import OpsScreen, WorkerErrors
from tui.screens.database import DatabaseScreen
from tui.screens.dead_letters import DeadLettersScreen
from tui.screens.endpoints import EndpointsScreen
from tui.screens.events import EventsScreen
from tui.screens.help import HelpScreen
from tui.screens.overview import OverviewScreen
from tui.themes import THEMES, resolve_theme
from tui.widgets.confirm_modal import ConfirmModal
from tui.widgets.endpoint_tile import Thresholds, thresholds_from_rules
from tui.widgets.paged_table import PagedTable

if TYPE_CHECKING:
    from core.monitor import Monitor

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
WALL_APPLY_INTERVAL = 2.0
"""The wall redraws at most every 2 s: nobody reads it faster, and it keeps idle CPU low."""
STYLE_FILES = ("app.tcss", "overview.tcss", "tables.tcss", "triage.tcss", "modals.tcss", "wall.tcss")


def style_paths() -> list[str | PurePath]:
    base = Path(str(resources.files("styles")))
    return [base / name for name in STYLE_FILES]


class OpsWatchApp(WorkerErrors, App[None]):
    TITLE = "opswatch"
    CSS_PATH = style_paths()
    MODES: ClassVar[dict[str, str | Callable[[], Screen[Any]]]] = dict(SCREENS)
    DEFAULT_MODE = "overview"
    COMMANDS = App.COMMANDS | {ActionsProvider}
    BINDINGS: ClassVar[list[BindingType]] = [
        bind("app.quit", "q", "quit_app", "Quit"),
        bind("wall.pause", "space", "toggle_pause", "Pause cycling", show=False),
    ]

    def __init__(
        self,
        monitor: Monitor,
        *,
        wall: bool = False,
        theme: str | None = None,
        clock: Callable[[], datetime] | None = None,
        environ: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__()
        self.monitor = monitor
        self.config = monitor.config
        self.wall = wall
        self.read_only = wall or bool(monitor.read_only)
        self.clock: Callable[[], datetime] = clock or getattr(monitor, "clock", None) or _utcnow
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
        for t in THEMES.values():
            self.register_theme(t)
        requested = theme or ("high-contrast" if wall and ui.theme == "dark" else ui.theme)
        self.theme = resolve_theme(requested, env)
        self.palette = Palette.from_variables(self.get_css_variables())
        keymap, self._keymap_problems = validate_keymap(
            ui.keymap, known_ids([type(self), *SCREENS.values(), PagedTable])
        )
        self.set_keymap(keymap)

    # -- lifecycle -----------------------------------------------------------------------------

    def on_mount(self) -> None:
        first = self.wall_screens[0] if self.wall else "overview"
        if first != self.current_mode:
            self.switch_mode(first)
        for problem in self._keymap_problems:
            self.report(problem, severity="warning")
        self.set_interval(1.0, self._tick, name="clock")
        if self.wall:
            self._cycle_timer = self.set_interval(
                self.config.ui.wall.cycle_interval, self._cycle_wall, name="wall-cycle"
            )
        self._run_monitor()

    @work(exclusive=True, group="monitor", exit_on_error=False, name="monitor start")
    async def _run_monitor(self) -> None:
        self._unsubscribe = self.monitor.subscribe(self._on_snapshot)
        await self.monitor.start()

    def _on_snapshot(self, snapshot: Snapshot) -> None:
        self.post_message(SnapshotUpdated(snapshot))

    async def on_unmount(self) -> None:
        if self._unsubscribe is not None:
            self._unsubscribe()
        for event in self._bulk_cancels:
            event.set()
        await self.monitor.stop()

    def watch_theme(self, theme: str) -> None:
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

    def _tick(self) -> None:
        base = self.base_screen
        if base is not None and base.is_mounted:
            base.tick()

    def badges(self) -> tuple[str, ...]:
        out: list[str] = []
        if self.wall:
            out.append("WALL")
            if self.paused:
                out.append("⏸ PAUSED")
        if self.read_only:
            out.append("READ-ONLY")
        if self._bulk_cancels:
            out.append("BULK RUNNING")
        return tuple(out)

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
        self.push_screen(HelpScreen(screen, title))

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


def _utcnow() -> datetime:
    return datetime.now(UTC)
