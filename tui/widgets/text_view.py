"""The full, untruncated (but still sanitised) view of a long value."""

from __future__ import annotations

from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import BindingType
from textual.containers import Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

from tui.keymap import bind
from tui.render import plain, safe_block

FULL_VIEW_LIMIT = 2_000_000


class TextViewModal(ModalScreen[None]):
    BINDINGS: ClassVar[list[BindingType]] = [
        bind("modal.close", "escape,q,v", "close", "Close"),
    ]

    def __init__(self, title: str, value: object) -> None:
        super().__init__(classes="modal text-view-modal")
        self._title = title
        self._value = value

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog"):
            yield Static(plain(f"{self._title}  (Esc to close)"), id="dialog-title")
            with VerticalScroll(id="text-view-body"):
                yield Static(safe_block(self._value, FULL_VIEW_LIMIT), id="text-view-content")

    def on_mount(self) -> None:
        self.query_one("#text-view-body").focus()

    def action_close(self) -> None:
        self.dismiss(None)
