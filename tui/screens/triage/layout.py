"""Responsive layout of the triage screen: which columns fit, side-by-side or stacked detail."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from textual.widgets import DataTable

from tui.widgets.paged_table import PagedTable

if TYPE_CHECKING:
    from tui.screens.triage.views import Column

STACK_BELOW_WIDTH = 140
"""Narrower screens stack the detail under the list (side by side the error column starves)."""
SHORT_BELOW_HEIGHT = 34
"""Shorter stacked screens give the list the height; Enter opens the detail below it."""
MIN_FLEX_WIDTH = 20

HORIZONTAL_BREAKPOINTS: list[tuple[int, str]] = [(0, "-stacked"), (STACK_BELOW_WIDTH, "-side")]
VERTICAL_BREAKPOINTS: list[tuple[int, str]] = [(0, "-short"), (SHORT_BELOW_HEIGHT, "-tall")]


def column_layout(columns: tuple[Column, ...], width: int) -> tuple[tuple[str, str, int], ...]:
    """The columns that fit a table ``width`` cells wide; the flexible one gets the rest."""
    chosen = [(key, label, w) for key, label, w, shown_from in columns if width >= shown_from]
    used = 3 + sum(w + 2 for _, _, w in chosen if w) + 2  # selection mark, cell padding, scrollbar
    flex = max(MIN_FLEX_WIDTH, width - used - 2)
    return tuple((key, label, w or flex) for key, label, w in chosen)


class ResponsiveLayout:
    """Mixin of TriageScreen: fits the columns to the table and opens the stacked detail."""

    columns: tuple[tuple[str, str, int], ...]
    """The columns shown now: (key, label, width)."""
    _shown: tuple[int, ...]

    if TYPE_CHECKING:  # supplied by the screen
        app: Any
        view: Any

        @property
        def table(self) -> PagedTable: ...

        def has_class(self, *class_names: str) -> bool: ...
        def toggle_class(self, *class_names: str) -> Any: ...
        def _render_page(
            self, *, keep_cursor: bool = False, to_end: bool = False, at: str | None = None
        ) -> None: ...
        def _show_summary(self) -> None: ...

    def on_paged_table_resized(self, message: PagedTable.Resized) -> None:
        if message.table.id == "triage-table" and message.width:
            self._fit_columns(message.width)

    def column_layout(self, width: int) -> tuple[tuple[str, str, int], ...]:
        return column_layout(self.view.COLUMNS, width)

    def _fit_columns(self, width: int) -> None:
        layout = self.column_layout(width)
        if layout == self.columns:
            return
        table = self.table
        at = table.current_key
        keys = [key for key, _, _, _ in self.view.COLUMNS]
        self.columns = layout
        self._shown = tuple(keys.index(key) for key, _, _ in layout)
        with self.app.batch_update():
            table.clear(columns=True)
            table.add_column(" ", key="sel", width=1)
            for key, label, w in layout:
                table.add_column(label, key=key, width=w)
            self._render_page(keep_cursor=True, at=at)

    @property
    def stacked_short(self) -> bool:
        return self.has_class("-stacked") and self.has_class("-short")

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        """Enter: open (or close) the detail below the list when the screen is too short for both."""
        if event.data_table.id == "triage-table" and self.stacked_short:
            self.toggle_class("-detail-open")
            self._show_summary()
