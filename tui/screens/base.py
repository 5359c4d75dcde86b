"""What every opswatch screen shares: status bar, outage banner, footer, navigation, errors.

Screens receive snapshots from the app only while visible; a hidden screen catches up
with the newest snapshot when it is shown again (``on_screen_resume``).
"""

from __future__ import annotations

import time
from datetime import datetime
from typing import TYPE_CHECKING, Any, cast

from textual import events, on
from textual.app import ComposeResult
from textual.binding import BindingType
from textual.screen import Screen
from textual.worker import Worker, WorkerState

from core.api import DatabaseUnavailable, ReadOnlyError, display_text, redact
from core.snapshot import Freshness, Severity, Snapshot
from tui.keymap import MUTATING_ACTIONS, SCREEN_KEYS, bind
from tui.render import DEFAULT_PALETTE, Palette, age_between, fmt_age
from tui.widgets.db_banner import DbBanner
from tui.widgets.key_footer import KeyFooter
from tui.widgets.status_bar import StatusBar

if TYPE_CHECKING:
    from tui.app import OpsWatchApp


def describe_failure(exc: BaseException) -> str:
    """One safe line for a failed action or read (no secrets, no control characters)."""
    if isinstance(exc, ReadOnlyError):
        return f"read-only: {display_text(str(exc), 200)}"
    if isinstance(exc, DatabaseUnavailable):
        return f"database unreachable: {display_text(exc.reason, 200)}"
    if isinstance(exc, ValueError):
        return display_text(redact(str(exc)), 300)
    text = str(exc).strip() or type(exc).__name__
    return f"{type(exc).__name__}: {display_text(redact(text.splitlines()[0]), 300)}"


class WorkerErrors:
    """The one place worker failures become notifications (markup off), never a crash."""

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        if event.state is WorkerState.ERROR and event.worker.error is not None:
            app = cast("OpsWatchApp", cast(Any, self).app)
            app.report(
                f"{event.worker.name or 'task'} failed: {describe_failure(event.worker.error)}",
                severity="error",
            )


CLOCK_SLACK_S = 0.5
SHORT_BELOW = 30

GOTO_BINDINGS: list[BindingType] = [
    bind("goto.overview", "1", "app.goto('overview')", "Overview", group=SCREEN_KEYS),
    bind("goto.endpoints", "2", "app.goto('endpoints')", "Endpoints", group=SCREEN_KEYS),
    bind("goto.dead_letters", "3", "app.goto('dead_letters')", "Dead letters", group=SCREEN_KEYS),
    bind("goto.events", "4", "app.goto('events')", "Event failures", group=SCREEN_KEYS),
    bind("goto.alerts", "5", "app.goto('alerts')", "Alerts", group=SCREEN_KEYS),
    bind("goto.database", "6", "app.goto('database')", "Database", group=SCREEN_KEYS),
    bind("goto.audit", "7", "app.goto('audit')", "Audit & log", group=SCREEN_KEYS),
    bind("goto.next", "tab", "app.cycle(1)", "Next screen", show=False),
    bind("goto.previous", "shift+tab", "app.cycle(-1)", "Previous screen", show=False),
    bind("app.help", "question_mark,f1", "app.help", "Help", key_display="?"),
]


class OpsScreen(WorkerErrors, Screen[None]):
    """Base class: subclasses implement ``compose_body`` and ``apply_snapshot``."""

    SCREEN_TITLE = ""
    BINDINGS = GOTO_BINDINGS

    def __init__(self) -> None:
        super().__init__()
        self.applied: Snapshot | None = None
        self._last_apply = 0.0
        self._status_bar = StatusBar(self.SCREEN_TITLE)  # replaced in compose (wall or not)
        self._left_with: tuple[object, ...] | None = None
        self._banner = DbBanner()

    @property
    def ops(self) -> OpsWatchApp:
        return cast("OpsWatchApp", self.app)

    @property
    def palette(self) -> Palette:
        return getattr(self.app, "palette", DEFAULT_PALETTE)

    def now(self) -> datetime:
        return self.ops.clock()

    def compose(self) -> ComposeResult:
        self._status_bar = StatusBar(self.SCREEN_TITLE, seconds=not self.ops.wall)
        yield self._status_bar
        yield self._banner
        yield from self.compose_body()
        if not self.ops.wall:
            yield KeyFooter()

    def compose_body(self) -> ComposeResult:
        yield from ()

    def on_mount(self) -> None:
        self.set_class(self.ops.wall, "-wall")

    def on_resize(self, event: events.Resize) -> None:
        self.set_class(event.size.height < SHORT_BELOW, "-short")  # the wall's compact variants

    def on_screen_suspend(self) -> None:
        self._left_with = self._style_inputs()

    @on(events.ScreenResume)
    def _catch_up(self, event: events.ScreenResume) -> None:
        # Runs before Screen's own resume handler (an ``on_screen_resume`` of a subclass runs
        # before this one). Textual restyles every widget of a screen on each resume (the wall
        # switches screens every few seconds). A hidden screen's own class changes restyle it at
        # once and theme or stylesheet changes restyle every screen, so if the app is styled as
        # when this screen was left there is nothing to redo.
        if self._left_with is not None and self._left_with == self._style_inputs():
            event.refresh_styles = False
        self.receive(self.ops.snapshot, force=False)

    def _style_inputs(self) -> tuple[object, ...]:
        app = self.app
        # theme and ANSI theme changes are what make Textual re-parse the stylesheet
        generation = getattr(app, "theme_generation", None)
        return (app.theme, generation, app.ansi_theme, app.stylesheet, frozenset(app.classes), app.app_focus)

    def receive(self, snapshot: Snapshot, *, force: bool = False) -> None:
        """Apply ``snapshot`` if this screen is visible and has not shown it yet.

        At most one apply per ``app.apply_interval``: the wall calls this on every clock tick
        and a newer snapshot waits for the first tick at the end of the interval (half a tick
        early counts).
        """
        if not self.is_mounted or not self.is_current:
            return
        if snapshot is self.applied and not force:
            self.tick()
            return
        wait = self._last_apply + self.ops.apply_interval - time.monotonic()
        if wait > CLOCK_SLACK_S and not force:
            self.tick()
            return
        self._apply(snapshot)

    def _apply(self, snapshot: Snapshot) -> None:
        if not self._banner.is_mounted:
            return
        self._last_apply = time.monotonic()
        with self.app.batch_update():
            self._banner.show(snapshot.db)
            self.set_class(snapshot.worst_severity is Severity.CRITICAL, "-critical")
            self.tick(snapshot)
            self.apply_snapshot(snapshot)
        self.applied = snapshot

    def tick(self, snapshot: Snapshot | None = None) -> None:
        if not self._status_bar.is_mounted:
            return
        snap = snapshot or self.ops.snapshot
        self._status_bar.show(now=self.now(), updated=snap.taken_at, badges=self.ops.badges())

    def apply_snapshot(self, snapshot: Snapshot) -> None:
        """Update widgets in place from ``snapshot`` (called inside batch_update)."""

    def stale(self, snapshot: Snapshot, source: str, max_age_s: float) -> str | None:
        """Age text when ``source`` is failing or older than ``max_age_s``; None while fresh."""
        fresh: Freshness | None = snapshot.freshness.get(source)
        if fresh is None:
            return None
        age = age_between(fresh.updated_at, self.now())
        if fresh.error is None and age is not None and age <= max_age_s:
            return None
        if age is None:
            return "never updated"
        return fmt_age(age)

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action in MUTATING_ACTIONS and self.ops.read_only:
            return False
        return True
