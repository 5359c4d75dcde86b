"""Confirmation for destructive actions: what and how many; Cancel is the default (Enter).

``y`` confirms, ``n``/Esc cancel; a cancel says so in a toast.

Over ``typed_over`` rows the operator must type the exact count before Confirm is enabled.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

from rich.text import Text
from textual.app import App, ComposeResult
from textual.binding import BindingType
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Static

from tui.keymap import bind
from tui.render import plain
from tui.widgets.dialog import dialog_head


class ConfirmModal(ModalScreen[bool]):
    BINDINGS: ClassVar[list[BindingType]] = [
        bind("modal.cancel", "escape", "cancel", "Cancel"),
        bind("modal.no", "n", "cancel", "No"),
        bind("modal.yes", "y", "confirm", "Yes"),
    ]

    def __init__(
        self,
        title: str,
        lines: Sequence[Text],
        *,
        confirm_label: str = "Confirm",
        typed_count: int | None = None,
    ) -> None:
        super().__init__(classes="modal confirm-modal")
        self._title = title
        self._lines = list(lines)
        self._confirm_label = confirm_label
        self.typed_count = typed_count

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog"):
            yield from dialog_head(self._title, self._lines)
            if self.typed_count is not None:
                yield Static(plain(f"Type {self.typed_count} to confirm:"), classes="dialog-line")
                yield Input(placeholder=str(self.typed_count), id="typed-count")
            hint = "y confirm · n or Esc cancel · Enter: the focused button (Cancel)"
            if self.typed_count is not None:
                hint = "type the count, then Enter · Esc cancels"
            yield Static(plain(hint), classes="dialog-hint")
            with Horizontal(id="dialog-buttons"):
                yield Button("Cancel", id="cancel", variant="default")
                yield Button(
                    self._confirm_label, id="confirm", variant="error", disabled=self.typed_count is not None
                )

    def on_mount(self) -> None:
        self.query_one("#cancel", Button).focus()

    def on_input_changed(self, event: Input.Changed) -> None:
        matches = event.value.strip().replace(",", "") == str(self.typed_count)
        self.query_one("#confirm", Button).disabled = not matches

    def on_input_submitted(self, event: Input.Submitted) -> None:
        if not self.query_one("#confirm", Button).disabled:
            self.dismiss(True)

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "confirm":
            self.dismiss(True)
        else:
            self.action_cancel()

    def action_confirm(self) -> None:
        """``y``: only when Confirm is enabled (a typed count is still required)."""
        if not self.query_one("#confirm", Button).disabled:
            self.dismiss(True)

    def action_cancel(self) -> None:
        tell_cancelled(self.app, self._title.rstrip("?"))
        self.dismiss(False)


def tell_cancelled(app: App[object], what: str) -> None:
    """A toast "<what>: cancelled, nothing changed" (through the console's report when there is one)."""
    message = f"{what}: cancelled, nothing changed"
    report = getattr(app, "report", None)
    if callable(report):
        report(message)
    else:
        app.notify(message, markup=False)
