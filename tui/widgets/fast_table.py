"""DataTable with a fast path for the common cell: one line of rich Text.

DataTable renders every cell through Rich's generic pipeline (Styled(Padding(cell)) ->
render_lines), and any ``update_cell`` invalidates every cached cell; a 40-row page then
costs ~100 ms to draw. Single-line Text cells are cut/padded and styled directly here, with
the same cache key, styles and mouse metadata as DataTable; everything else (headers, row
labels, multi-line rows, other renderables) takes DataTable's own path.

``update_cells`` writes a batch of cells and forgets and repaints only the rows they are in,
so a live table where a few rows change redraws those rows, not the whole table.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from rich.segment import Segment
from rich.style import Style
from rich.text import Text
from textual.widget import Widget
from textual.widgets import DataTable
from textual.widgets.data_table import CellDoesNotExist, ColumnKey, RowKey


class FastTable(DataTable[Text]):
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
            if row_key not in self._row_locations or column_key not in self._column_locations:
                raise CellDoesNotExist(f"No cell exists for row_key={row!r}, column_key={column!r}.")
            meta = self.rows.get(row_key)
            if meta is None or meta.height != 1 or "\n" in value.plain:
                self.update_cell(row_key, column_key, value)  # DataTable's path: redraws everything
                continue
            self._data[row_key][column_key] = value
            changed.add((row_key, column_key))
        if changed:
            self._forget(changed)

    def _forget(self, cells: set[tuple[RowKey, ColumnKey]]) -> None:
        rows = {row for row, _ in cells}
        indices = {index for key in rows if (index := self._row_locations.get(key)) is not None}
        regions = [self._get_row_region(index) for index in indices]
        lines = {y for region in regions for y in range(region.y, region.bottom)}
        for cache, forget in (
            (self._cell_render_cache, lambda key: (key[0], key[1]) in cells),
            (self._row_render_cache, lambda key: key[0] in rows),
            (self._row_renderable_cache, lambda key: key[1] in indices),
            (self._line_cache, lambda key: key[0] in lines),
        ):
            for key in [k for k in cache.keys() if forget(k)]:
                cache.discard(key)
        for index in indices:
            self.refresh_row(index)

    def _render_cell(
        self,
        row_index: int,
        column_index: int,
        base_style: Style,
        width: int,
        cursor: bool = False,
        hover: bool = False,
    ) -> Any:
        pad = self.cell_padding
        inner = width - 2 * pad
        if row_index < 0 or column_index < 0 or self.fixed_rows or self.fixed_columns or inner < 1:
            return super()._render_cell(row_index, column_index, base_style, width, cursor, hover)
        row_key = self._row_locations.get_key(row_index)
        column_key = self._column_locations.get_key(column_index)
        if row_key is None or column_key is None:
            return super()._render_cell(row_index, column_index, base_style, width, cursor, hover)
        cache_key = (
            row_key,
            column_key,
            base_style,
            cursor,
            hover,
            self._show_hover_cursor,
            self._update_count,
            self._pseudo_class_state,
        )
        cached = self._cell_render_cache.get(cache_key)
        if cached is not None:
            return cached
        cell = self._data.get(row_key, {}).get(column_key)
        row = self.rows.get(row_key)
        if not isinstance(cell, Text) or row is None or row.height != 1 or "\n" in cell.plain:
            return super()._render_cell(row_index, column_index, base_style, width, cursor, hover)
        component_style, post_style = self._get_styles_to_render_cell(
            False,
            False,
            False,
            hover,
            cursor,
            self.show_cursor,
            self._show_hover_cursor,
            self.cursor_foreground_priority == "css",
            self.cursor_background_priority == "css",
        )
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
        self._cell_render_cache[cache_key] = lines
        return lines
