"""``?``: every binding of the screen it was opened from, with its current key and id."""

from __future__ import annotations

from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import BindingType
from textual.containers import Vertical
from textual.screen import ModalScreen, Screen
from textual.widgets import DataTable, Static

from core.db import display_dsn
from tui.keymap import bind
from tui.render import plain
from tui.widgets.fast_table import FastTable


def binding_rows(screen: Screen[object]) -> list[tuple[str, str, str]]:
    """(key, description, id) for the screen's active bindings; hidden (read-only) ones excluded."""
    app = screen.app
    rows: dict[tuple[str, str], tuple[str, str, str]] = {}
    for key, active in screen.active_bindings.items():
        binding = active.binding
        if binding.system or not binding.description:
            continue
        display = binding.key_display or app.get_key_display(binding.with_key(key))
        ident = binding.id or binding.action
        current = rows.get((ident, binding.description))
        keys = display if current is None else f"{current[0]}, {display}"
        rows[(ident, binding.description)] = (keys, binding.description, ident)
    return sorted(rows.values(), key=lambda r: (r[2].split(".")[0], r[1]))


class HelpScreen(ModalScreen[None]):
    BINDINGS: ClassVar[list[BindingType]] = [bind("help.close", "escape,q,question_mark", "close", "Close")]

    def __init__(self, origin: Screen[object], title: str) -> None:
        super().__init__(classes="modal help-modal")
        self._rows = binding_rows(origin)
        self._title = title

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog"):
            yield Static(
                plain(f"Keys: {self._title}  (Esc to close; remap with ui.keymap: {{id: key}})"),
                id="dialog-title",
            )
            yield Static(plain(database_line(self.app)), id="help-database")
            yield FastTable(id="help-table", cursor_type="row", zebra_stripes=True)

    def on_mount(self) -> None:
        table = self.query_one(DataTable)
        table.add_columns("Key", "Action", "Binding id")
        for key, description, ident in self._rows:
            table.add_row(plain(key), plain(description), plain(ident))
        table.focus()

    def action_close(self) -> None:
        self.dismiss(None)


def database_line(app: object) -> str:
    """Which database the console watches (the demo's embedded one included), password masked."""
    db = getattr(getattr(app, "monitor", None), "db", None)
    return f"Database: {display_dsn(db.dsn)}" if db is not None else "Database: none"
