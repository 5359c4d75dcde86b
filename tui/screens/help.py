"""``?`` / F1: the keys of the screen it was opened from, then lists, screens and the other
screens' actions, each with its current key and binding id (remappable with ``ui.keymap``).

Only opswatch's own bindings are listed (every one has an id): Textual's internal ones
("Scroll Left", "Copy selected text", focus moves) are not operator actions.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, ClassVar

from textual.app import App, ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.screen import ModalScreen, Screen
from textual.widgets import DataTable, Static

from core.api import display_dsn
from tui.keymap import MUTATING_ACTIONS, bind
from tui.render import plain
from tui.widgets.fast_table import FastTable

Row = tuple[str, str, str]
"""(keys, description, binding id)"""
GLOBAL_PREFIXES = ("goto.", "app.", "wall.")
LIST_PREFIX = "table."


def binding_rows(screen: Screen[object]) -> list[Row]:
    """(key, description, id) for the screen's active opswatch bindings; hidden (read-only) ones
    and Textual's internal bindings excluded."""
    app = screen.app
    rows: dict[tuple[str, str], Row] = {}
    for key, active in screen.active_bindings.items():
        binding = active.binding
        if binding.system or not binding.description or not binding.id or not active.enabled:
            continue
        display = binding.key_display or app.get_key_display(binding.with_key(key))
        current = rows.get((binding.id, binding.description))
        keys = display if current is None else f"{current[0]}, {display}"
        rows[(binding.id, binding.description)] = (keys, binding.description, binding.id)
    return sorted(rows.values(), key=lambda r: (r[2].split(".")[0], r[1]))


def declared_rows(app: App[object], classes: Iterable[type], read_only: bool) -> list[Row]:
    """Rows for bindings declared on ``classes`` (not their bases), keys as remapped."""
    keymap: Mapping[str, str] = getattr(app, "_keymap", {}) or {}
    out: list[Row] = []
    for cls in classes:
        declared: list[BindingType] = list(cls.__dict__.get("BINDINGS", []))
        for binding in Binding.make_bindings(declared):
            if not binding.id or not binding.description:
                continue
            if read_only and binding.action in MUTATING_ACTIONS:
                continue
            if any(r[2] == binding.id for r in out):
                continue
            keys = keymap.get(binding.id, binding.key)
            shown = [binding.key_display or app.get_key_display(binding.with_key(k)) for k in keys.split(",")]
            out.append((", ".join(dict.fromkeys(shown)), binding.description, binding.id))
    return out


def help_sections(
    origin: Screen[object], title: str, others: Mapping[str, type[Screen[object]]]
) -> list[tuple[str, list[Row]]]:
    """Sections in reading order: this screen, lists, screens and app, then every other screen."""
    rows = binding_rows(origin)
    own = [r for r in rows if not r[2].startswith((*GLOBAL_PREFIXES, LIST_PREFIX))]
    lists = [r for r in rows if r[2].startswith(LIST_PREFIX)]
    general = [r for r in rows if r[2].startswith(GLOBAL_PREFIXES)]
    general.append(("ctrl+p", "Command palette: every action by name", ""))
    sections = [(f"{title} (this screen)", own), ("Lists", lists), ("Screens and app", general)]
    read_only = bool(getattr(origin.app, "read_only", False))
    for name, cls in others.items():
        if isinstance(origin, cls):
            continue
        bases = [c for c in cls.__mro__ if "BINDINGS" in c.__dict__ and c.__module__.startswith("tui.")]
        own_rows = [
            r for r in declared_rows(origin.app, bases, read_only) if not r[2].startswith(GLOBAL_PREFIXES)
        ]
        sections.append((name, own_rows))
    return [(name, section) for name, section in sections if section]


class HelpScreen(ModalScreen[None]):
    BINDINGS: ClassVar[list[BindingType]] = [
        bind("help.close", "escape,q,question_mark,f1", "close", "Close")
    ]

    def __init__(
        self, origin: Screen[object], title: str, others: Mapping[str, type[Screen[Any]]] | None = None
    ) -> None:
        super().__init__(classes="modal help-modal")
        self._sections = help_sections(origin, title, others or {})
        self._title = title

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog"):
            yield Static(
                plain(f"Keys: {self._title}  (Esc to close; remap with ui.keymap: {{id: key}})"),
                id="dialog-title",
            )
            yield Static(plain(database_line(self.app)), id="help-database")
            yield FastTable(id="help-table", cursor_type="row", zebra_stripes=False)

    def on_mount(self) -> None:
        table = self.query_one(DataTable)
        table.add_columns("Key", "Action", "Binding id")
        for number, (name, rows) in enumerate(self._sections):
            if number:
                table.add_row(plain(""), plain(""), plain(""), key=f"gap-{number}")
            table.add_row(plain(""), plain(name, "bold"), plain(""), key=f"section-{number}")
            for keys, description, ident in rows:
                table.add_row(plain(keys), plain(description), plain(ident, "dim"), key=f"{number}:{ident}")
        table.focus()

    def action_close(self) -> None:
        self.dismiss(None)


def database_line(app: object) -> str:
    """Which database the console watches (the demo's embedded one included), password masked."""
    db = getattr(getattr(app, "monitor", None), "db", None)
    return f"Database: {display_dsn(db.dsn)}" if db is not None else "Database: none"
