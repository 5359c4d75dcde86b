"""Column widths from content: every column at its content width while it fits; when the table
is too narrow, the flexible column (free text) gives way first, then the widest columns, and no
column goes below its readable width (the rest scrolls). Cells cut show an ellipsis."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from textual.widgets import DataTable

from tui.textual_internals import columns_resized
from tui.widgets.paged_table import Cells


@dataclass(frozen=True)
class Col:
    label: str
    readable: int = 0
    """Width below which the column is not shrunk (0: its content width, never cut)."""


def fit_widths(natural: Sequence[int], minimum: Sequence[int], flex: int, room: int) -> list[int]:
    """Widths (without padding) for ``room`` cells: shrink ``flex`` first, then the widest."""
    widths = list(natural)
    over = sum(widths) - room
    if over <= 0:
        return widths
    cut = min(over, max(0, widths[flex] - minimum[flex]))
    widths[flex] -= cut
    over -= cut
    while over > 0:
        slack = [(widths[i] - minimum[i], i) for i in range(len(widths)) if widths[i] > minimum[i]]
        if not slack:
            break
        _, index = max(slack)
        widths[index] -= 1
        over -= 1
    return widths


def fit_columns(table: DataTable[Any], cols: Sequence[Col], rows: Sequence[Cells], flex: int) -> None:
    """Size ``table``'s columns to ``rows`` and its current width; a no-op when nothing changes."""
    columns = table.ordered_columns
    if len(columns) != len(cols) or table.size.width <= 0:
        return
    natural = [len(col.label) for col in cols]
    for cells in rows:
        for index, cell in enumerate(cells[: len(cols)]):
            natural[index] = max(natural[index], cell.cell_len)
    minimum = [min(n, c.readable) if c.readable else n for n, c in zip(natural, cols, strict=True)]
    minimum = [max(m, len(c.label)) for m, c in zip(minimum, cols, strict=True)]
    scrollbar = table.styles.scrollbar_size_vertical if len(rows) + 1 > table.size.height else 0
    room = table.size.width - scrollbar - 2 * table.cell_padding * len(cols)
    widths = fit_widths(natural, minimum, flex, room)
    if all(not c.auto_width and c.width == w for c, w in zip(columns, widths, strict=True)):
        return
    for column, width in zip(columns, widths, strict=True):
        column.auto_width = False
        column.width = width
    columns_resized(table)
    table.refresh()
