"""DataTable with a fast path for the common cell: one line of rich Text.

DataTable renders every cell through Rich's generic pipeline (Styled(Padding(cell)) ->
render_lines), and any ``update_cell`` invalidates every cached cell; a 40-row page then
costs ~100 ms to draw. Single-line Text cells are cut/padded and styled directly here, with
the same cache key, styles and mouse metadata as DataTable; everything else (headers, row
labels, multi-line rows, other renderables) takes DataTable's own path.
"""

from __future__ import annotations

from typing import Any

from rich.segment import Segment
from rich.style import Style
from rich.text import Text
from textual.widgets import DataTable


class FastTable(DataTable[Text]):
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
