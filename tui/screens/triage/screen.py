"""The one triage screen: one database page in a table, filter bar, detail pane, actions.

The table never holds more than one page; paging, filtering and counting happen in the
database (keyset cursors from core.triage). Every read and action runs in an exclusive
worker; a failure becomes a notification through ``WorkerErrors``. The screen is
parameterised by a kind (``triage_screen("dlq")``): its keys come from the kind's transitions,
its columns and detail header from the kind's view.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, ClassVar, Generic

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import BindingType
from textual.containers import Horizontal, Vertical
from textual.widgets import DataTable, Static

from core.api import Cursor, D, F, Page, R, Sort, TriageKind, TriageService
from core.snapshot import Snapshot
from tui.keymap import bind
from tui.render import plain
from tui.screens.base import OpsScreen
from tui.screens.triage.filters import FilterKeys
from tui.screens.triage.flow import ActionFlow
from tui.screens.triage.layout import (
    HORIZONTAL_BREAKPOINTS,
    STACK_BELOW_WIDTH,
    VERTICAL_BREAKPOINTS,
    ResponsiveLayout,
)
from tui.screens.triage.views import VIEWS, KindView
from tui.widgets.filter_bar import FilterBar
from tui.widgets.paged_table import PagedTable
from tui.widgets.payload_view import PayloadView

PAGE_SIZE = 50
DETAIL_DEBOUNCE_S = 0.06
_RELOAD = object()
"""Summary key of a page fetched before the first snapshot with a backlog summary: reload on show."""


class TriageScreen(ResponsiveLayout, FilterKeys, ActionFlow, OpsScreen, Generic[F, R, D]):
    """Built per kind by :func:`triage_screen`, which sets ``VIEW`` and the bindings."""

    VIEW: ClassVar[type[KindView[Any, Any, Any]]]
    HORIZONTAL_BREAKPOINTS = HORIZONTAL_BREAKPOINTS
    VERTICAL_BREAKPOINTS = VERTICAL_BREAKPOINTS

    def __init__(self) -> None:
        super().__init__()
        self.view: KindView[F, R, D] = self.VIEW(self)
        self.filter: F = self.VIEW.SPEC.filter_type()
        self.sort: Sort = Sort.NEWEST
        self.cursor: Cursor | None = None
        self.page: Page[R] | None = None
        self.selected: set[int] = set()
        self.all_matching = False
        self.detail: D | None = None
        self._detail_id: int | None = None
        """The row whose detail is shown or being loaded; None forces a reload on the next render."""
        self.business_label: str | None = None
        """Display name of the filter's business (the filter itself holds the id)."""
        self._summary_key: object = None
        self.page_loads = 0
        self.columns: tuple[tuple[str, str, int], ...] = ()
        self._shown: tuple[int, ...] = ()

    @property
    def triage(self) -> TriageService:
        """The one way this screen reaches the triage service."""
        service: TriageService = self.ops.services.triage
        return service

    @property
    def kind(self) -> TriageKind[F, R, D]:
        return self.triage.kind(self.VIEW.SPEC.name)

    @property
    def noun(self) -> str:
        return self.VIEW.SPEC.noun

    @property
    def singular(self) -> str:
        return self.VIEW.SPEC.singular

    @property
    def table(self) -> PagedTable:
        return self.query_one("#triage-table", PagedTable)

    @property
    def filter_bar(self) -> FilterBar:
        return self.query_one(FilterBar)

    # -- layout and loading ----------------------------------------------------------------------

    def compose_body(self) -> ComposeResult:
        yield from self.view.compose_extra()
        yield FilterBar(id="filter-bar")
        yield Static(id="triage-summary")
        with Horizontal(id="triage-main"):
            yield PagedTable(id="triage-table", positional=True)
            with Vertical(id="triage-detail"):
                yield PayloadView(id="payload-view")

    def on_mount(self) -> None:
        self.view.on_mount()
        if not self.query("#triage-table"):  # a pre-built screen torn down by a quick quit
            return
        table = self.table
        screen_width = self.app.size.width
        self._fit_columns(screen_width if screen_width < STACK_BELOW_WIDTH else screen_width * 64 // 100)
        table.focus()
        self._show_filter()
        if self.is_current:
            self.load_page(None)
        else:
            self._prefetch()

    async def fetch_page(self, cursor: Cursor | None) -> Page[R]:
        return await self.kind.list(self.filter, self.sort, cursor, limit=PAGE_SIZE)

    @work(exclusive=True, group="page", exit_on_error=False)
    async def _prefetch(self) -> None:
        """First page for a screen built before its first visit (also warms a pool connection).

        Quiet: a failure only means the visit loads it. The page is drawn into the table now;
        the first visit re-checks ages and reloads if the backlog changed meanwhile.
        """
        key = self.view.summary_key(self.ops.snapshot)
        try:
            page = await self.fetch_page(None)
        except Exception:
            self._summary_key = _RELOAD
            return
        self._summary_key = _RELOAD if key is None else key
        self.page = page
        self.page_loads += 1
        self._render_page()

    def apply_snapshot(self, snapshot: Snapshot) -> None:
        self._apply_summary(snapshot)
        self.view.apply_snapshot(snapshot)

    def _apply_summary(self, snapshot: Snapshot) -> None:
        key = self.view.summary_key(snapshot)
        if key is None and self.page is not None:
            # no backlog summary yet: the page may already be older than the first one to come
            key = _RELOAD
        if key != self._summary_key:
            first = self._summary_key is None
            prefetched = self._summary_key is _RELOAD
            self._summary_key = key
            if prefetched or (not first and self.page is not None):
                self.load_page(self.cursor, keep_cursor=True)
                return
        self._render_page(keep_cursor=True)

    @work(exclusive=True, group="page", exit_on_error=False)
    async def load_page(
        self, cursor: Cursor | None, *, to_end: bool = False, keep_cursor: bool = False
    ) -> None:
        seen = self.view.summary_key(self.ops.snapshot)
        page = await self.fetch_page(cursor)
        if cursor is not None and not page.rows and keep_cursor:
            cursor = None
            page = await self.fetch_page(None)
        self.cursor = cursor
        self.page = page
        if self._summary_key is None:  # no summary applied yet: the next one is compared with this
            self._summary_key = _RELOAD if seen is None else seen
        self.page_loads += 1
        self._render_page(keep_cursor=keep_cursor, to_end=to_end)

    def _render_page(self, *, keep_cursor: bool = False, to_end: bool = False, at: str | None = None) -> None:
        page = self.page
        table = next(iter(self.query("#triage-table").results(PagedTable)), None)
        if page is None or table is None:  # no table: the app is closing and took it down already
            return
        rows = [(str(row.id), self._cells(row)) for row in page.rows]
        target: str | int | None = None if keep_cursor else (len(rows) - 1 if to_end else 0)
        if at is not None:
            target = at
        with self.app.batch_update():
            table.has_next = page.next_cursor is not None
            table.has_prev = page.prev_cursor is not None
            table.sync(rows, cursor=target)
            self._show_summary()
        if not rows:
            self.detail = None
            self._detail_id = None
            self.query_one(PayloadView).clear_detail(f"no {self.noun} match this filter")
        elif not keep_cursor or self.current_id() != self._detail_id or self._detail_outdated():
            self._request_detail()

    def _detail_outdated(self) -> bool:
        """The cursor row changed in place (status, retries) since its detail was read."""
        row = self.current_row()
        shown = self.detail.row if self.detail is not None else None
        return row is not None and shown is not None and shown.id == row.id and shown != row

    def _cells(self, row: R) -> list[Text]:
        mark = "■" if (self.all_matching or row.id in self.selected) else " "
        cells: list[Text] = self.view.row_cells(row)
        return [plain(mark), *(cells[i] for i in self._shown)]

    def _show_summary(self) -> None:
        page = self.page
        total = page.total if page else 0
        if self.all_matching:
            chosen = f"ALL {total:,} matching selected"
        elif self.selected:
            chosen = f"{len(self.selected):,} selected"
        else:
            chosen = "none selected"
        text = plain(
            f"{total:,} {self.noun} match · {len(page.rows) if page else 0} shown · "
            f"{chosen} · sort {self.sort.value}"
        )
        if self.stacked_short and not self.has_class("-detail-open"):
            text = Text.assemble(("Enter: details", "bold"), " · ", text)
        self.query_one("#triage-summary", Static).update(text, layout=False)

    def _show_filter(self) -> None:
        self.filter_bar.show(self.view.filter_summary())

    def on_paged_table_page_requested(self, message: PagedTable.PageRequested) -> None:
        page = self.page
        if page is None:
            return
        if message.direction > 0 and page.next_cursor is not None:
            self.load_page(page.next_cursor)
        elif message.direction < 0 and page.prev_cursor is not None:
            self.load_page(page.prev_cursor, to_end=True)
        elif message.direction == 0:
            self.load_page(None)

    # -- the detail of the cursor row ------------------------------------------------------------

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        if event.data_table.id == "triage-table":
            self._request_detail()

    def _request_detail(self) -> None:
        row_id = self.current_id()
        self._detail_id = row_id
        if row_id is not None:
            self.load_detail(row_id)

    @work(exclusive=True, group="detail", exit_on_error=False)
    async def load_detail(self, row_id: int) -> None:
        await asyncio.sleep(DETAIL_DEBOUNCE_S)
        detail = await self.kind.detail(row_id)
        if self.current_id() != row_id:
            return
        self.detail = detail
        if detail is None:
            self.query_one(PayloadView).clear_detail(f"#{row_id} no longer exists")
        else:
            self.view.show_detail(detail)

    def current_id(self) -> int | None:
        key = self.table.current_key
        return int(key) if key is not None else None

    def current_row(self) -> R | None:
        row_id = self.current_id()
        if self.page is None or row_id is None:
            return None
        return next((r for r in self.page.rows if r.id == row_id), None)


def triage_bindings(prefix: str) -> list[BindingType]:
    return [
        bind(f"{prefix}.search", "slash", "search", "Search", key_display="/"),
        bind(f"{prefix}.status", "s", "cycle_status", "Status"),
        bind(f"{prefix}.business", "b", "filter_business", "Business", show=False),
        bind(f"{prefix}.sort", "t", "cycle_sort", "Sort", show=False),
        bind(f"{prefix}.clear_filter", "x", "clear_filter", "Clear filter", show=False),
        bind(f"{prefix}.select", "space", "toggle_select", "Select", show=False),
        bind(
            f"{prefix}.select_all",
            "asterisk",
            "select_all",
            "Select all matching",
            key_display="*",
            show=False,
        ),
        bind(f"{prefix}.unselect", "escape", "leave", "Clear selection", show=False),
        bind(f"{prefix}.full_view", "v", "full_view", "Full view", show=False),
        bind(f"{prefix}.refresh", "ctrl+r", "reload", "Reload", show=False),
    ]


def _on_row(name: str) -> Callable[[TriageScreen[Any, Any, Any]], None]:
    def action(self: TriageScreen[Any, Any, Any]) -> None:
        self.single(self.VIEW.SPEC.transition(name))

    return action


def _on_all(name: str) -> Callable[[TriageScreen[Any, Any, Any]], None]:
    def action(self: TriageScreen[Any, Any, Any]) -> None:
        self.bulk(self.VIEW.SPEC.transition(name))

    return action


def _on_view(name: str) -> Callable[[TriageScreen[Any, Any, Any]], None]:
    def action(self: TriageScreen[Any, Any, Any]) -> None:
        getattr(self.view, f"action_{name}")()

    return action


def triage_screen(kind: str, class_name: str) -> type[TriageScreen[Any, Any, Any]]:
    """The triage screen of ``kind``: its keys generated from the kind's transition table
    (the row under the cursor, then every matching row), its filter keys, the common keys."""
    view = VIEWS[kind]
    spec = view.SPEC
    singles: list[BindingType] = []
    bulks: list[BindingType] = []
    namespace: dict[str, Any] = {"__module__": __name__, "VIEW": view, "SCREEN_TITLE": spec.title}
    for t in spec.transitions:
        singles.append(bind(f"{spec.name}.{t.name}", t.key, t.name, t.label, show=t.shown))
        namespace[f"action_{t.name}"] = _on_row(t.name)
        if t.bulk_key is not None:
            bulks.append(
                bind(
                    f"{spec.name}.bulk_{t.name}",
                    t.bulk_key,
                    f"bulk_{t.name}",
                    f"{t.label} all",
                    key_display=t.bulk_key,
                    show=t.bulk_shown,
                )
            )
            namespace[f"action_bulk_{t.name}"] = _on_all(t.name)
    for binding in view.FILTER_BINDINGS:
        action = binding.action if not isinstance(binding, tuple) else binding[1]
        namespace[f"action_{action}"] = _on_view(action)
    namespace["BINDINGS"] = [*singles, *bulks, *view.FILTER_BINDINGS, *triage_bindings(spec.name)]
    return type(class_name, (TriageScreen,), namespace)


DeadLettersScreen = triage_screen("dlq", "DeadLettersScreen")
"""3 Dead letters."""
EventsScreen = triage_screen("events", "EventsScreen")
"""4 Event failures: tallies by event and status, hourly trend, and the triage list."""
