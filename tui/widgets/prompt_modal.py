"""Ask for one line of text (a reason, a business id, ...); Esc cancels."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import Input

from tui.widgets.dialog import FormModal, dialog_head

Validator = Callable[[str], str | None]
"""Returns an error message, or None when the value is acceptable."""


class PromptModal(FormModal[str | None]):
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
            yield from dialog_head(self._title, self._lines)
            yield Input(value=self._value, placeholder=self._placeholder, id="prompt-input")
            yield from self.form_buttons(self._ok_label, "primary")

    def on_mount(self) -> None:
        self.query_one(Input).focus()

    def submit(self) -> None:
        value = self.query_one(Input).value.strip()
        problem = "a value is required" if self._required and not value else None
        if problem is None and self._validate is not None:
            problem = self._validate(value)
        if problem:
            self.show_error(problem)
            return
        self.dismiss(value)

    def action_cancel(self) -> None:
        self.dismiss(None)
