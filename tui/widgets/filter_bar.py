"""The triage filter line: text search input plus the active status/business/channel filters."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.message import Message
from textual.widgets import Input, Static

from core.api import MAX_TEXT_FILTER


class FilterBar(Horizontal):
    DEFAULT_CSS = """
    FilterBar { height: 1; width: 1fr; }
    FilterBar > Input { width: 1fr; height: 1; border: none; padding: 0 1; }
    FilterBar > Static { width: auto; height: 1; }
    """

    class SearchSubmitted(Message):
        def __init__(self, text: str) -> None:
            super().__init__()
            self.text = text

    def compose(self) -> ComposeResult:
        yield Static(Text("/ "), classes="filter-label")
        yield Input(
            placeholder="search error text (Enter to apply, Esc to leave)",
            id="filter-text",
            max_length=MAX_TEXT_FILTER,
        )
        yield Static(id="filter-summary")

    def show(self, summary: Text) -> None:
        self.query_one("#filter-summary", Static).update(summary)

    def set_text(self, text: str) -> None:
        self.query_one(Input).value = text

    def focus_search(self) -> None:
        self.query_one(Input).focus()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.post_message(self.SearchSubmitted(event.value.strip()))
