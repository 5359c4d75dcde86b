"""A whole-list table (no paging) with vi keys; a newest-first one follows its head.

``follow_head=True`` (like ``less +F``): while the cursor is on the first row, new rows
arriving on top keep the cursor on the (new) first row. Once the operator moves down, the
cursor stays on its row and its place on screen, and ``new_above`` counts the rows that
arrived above it since; returning to the first row (``g``/Home, or ``k`` up to it) follows
again.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

from textual import events
from textual.binding import BindingType
from textual.coordinate import Coordinate
from textual.reactive import reactive

from tui.keymap import bind
from tui.widgets.column_fit import Col, fit_columns
from tui.widgets.fast_table import FastTable
from tui.widgets.paged_table import Cells, cursor_key, sync_table


class LiveTable(FastTable):
    BINDINGS: ClassVar[list[BindingType]] = [
        bind("table.down", "j", "cursor_down", "Down", show=False),
        bind("table.up", "k", "cursor_up", "Up", show=False),
        bind("table.top", "g,home", "head", "First row", show=False),
        bind("table.bottom", "G,end", "tail", "Last row", show=False),
    ]

    new_above: reactive[int] = reactive(0, init=False)
    """Rows that arrived above the cursor while it was away from the head."""

    def __init__(self, *, id: str | None = None, follow_head: bool = False) -> None:
        super().__init__(id=id, cursor_type="row", zebra_stripes=True)
        self.follow_head = follow_head
        self._syncing = False
        self._top_seen: str | None = None
        self._cols: Sequence[Col] = ()
        self._flex = 0
        self._cells: list[Cells] = []

    def set_columns(self, cols: Sequence[Col], flex: int) -> None:
        """Add the columns; their widths follow the content and this table's width (column_fit)."""
        self._cols = tuple(cols)
        self._flex = flex
        self.add_columns(*(c.label for c in cols))

    def on_resize(self, event: events.Resize) -> None:
        self._fit()

    def _fit(self) -> None:
        if self._cols:
            fit_columns(self, self._cols, self._cells, self._flex)

    @property
    def following(self) -> bool:
        """On the first row and scrolled to the top (a mouse wheel can move away too)."""
        return self.follow_head and self.cursor_row <= 0 and self.scroll_y < 1

    def action_head(self) -> None:
        if self.row_count:
            self.move_cursor(row=0, animate=False)
        self.scroll_to(y=0, animate=False)

    def action_tail(self) -> None:
        if self.row_count:
            self.move_cursor(row=self.row_count - 1, animate=False)

    def watch_cursor_coordinate(self, old: Coordinate, new: Coordinate) -> None:
        super().watch_cursor_coordinate(old, new)
        if self._syncing or not self.follow_head:
            return
        if new.row <= 0:
            self.new_above = 0
            self._top_seen = None
        elif self._top_seen is None and self.row_count:
            self._top_seen = cursor_key_at(self, 0)

    def sync(self, rows: Sequence[tuple[str, Cells]]) -> None:
        """Show exactly ``rows``; the cursor follows the head or stays on its row (see module doc)."""
        self._cells = [cells for _, cells in rows]
        if not self.follow_head:
            sync_table(self, rows)
            self._fit()
            return
        self._fit()
        following = self.following
        if not following and self._top_seen is None:
            self._top_seen = cursor_key_at(self, 0)  # scrolled away with the wheel
        offset = self.cursor_row - round(self.scroll_y)
        self._syncing = True
        try:
            sync_table(self, rows, cursor=0 if following else None)
        finally:
            self._syncing = False
        if following:
            self.scroll_to(y=0, animate=False, immediate=True)
            self.new_above = 0
            self._top_seen = None
            return
        keys = [key for key, _ in rows]
        seen = self._top_seen
        self.new_above = keys.index(seen) if seen in keys else len(keys)
        # after the new rows are measured: scrolling now would clamp to the old height
        self.call_after_refresh(self.scroll_to, y=max(0, self.cursor_row - offset), animate=False)

    def marker(self) -> str:
        """``N new ↑`` while rows wait above the cursor, else empty."""
        if not self.new_above:
            return ""
        more = "+" if self.new_above >= self.row_count else ""
        return f"{self.new_above}{more} new ↑ (g: newest)"


def cursor_key_at(table: FastTable, row: int) -> str | None:
    if not 0 <= row < table.row_count:
        return None
    key = table.coordinate_to_cell_key(Coordinate(row, 0)).row_key.value
    return None if key is None else str(key)


__all__ = ["LiveTable", "cursor_key"]
