"""Canary for the Textual internals opswatch relies on (all in ``tui/textual_internals.py``).

Each test names the internal it guards; a failure after a Textual upgrade says which one moved,
so ``tui/textual_internals.py`` (and the ``textual~=8.2`` pin) can be brought in step.
"""

from __future__ import annotations

import inspect
from typing import Any, ClassVar

import textual
from rich.style import Style
from rich.text import Text
from textual.app import App, ComposeResult
from textual.screen import Screen
from textual.widgets import DataTable, Static
from textual.widgets.data_table import RowKey

from tests.tui.support import wait_for
from tui import textual_internals as internals
from tui.widgets.fast_table import FastTable


def moved(what: str) -> str:
    return (
        f"Textual {textual.__version__} changed {what}, which tui/textual_internals.py relies on: "
        "adapt that module (or find the public API that replaces it) before raising the pin"
    )


def params(owner: type, name: str) -> list[str]:
    """The parameter names of ``owner.name``; empty when it is gone."""
    function = getattr(owner, name, None)
    return list(inspect.signature(function).parameters) if callable(function) else []


class Plain(Screen[None]):
    def compose(self) -> ComposeResult:
        yield Static("plain")


class ModesApp(App[None]):
    MODES: ClassVar[dict[str, Any]] = {"main": Plain}

    def __init__(self, mark: bool) -> None:
        super().__init__()
        self.mark = mark
        self.css_refreshes = 0

    def on_mount(self) -> None:
        self.switch_mode("main")
        self.add_mode("other", self._other)

    def _other(self) -> Screen[None]:
        screen = Plain()
        if self.mark:
            internals.mark_styled(self, screen)
        return screen

    def refresh_css(self, animate: bool = True) -> None:
        self.css_refreshes += 1
        super().refresh_css(animate)


class TableApp(App[None]):
    def __init__(self, table: DataTable[Any]) -> None:
        super().__init__()
        self.table = table

    def compose(self) -> ComposeResult:
        yield self.table


def fill(table: DataTable[Any], rows: int = 5) -> None:
    table.add_columns("a", "b")
    for index in range(rows):
        table.add_row(Text(f"a{index}"), Text(f"b{index}"), key=f"r{index}")


async def test_a_screen_can_be_started_off_stage() -> None:
    assert params(App, "_get_screen") == ["self", "screen"], moved("App._get_screen(screen)")
    app = ModesApp(mark=False)
    async with app.run_test() as pilot:
        screen = Plain()
        internals.start_offstage(app, screen)
        await wait_for(
            pilot, lambda: screen.is_mounted and screen.query(Static), what="off-stage screen mounted"
        )
        assert app.screen is not screen, moved("App._get_screen (it showed the screen)")


async def css_refreshes_on_first_switch(mark: bool) -> int:
    app = ModesApp(mark=mark)
    async with app.run_test() as pilot:
        assert isinstance(getattr(app, "_css_update_count", None), int), moved("App._css_update_count")
        await wait_for(pilot, lambda: app.current_mode == "main", what="main mode")
        app.css_refreshes = 0
        app.switch_mode("other")
        await pilot.pause()
        assert isinstance(getattr(app.screen, "_css_update_count", None), int), moved(
            "Screen._css_update_count"
        )
        return app.css_refreshes


async def test_a_new_screen_marked_styled_skips_the_stylesheet_refresh() -> None:
    assert await css_refreshes_on_first_switch(mark=False) > 0, moved(
        "when switch_mode refreshes the CSS (a new screen no longer triggers it: mark_styled may go)"
    )
    assert await css_refreshes_on_first_switch(mark=True) == 0, moved(
        "when switch_mode refreshes the CSS (a screen marked styled still triggers it)"
    )


class Recording(internals.CellHook):
    def __init__(self) -> None:
        super().__init__()
        self.asked: list[tuple[int, int]] = []

    def fast_cell(
        self, row_index: int, column_index: int, base_style: Style, width: int, cursor: bool, hover: bool
    ) -> internals.SegmentLines | None:
        self.asked.append((row_index, column_index))
        return None


async def test_datatable_draws_body_cells_through_the_cell_hook() -> None:
    expected = ["self", "row_index", "column_index", "base_style", "width", "cursor", "hover"]
    assert params(DataTable, "_render_cell") == expected, moved("DataTable._render_cell's parameters")
    styles = params(DataTable, "_get_styles_to_render_cell")
    assert styles[:3] == ["self", "is_header_cell", "is_row_label_cell"] and len(styles) == 10, moved(
        "DataTable._get_styles_to_render_cell's parameters"
    )
    table = Recording()
    async with TableApp(table).run_test() as pilot:
        fill(table)
        await wait_for(pilot, lambda: (4, 1) in table.asked, what="every body cell drawn through the hook")
        assert table.render_line(1).text.split() == ["a0", "b0"], moved("DataTable's fallback cell drawing")


async def test_the_cell_caches_have_the_keys_fast_table_reads_and_forgets() -> None:
    table = DataTable[Text]()
    async with TableApp(table).run_test() as pilot:
        fill(table)
        await wait_for(pilot, lambda: len(table._cell_render_cache) > 0, what="cells drawn")
        table.render_line(1)  # the first row, drawn in the table's current state
        column = table.ordered_columns[0].key
        key = internals.cell_cache_key(table, RowKey("r0"), column, Style(), False, False)
        cell_keys = [k for k in table._cell_render_cache.keys() if k[0] == RowKey("r0") and k[1] == column]
        assert any(len(k) == len(key) and k[5:] == key[5:] for k in cell_keys), moved(
            "DataTable._cell_render_cache's key (row, column, style, cursor, hover, hover cursor, "
            "update count, pseudo classes)"
        )
        assert all(isinstance(k[0], RowKey) for k in table._row_render_cache.keys()), moved(
            "DataTable._row_render_cache's key (row key first)"
        )
        assert all(
            isinstance(k[1], int) and isinstance(k[0], int) and k[0] <= table._update_count
            for k in table._row_renderable_cache.keys()
        ), moved("DataTable._row_renderable_cache's key (update count, row index)")
        assert all(isinstance(k[0], int) for k in table._line_cache.keys()), moved(
            "DataTable._line_cache's key (line y first)"
        )
        assert hasattr(table._line_cache, "discard"), moved("LRUCache.discard")
        assert table._row_locations.get(RowKey("r3")) == 3, moved("DataTable._row_locations")
        assert table._get_row_region(3).height == 1, moved("DataTable._get_row_region")
        assert table._data[RowKey("r3")][column] == table.get_cell("r3", column), moved(
            "DataTable._data (row key -> column key -> value)"
        )
        styles = internals.cell_styles(table, cursor=True, hover=False)
        assert all(isinstance(s, Style) for s in styles), moved(
            "DataTable._get_styles_to_render_cell's result"
        )


async def test_fast_table_redraws_only_the_rows_it_changed() -> None:
    table = FastTable()
    async with TableApp(table).run_test() as pilot:
        fill(table)
        await wait_for(pilot, lambda: table.render_line(5).text.split() == ["a4", "b4"], what="table drawn")
        column = table.ordered_columns[1].key
        kept = [k for k in table._cell_render_cache.keys() if k[0] == RowKey("r4")]
        table.update_cells([("r1", column, Text("zz"))])
        await wait_for(pilot, lambda: table.render_line(2).text.split() == ["a1", "zz"], what="row redrawn")
        assert kept and all(k in table._cell_render_cache for k in kept), moved(
            "what update_cells may keep (an untouched row's drawn cells were dropped)"
        )


async def test_columns_resized_makes_the_table_remeasure() -> None:
    table = DataTable[Text]()
    async with TableApp(table).run_test() as pilot:
        fill(table)
        await wait_for(pilot, lambda: table.virtual_size.width > 0, what="table measured")
        before = table.virtual_size.width
        for column in table.ordered_columns:
            column.auto_width = False
            column.width = 20
        assert isinstance(table._require_update_dimensions, bool), moved(
            "DataTable._require_update_dimensions"
        )
        internals.columns_resized(table)
        table.refresh()
        await wait_for(pilot, lambda: table.virtual_size.width > before, what="columns re-measured")
