"""What the modal dialogs share: the title and text lines, and a form's error line and buttons."""

from __future__ import annotations

from collections.abc import Iterable
from typing import ClassVar, TypeVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import BindingType
from textual.containers import Horizontal
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Static
from textual.widgets.button import ButtonVariant

from tui.keymap import bind
from tui.render import plain

ResultType = TypeVar("ResultType")


def dialog_head(title: str, lines: Iterable[Text] = ()) -> ComposeResult:
    yield Static(plain(title), id="dialog-title")
    for line in lines:
        yield Static(line, classes="dialog-line")


class FormModal(ModalScreen[ResultType]):
    """A dialog of inputs: Enter in an input or the OK button submits, Cancel or Esc cancels."""

    BINDINGS: ClassVar[list[BindingType]] = [bind("modal.cancel", "escape", "cancel", "Cancel")]

    def form_buttons(self, ok_label: str, variant: ButtonVariant) -> ComposeResult:
        """The error line and Cancel / OK; compose them inside the dialog."""
        yield Static(id="prompt-error", classes="dialog-error")
        with Horizontal(id="dialog-buttons"):
            yield Button("Cancel", id="cancel")
            yield Button(ok_label, id="ok", variant=variant)

    def show_error(self, problem: str) -> None:
        self.query_one("#prompt-error", Static).update(plain(problem))

    def submit(self) -> None:
        """Check the inputs: show what is wrong, or dismiss with the result."""
        raise NotImplementedError

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.submit()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "ok":
            self.submit()
        else:
            self.action_cancel()

    def action_cancel(self) -> None:
        raise NotImplementedError
