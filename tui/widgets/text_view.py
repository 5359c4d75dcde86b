"""The long view of a value: sanitised, bounded, and virtualised so a huge payload never freezes the UI."""

from __future__ import annotations

from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import BindingType
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Static, TextArea

from core.api import display_text
from tui.keymap import bind
from tui.render import plain

# enough to read any real payload on screen; `opswatch dlq show ID --raw` prints all of it
FULL_VIEW_LIMIT = 200_000


def full_view_text(value: object) -> str:
    """Display-safe text for the modal; CPU-heavy for big values, so call it off the event loop."""
    return display_text(value, FULL_VIEW_LIMIT, multiline=True)


class TextViewModal(ModalScreen[None]):
    BINDINGS: ClassVar[list[BindingType]] = [
        bind("modal.close", "escape,q,v", "close", "Close"),
    ]

    def __init__(self, title: str, text: str) -> None:
        """``text`` must already be display-safe (see :func:`full_view_text`)."""
        super().__init__(classes="modal text-view-modal")
        self._title = title
        self._text = text

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog"):
            yield Static(plain(f"{self._title}  (Esc to close)"), id="dialog-title")
            # TextArea renders only the visible lines and never parses markup
            yield TextArea(self._text, read_only=True, soft_wrap=True, id="text-view-content")

    def on_mount(self) -> None:
        self.query_one("#text-view-content").focus()

    def action_close(self) -> None:
        self.dismiss(None)
