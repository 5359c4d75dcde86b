"""Every Textual private internal opswatch relies on, in one place (textual ~= 8.2).

Textual 8.2 has no public API for these; tests/tui/test_textual_canary.py checks each one
against the installed Textual and names the one an upgrade broke.

- ``start_offstage``: ``App._get_screen`` registers a screen (compose, mount, its first data
  load) without showing it; ``install_screen`` only names a screen and ``push_screen`` /
  ``switch_mode`` show it. Pre-built triage screens make opening one a paint (bench/README.md,
  "TUI": first DLQ open).
- ``mark_styled``: a screen whose ``_css_update_count`` lags the app's makes ``switch_mode``
  call ``refresh_css()``: the stylesheet is re-parsed and every screen restyled. A screen built
  now is styled with the current sheet, so it may start in step.
- ``CellHook`` and the ``*_cell*`` / ``forget_rows`` helpers: DataTable renders every cell
  through Rich's generic pipeline and ``update_cell`` invalidates every cached cell (each cache
  key holds ``_update_count``); a 40-row page costs ~100 ms to draw. ``widgets/fast_table.py``
  draws single-line Text cells itself under DataTable's own cache key and forgets only the rows
  it changed.
- ``columns_resized``: DataTable re-measures its columns only when its private flag is set;
  ``widgets/column_fit.py`` sets column widths itself.
"""

from __future__ import annotations

from typing import Any

from rich.segment import Segment
from rich.style import Style
from rich.text import Text
from textual.app import App
from textual.screen import Screen
from textual.widgets import DataTable
from textual.widgets._data_table import CellCacheKey
from textual.widgets.data_table import ColumnKey, RowKey

SegmentLines = list[list[Segment]]


# -- screens ---------------------------------------------------------------------------------


def start_offstage(app: App[Any], screen: Screen[Any]) -> None:
    """Compose and mount ``screen`` without showing it."""
    app._get_screen(screen)


def mark_styled(app: App[Any], screen: Screen[Any]) -> None:
    """Tell Textual that ``screen`` (built now, not yet shown) has the app's current styles."""
    count = getattr(app, "_css_update_count", None)
    if isinstance(count, int) and hasattr(screen, "_css_update_count"):
        screen._css_update_count = count


# -- DataTable -------------------------------------------------------------------------------


class CellHook(DataTable[Text]):
    """Routes DataTable's per-cell render hook to ``fast_cell`` (None: DataTable draws it)."""

    def _render_cell(
        self,
        row_index: int,
        column_index: int,
        base_style: Style,
        width: int,
        cursor: bool = False,
        hover: bool = False,
    ) -> Any:
        if row_index >= 0 and column_index >= 0:
            lines = self.fast_cell(row_index, column_index, base_style, width, cursor, hover)
            if lines is not None:
                return lines
        return super()._render_cell(row_index, column_index, base_style, width, cursor, hover)

    def fast_cell(
        self, row_index: int, column_index: int, base_style: Style, width: int, cursor: bool, hover: bool
    ) -> SegmentLines | None:
        return None


def cell_cache_key(
    table: DataTable[Any], row: RowKey, column: ColumnKey, base_style: Style, cursor: bool, hover: bool
) -> CellCacheKey:
    """DataTable's own key for a drawn cell (so its invalidation applies to ours too)."""
    return (
        row,
        column,
        base_style,
        cursor,
        hover,
        table._show_hover_cursor,
        table._update_count,
        table._pseudo_class_state,
    )


def cached_cell(table: DataTable[Any], key: CellCacheKey) -> SegmentLines | None:
    return table._cell_render_cache.get(key)


def cache_cell(table: DataTable[Any], key: CellCacheKey, lines: SegmentLines) -> None:
    table._cell_render_cache[key] = lines


def cell_styles(table: DataTable[Any], cursor: bool, hover: bool) -> tuple[Style, Style]:
    """(component style, post style) of a body cell, as DataTable computes them."""
    return table._get_styles_to_render_cell(
        False,
        False,
        False,
        hover,
        cursor,
        table.show_cursor,
        table._show_hover_cursor,
        table.cursor_foreground_priority == "css",
        table.cursor_background_priority == "css",
    )


def set_cell_quietly(table: DataTable[Any], row_key: RowKey, column_key: ColumnKey, value: object) -> None:
    """Store a cell value without invalidating every drawn cell (``update_cell`` does)."""
    table._data[row_key][column_key] = value


def forget_rows(table: DataTable[Any], cells: set[tuple[RowKey, ColumnKey]]) -> set[int]:
    """Drop what DataTable drew for ``cells`` and their rows; returns the row indices."""
    rows = {row for row, _ in cells}
    indices = {index for key in rows if (index := table._row_locations.get(key)) is not None}
    regions = [table._get_row_region(index) for index in indices]
    lines = {y for region in regions for y in range(region.y, region.bottom)}
    caches: list[tuple[Any, Any]] = [
        (table._cell_render_cache, lambda key: (key[0], key[1]) in cells),
        (table._row_render_cache, lambda key: key[0] in rows),
        (table._row_renderable_cache, lambda key: key[1] in indices),
        (table._line_cache, lambda key: key[0] in lines),
    ]
    for cache, forget in caches:
        for key in [k for k in cache.keys() if forget(k)]:
            cache.discard(key)
    return indices


def columns_resized(table: DataTable[Any]) -> None:
    """After setting column widths directly: forget drawn cells and re-measure on next paint."""
    table._clear_caches()
    table._require_update_dimensions = True
