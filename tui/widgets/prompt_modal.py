"""Ask for one line of text (a reason, a business id, ...); Esc cancels."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import BindingType
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Static

from tui.keymap import bind
from tui.render import plain

Validator = Callable[[str], str | None]
"""Returns an error message, or None when the value is acceptable."""


class PromptModal(ModalScreen[str | None]):
    BINDINGS: ClassVar[list[BindingType]] = [bind("modal.cancel", "escape", "cancel", "Cancel")]

    def __init__(
        self,
        title: str,
        lines: Sequence[Text] = (),
        *,
        placeholder: str = "",
        value: str = "",
        required: bool = False,
        validate: Validator | None = None,
        ok_label: str = "OK",
    ) -> None:
        super().__init__(classes="modal prompt-modal")
        self._title = title
        self._lines = list(lines)
        self._placeholder = placeholder
        self._value = value
        self._required = required
        self._validate = validate
        self._ok_label = ok_label

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog"):
            yield Static(plain(self._title), id="dialog-title")
            for line in self._lines:
                yield Static(line, classes="dialog-line")
            yield Input(value=self._value, placeholder=self._placeholder, id="prompt-input")
            yield Static(id="prompt-error", classes="dialog-error")
            with Horizontal(id="dialog-buttons"):
                yield Button("Cancel", id="cancel")
                yield Button(self._ok_label, id="ok", variant="primary")

    def on_mount(self) -> None:
        self.query_one(Input).focus()

    def _submit(self) -> None:
        value = self.query_one(Input).value.strip()
        problem = "a value is required" if self._required and not value else None
        if problem is None and self._validate is not None:
            problem = self._validate(value)
        if problem:
            self.query_one("#prompt-error", Static).update(plain(problem))
            return
        self.dismiss(value)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self._submit()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "ok":
            self._submit()
        else:
            self.dismiss(None)

    def action_cancel(self) -> None:
        self.dismiss(None)
