"""A DataTable that holds one page of a larger, database-side result.

j/k move the cursor; moving past either edge, or PageUp/PageDown, asks the owner for the
neighbouring page (a ``PageRequested`` message) instead of scrolling. ``sync`` applies new
rows in place: same keys in the same order -> only changed cells are updated; otherwise the
page is replaced and the cursor follows its row key.

With ``positional=True`` the DataTable's own row keys are positions ("0", "1", ...) and the
caller's keys are kept alongside, so turning a page rewrites cells in place: no rows are
removed or added, nothing is re-measured and the layout does not change.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

from rich.text import Text
from textual import events
from textual.binding import BindingType
from textual.message import Message
from textual.widgets import DataTable
from textual.widgets.data_table import ColumnKey

from tui.keymap import bind
from tui.widgets.fast_table import FastTable

Cells = Sequence[Text]


class PagedTable(FastTable):
    BINDINGS: ClassVar[list[BindingType]] = [
        bind("table.down", "j", "cursor_down", "Down", show=False),
        bind("table.up", "k", "cursor_up", "Up", show=False),
        bind("table.next_page", "pagedown", "page_down", "Next page", show=False),
        bind("table.prev_page", "pageup", "page_up", "Previous page", show=False),
        bind("table.first_page", "home", "first_page", "First page", show=False),
    ]

    class PageRequested(Message):
        """``direction`` is +1 (next), -1 (previous) or 0 (first page)."""

        def __init__(self, table: PagedTable, direction: int) -> None:
            super().__init__()
            self.table = table
            self.direction = direction

        @property
        def control(self) -> PagedTable:
            return self.table

    class Resized(Message):
        """The table's width changed (its owner may re-fit the columns)."""

        def __init__(self, table: PagedTable, width: int) -> None:
            super().__init__()
            self.table = table
            self.width = width

        @property
        def control(self) -> PagedTable:
            return self.table

    def on_resize(self, event: events.Resize) -> None:
        self.post_message(self.Resized(self, event.size.width))

    def __init__(
        self, *, id: str | None = None, classes: str | None = None, positional: bool = False
    ) -> None:
        super().__init__(id=id, classes=classes, cursor_type="row", zebra_stripes=True)
        self.has_next = False
        self.has_prev = False
        self.positional = positional
        self._ids: list[str] = []

    def action_cursor_down(self) -> None:
        if self.row_count and self.cursor_row >= self.row_count - 1 and self.has_next:
            self.post_message(self.PageRequested(self, +1))
            return
        super().action_cursor_down()

    def action_cursor_up(self) -> None:
        if self.cursor_row <= 0 and self.has_prev:
            self.post_message(self.PageRequested(self, -1))
            return
        super().action_cursor_up()

    def action_page_down(self) -> None:
        if self.has_next:
            self.post_message(self.PageRequested(self, +1))
        else:
            self.move_cursor(row=max(self.row_count - 1, 0))

    def action_page_up(self) -> None:
        if self.has_prev:
            self.post_message(self.PageRequested(self, -1))
        else:
            self.move_cursor(row=0)

    def action_first_page(self) -> None:
        if self.has_prev:
            self.post_message(self.PageRequested(self, 0))
        else:
            self.move_cursor(row=0)

    @property
    def current_key(self) -> str | None:
        if not self.positional:
            return cursor_key(self)
        row = self.cursor_row
        return self._ids[row] if self.row_count and 0 <= row < len(self._ids) else None

    def keys(self) -> list[str]:
        if self.positional:
            return list(self._ids)
        return [str(row.key.value) for row in self.ordered_rows]

    def cells_for(self, key: str) -> list[Text]:
        """The cells of the row with the caller's ``key``."""
        return self.get_row(str(self._ids.index(key)) if self.positional else key)

    def sync(self, rows: Sequence[tuple[str, Cells]], *, cursor: str | int | None = None) -> None:
        if not self.positional:
            sync_table(self, rows, cursor=cursor)
            return
        keep = self.current_key if cursor is None else None
        old_index = self.cursor_row
        self._ids = [key for key, _ in rows]
        existing = self.row_count
        columns = [c.key for c in self.ordered_columns]
        changed: list[tuple[str, ColumnKey, Text]] = []
        for index, (_, cells) in enumerate(rows):
            position = str(index)
            if index >= existing:
                self.add_row(*cells, key=position)
                continue
            for column, old, new in zip(columns, self.get_row(position), cells, strict=False):
                if old != new:
                    changed.append((position, column, new))
        self.update_cells(changed)
        for index in range(existing - 1, len(rows) - 1, -1):
            self.remove_row(str(index))
        target: Any = keep if cursor is None else cursor
        if isinstance(target, str) and target in self._ids:
            target = self._ids.index(target)
        elif not isinstance(target, int):
            target = old_index
        if self.row_count:
            self.move_cursor(row=min(max(target, 0), self.row_count - 1), animate=False)


def cursor_key(table: DataTable[Any]) -> str | None:
    """The row key under the cursor, or None for an empty table."""
    if not table.row_count:
        return None
    try:
        row_key, _ = table.coordinate_to_cell_key(table.cursor_coordinate)
    except Exception:
        return None
    return None if row_key.value is None else str(row_key.value)


def sync_table(
    table: DataTable[Any], rows: Sequence[tuple[str, Cells]], *, cursor: str | int | None = None
) -> None:
    """Show exactly ``rows`` (key, cells); ``cursor`` is a row key, an index, or None to keep."""
    new_keys = [key for key, _ in rows]
    keep = cursor_key(table) if cursor is None else None
    old_index = table.cursor_row
    if new_keys == [str(row.key.value) for row in table.ordered_rows]:
        columns = [c.key for c in table.ordered_columns]
        changed = [
            (key, column, new)
            for key, cells in rows
            for column, old, new in zip(columns, table.get_row(key), cells, strict=False)
            if old != new
        ]
        if isinstance(table, FastTable):
            table.update_cells(changed)
        else:
            for key, column, new in changed:
                table.update_cell(key, column, new)
    else:
        table.clear()
        for key, cells in rows:
            table.add_row(*cells, key=key)
    target: Any = keep if cursor is None else cursor
    if isinstance(target, int):
        table.move_cursor(row=min(max(target, 0), max(table.row_count - 1, 0)), animate=False)
    elif isinstance(target, str) and target in new_keys:
        table.move_cursor(row=new_keys.index(target), animate=False)
    elif table.row_count:
        table.move_cursor(row=min(old_index, table.row_count - 1), animate=False)
