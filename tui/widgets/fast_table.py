"""DataTable with a fast path for the common cell: one line of rich Text.

DataTable renders every cell through Rich's generic pipeline (Styled(Padding(cell)) ->
render_lines), and any ``update_cell`` invalidates every cached cell; a 40-row page then
costs ~100 ms to draw. Single-line Text cells are cut/padded and styled directly here, with
the same cache key, styles and mouse metadata as DataTable; everything else (headers, row
labels, multi-line rows, other renderables) takes DataTable's own path.

``update_cells`` writes a batch of cells and forgets and repaints only the rows they are in,
so a live table where a few rows change redraws those rows, not the whole table.

The DataTable internals this needs are in ``tui.textual_internals`` (with a canary test).
"""

from __future__ import annotations

from collections.abc import Iterable

from rich.segment import Segment
from rich.style import Style
from rich.text import Text
from textual.coordinate import Coordinate
from textual.widget import Widget
from textual.widgets.data_table import CellDoesNotExist, ColumnKey, RowKey

from tui.textual_internals import (
    CellHook,
    SegmentLines,
    cache_cell,
    cached_cell,
    cell_cache_key,
    cell_styles,
    forget_rows,
    set_cell_quietly,
)


class FastTable(CellHook):
    _style_key: tuple[object, ...] | None = None

    def notify_style_update(self) -> None:
        """DataTable forgets every drawn cell on any style pass, and each screen switch restyles
        the whole screen: keep them while nothing a cell is drawn with has changed."""
        Widget.notify_style_update(self)
        key = (
            self.app.theme,
            self.rich_style,
            self.background_colors,
            tuple(self.get_component_rich_style(n, default=Style()) for n in sorted(self.COMPONENT_CLASSES)),
        )
        if key != self._style_key:
            self._style_key = key
            super().notify_style_update()

    def update_cells(self, cells: Iterable[tuple[RowKey | str, ColumnKey | str, Text]]) -> None:
        """Set (row key, column key, value) cells; only the rows they are in are redrawn."""
        changed: set[tuple[RowKey, ColumnKey]] = set()
        for row, column, value in cells:
            row_key = RowKey(row) if isinstance(row, str) else row
            column_key = ColumnKey(column) if isinstance(column, str) else column
            if row_key not in self.rows or column_key not in self.columns:
                raise CellDoesNotExist(f"No cell exists for row_key={row!r}, column_key={column!r}.")
            if self.rows[row_key].height != 1 or "\n" in value.plain:
                self.update_cell(row_key, column_key, value)  # DataTable's path: redraws everything
                continue
            set_cell_quietly(self, row_key, column_key, value)
            changed.add((row_key, column_key))
        if changed:
            for index in forget_rows(self, changed):
                self.refresh_row(index)

    def fast_cell(
        self, row_index: int, column_index: int, base_style: Style, width: int, cursor: bool, hover: bool
    ) -> SegmentLines | None:
        pad = self.cell_padding
        inner = width - 2 * pad
        if self.fixed_rows or self.fixed_columns or inner < 1:
            return None
        try:
            row_key, column_key = self.coordinate_to_cell_key(Coordinate(row_index, column_index))
        except CellDoesNotExist:
            return None
        cache_key = cell_cache_key(self, row_key, column_key, base_style, cursor, hover)
        cached = cached_cell(self, cache_key)
        if cached is not None:
            return cached
        cell = self.get_cell(row_key, column_key)
        row = self.rows.get(row_key)
        if not isinstance(cell, Text) or row is None or row.height != 1 or "\n" in cell.plain:
            return None
        component_style, post_style = cell_styles(self, cursor, hover)
        pre_style = base_style + Style.from_meta({"row": row_index, "column": column_index}) + component_style
        text = cell.copy()
        text.end = ""
        text.truncate(inner, overflow="ellipsis", pad=True)
        spacer = Segment(" " * pad) if pad else None
        segments = [
            *([spacer] if spacer else []),
            *text.render(self.app.console),
            *([spacer] if spacer else []),
        ]
        lines = [list(Segment.apply_style(segments, pre_style, post_style))]
        cache_cell(self, cache_key, lines)
        return lines
