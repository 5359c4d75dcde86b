"""Silence an alert: duration and reason."""

from __future__ import annotations

from dataclasses import dataclass

from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import Input, Static

from core.api import display_text, parse_duration
from tui.render import plain
from tui.widgets.confirm_modal import tell_cancelled
from tui.widgets.dialog import FormModal, dialog_head


@dataclass(frozen=True)
class SilenceRequest:
    duration_s: float
    reason: str


class SilenceModal(FormModal[SilenceRequest | None]):
    def __init__(self, target: str, default_duration: str = "1h") -> None:
        super().__init__(classes="modal silence-modal")
        self._target = target
        self._default = default_duration

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog"):
            yield from dialog_head(f"Silence {self._target}", [plain("Duration (e.g. 30m, 2h, 1d):")])
            yield Input(value=self._default, id="silence-duration")
            yield Static(plain("Reason:"), classes="dialog-line")
            yield Input(placeholder="why is this silenced?", id="silence-reason")
            yield from self.form_buttons("Silence", "warning")

    def on_mount(self) -> None:
        self.query_one("#silence-reason", Input).focus()

    def submit(self) -> None:
        try:
            duration = parse_duration(self.query_one("#silence-duration", Input).value.strip())
        except (ValueError, TypeError) as exc:
            self.show_error(f"duration: {exc}")
            return
        reason = self.query_one("#silence-reason", Input).value.strip()
        if duration <= 0:
            self.show_error("duration must be positive")
        elif not reason:
            self.show_error("a reason is required")
        else:
            self.dismiss(SilenceRequest(duration, reason))

    def action_cancel(self) -> None:
        tell_cancelled(self.app, f"Silence {display_text(self._target, 80)}")
        self.dismiss(None)
