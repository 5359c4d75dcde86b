"""Silence an alert: duration and reason."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import BindingType
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Static

from core.durations import parse_duration
from core.safe_text import display_text
from tui.keymap import bind
from tui.render import plain
from tui.widgets.confirm_modal import tell_cancelled


@dataclass(frozen=True)
class SilenceRequest:
    duration_s: float
    reason: str


class SilenceModal(ModalScreen[SilenceRequest | None]):
    BINDINGS: ClassVar[list[BindingType]] = [bind("modal.cancel", "escape", "cancel", "Cancel")]

    def __init__(self, target: str, default_duration: str = "1h") -> None:
        super().__init__(classes="modal silence-modal")
        self._target = target
        self._default = default_duration

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog"):
            yield Static(plain(f"Silence {self._target}"), id="dialog-title")
            yield Static(plain("Duration (e.g. 30m, 2h, 1d):"), classes="dialog-line")
            yield Input(value=self._default, id="silence-duration")
            yield Static(plain("Reason:"), classes="dialog-line")
            yield Input(placeholder="why is this silenced?", id="silence-reason")
            yield Static(id="prompt-error", classes="dialog-error")
            with Horizontal(id="dialog-buttons"):
                yield Button("Cancel", id="cancel")
                yield Button("Silence", id="ok", variant="warning")

    def on_mount(self) -> None:
        self.query_one("#silence-reason", Input).focus()

    def _submit(self) -> None:
        error = self.query_one("#prompt-error", Static)
        try:
            duration = parse_duration(self.query_one("#silence-duration", Input).value.strip())
        except (ValueError, TypeError) as exc:
            error.update(plain(f"duration: {exc}"))
            return
        reason = self.query_one("#silence-reason", Input).value.strip()
        if duration <= 0:
            error.update(plain("duration must be positive"))
        elif not reason:
            error.update(plain("a reason is required"))
        else:
            self.dismiss(SilenceRequest(duration, reason))

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self._submit()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "ok":
            self._submit()
        else:
            self.action_cancel()

    def action_cancel(self) -> None:
        tell_cancelled(self.app, f"Silence {display_text(self._target, 80)}")
        self.dismiss(None)
