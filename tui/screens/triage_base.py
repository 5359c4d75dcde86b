"""Shared triage screen: one database page in a table, filter bar, detail pane, actions.

The table never holds more than one page; paging, filtering and counting happen in the
database (keyset cursors from core.triage). Every read and action runs in an exclusive
worker; a failure becomes a notification through ``WorkerErrors``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import replace
from datetime import datetime
from typing import Any, ClassVar

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import BindingType
from textual.containers import Horizontal, Vertical
from textual.notifications import SeverityLevel
from textual.widgets import DataTable, Input, Static

from core.audit import AuditEntry
from core.safe_text import display_text, pretty_json
from core.snapshot import Snapshot
from core.triage.models import ActionResult, BulkPreview, BulkProgress, Cursor, Page, Sort
from tui.keymap import bind
from tui.render import fmt_when, plain, safe
from tui.screens.base import OpsScreen
from tui.widgets.confirm_modal import ConfirmModal
from tui.widgets.filter_bar import FilterBar
from tui.widgets.paged_table import PagedTable
from tui.widgets.payload_view import PayloadView
from tui.widgets.progress_modal import ProgressModal
from tui.widgets.prompt_modal import PromptModal
from tui.widgets.text_view import FULL_VIEW_LIMIT, TextViewModal, full_view_text

PAGE_SIZE = 50
STACK_BELOW_WIDTH = 140
"""Narrower screens stack the detail under the list (side by side the error column starves)."""
SHORT_BELOW_HEIGHT = 34
"""Shorter stacked screens give the list the height; Enter opens the detail below it."""
MIN_FLEX_WIDTH = 20
_RELOAD = object()
"""Summary key of a page fetched before the first snapshot with a backlog summary: reload on show."""
DETAIL_DEBOUNCE_S = 0.06
SORTS = (Sort.NEWEST, Sort.OLDEST, Sort.MOST_RETRIES)

Row = Any
Filter = Any


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


def preview_lines(preview: BulkPreview, noun: str) -> list[Text]:
    lines = [plain(f"{preview.count:,} {noun} match the filter")]
    if preview.oldest or preview.newest:
        lines.append(plain(f"created {fmt_when(preview.oldest)} … {fmt_when(preview.newest)}"))
    for title, items in (
        ("errors", preview.top_errors),
        ("businesses", preview.businesses),
        ("channels", preview.channels),
        ("events", preview.event_names),
    ):
        if items:
            line = plain(f"top {title}: ")
            for i, item in enumerate(items[:3]):
                if i:
                    line.append(", ")
                line.append_text(safe(item.key, 50))
                line.append(f" ({item.count:,})")
            lines.append(line)
    return lines


def _full_view_body(error: str, payload: str) -> str:
    return full_view_text(f"Error\n{error}\n\nPayload\n{pretty_json(payload, FULL_VIEW_LIMIT)}")


class TriageScreen(OpsScreen):
    """Subclasses set the kind-specific hooks below."""

    NOUN: ClassVar[str] = "rows"
    STATUSES: ClassVar[tuple[str, ...]] = ()
    COLUMNS: ClassVar[tuple[tuple[str, str, int, int], ...]] = ()
    """(key, label, width, shown from table width). Width 0 is the one flexible column: it takes
    what the others leave. Widths change only on resize, so paging never re-lays out the table."""
    HORIZONTAL_BREAKPOINTS: ClassVar[list[tuple[int, str]] | None] = [
        (0, "-stacked"),
        (STACK_BELOW_WIDTH, "-side"),
    ]
    VERTICAL_BREAKPOINTS: ClassVar[list[tuple[int, str]] | None] = [
        (0, "-short"),
        (SHORT_BELOW_HEIGHT, "-tall"),
    ]
    BULK_ACTIONS: ClassVar[tuple[str, ...]] = ("retry",)

    def __init__(self) -> None:
        super().__init__()
        self.filter: Filter = self.default_filter()
        self.sort: Sort = Sort.NEWEST
        self.cursor: Cursor | None = None
        self.page: Page[Row] | None = None
        self.selected: set[int] = set()
        self.all_matching = False
        self.detail: Any = None
        self._detail_id: int | None = None
        """The row whose detail is shown or being loaded; None forces a reload on the next render."""
        self.business_label: str | None = None
        """Display name of the filter's business (the filter itself holds the id)."""
        self._summary_key: object = None
        self.page_loads = 0
        self.columns: tuple[tuple[str, str, int], ...] = ()
        """The columns shown now: (key, label, width)."""
        self._shown: tuple[int, ...] = ()

    @property
    def table(self) -> PagedTable:
        return self.query_one("#triage-table", PagedTable)

    # -- hooks ---------------------------------------------------------------------------------

    def default_filter(self) -> Filter:
        raise NotImplementedError

    async def fetch_page(self, cursor: Cursor | None) -> Page[Row]:
        raise NotImplementedError

    async def fetch_detail(self, row_id: int) -> Any:
        raise NotImplementedError

    async def fetch_preview(self, action: str) -> BulkPreview:
        raise NotImplementedError

    async def fetch_raw(self, row_id: int) -> tuple[str, str]:
        """(full error, full payload) for the full view; unbounded, not yet display-safe."""
        raise NotImplementedError

    def action_call(self, action: str, ids: list[int], reason: str | None) -> Awaitable[ActionResult]:
        raise NotImplementedError

    def bulk_call(
        self, action: str, reason: str | None, progress: Callable[[BulkProgress], None], cancel: asyncio.Event
    ) -> Awaitable[ActionResult]:
        raise NotImplementedError

    def row_cells(self, row: Row) -> list[Text]:
        raise NotImplementedError

    def show_detail(self, detail: Any) -> None:
        raise NotImplementedError

    def filter_summary(self) -> Text:
        raise NotImplementedError

    def summary_key(self, snapshot: Snapshot) -> object:
        """Changes when the page might be out of date (new rows, status changes)."""
        return None

    def compose_extra(self) -> ComposeResult:
        yield from ()

    # -- layout --------------------------------------------------------------------------------

    def compose_body(self) -> ComposeResult:
        yield from self.compose_extra()
        yield FilterBar(id="filter-bar")
        yield Static(id="triage-summary")
        with Horizontal(id="triage-main"):
            yield PagedTable(id="triage-table", positional=True)
            with Vertical(id="triage-detail"):
                yield PayloadView(id="payload-view")

    def on_mount(self) -> None:
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

    @work(exclusive=True, group="page", exit_on_error=False)
    async def _prefetch(self) -> None:
        """First page for a screen built before its first visit (also warms a pool connection).

        Quiet: a failure only means the visit loads it. The page is drawn into the table now;
        the first visit re-checks ages and reloads if the backlog changed meanwhile.
        """
        key = self.summary_key(self.ops.snapshot)
        try:
            page = await self.fetch_page(None)
        except Exception:
            self._summary_key = _RELOAD
            return
        self._summary_key = _RELOAD if key is None else key
        self.page = page
        self.page_loads += 1
        self._render_page()

    # -- responsive layout ---------------------------------------------------------------------

    def on_paged_table_resized(self, message: PagedTable.Resized) -> None:
        if message.table.id == "triage-table" and message.width:
            self._fit_columns(message.width)

    def column_layout(self, width: int) -> tuple[tuple[str, str, int], ...]:
        """The columns that fit a table ``width`` cells wide; the flexible one gets the rest."""
        chosen = [(key, label, w) for key, label, w, shown_from in self.COLUMNS if width >= shown_from]
        used = 3 + sum(w + 2 for _, _, w in chosen if w) + 2  # selection mark, cell padding, scrollbar
        flex = max(MIN_FLEX_WIDTH, width - used - 2)
        return tuple((key, label, w or flex) for key, label, w in chosen)

    def _fit_columns(self, width: int) -> None:
        layout = self.column_layout(width)
        if layout == self.columns:
            return
        table = self.table
        at = table.current_key
        keys = [key for key, _, _, _ in self.COLUMNS]
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

    # -- snapshot ------------------------------------------------------------------------------

    def apply_snapshot(self, snapshot: Snapshot) -> None:
        key = self.summary_key(snapshot)
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

    # -- loading -------------------------------------------------------------------------------

    @work(exclusive=True, group="page", exit_on_error=False)
    async def load_page(
        self, cursor: Cursor | None, *, to_end: bool = False, keep_cursor: bool = False
    ) -> None:
        seen = self.summary_key(self.ops.snapshot)
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
            self.query_one(PayloadView).clear_detail(f"no {self.NOUN} match this filter")
        elif not keep_cursor or self.current_id() != self._detail_id or self._detail_outdated():
            self._request_detail()

    def _detail_outdated(self) -> bool:
        """The cursor row changed in place (status, retries) since its detail was read."""
        row = self.current_row()
        shown = getattr(self.detail, "row", None)
        return row is not None and shown is not None and shown.id == row.id and shown != row

    def _cells(self, row: Row) -> list[Text]:
        mark = "■" if (self.all_matching or row.id in self.selected) else " "
        cells = self.row_cells(row)
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
            f"{total:,} {self.NOUN} match · {len(page.rows) if page else 0} shown · "
            f"{chosen} · sort {self.sort.value}"
        )
        if self.stacked_short and not self.has_class("-detail-open"):
            text = Text.assemble(("Enter: details", "bold"), " · ", text)
        self.query_one("#triage-summary", Static).update(text, layout=False)

    def _show_filter(self) -> None:
        self.query_one(FilterBar).show(self.filter_summary())

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
        detail = await self.fetch_detail(row_id)
        if self.current_id() != row_id:
            return
        self.detail = detail
        if detail is None:
            self.query_one(PayloadView).clear_detail(f"#{row_id} no longer exists")
        else:
            self.show_detail(detail)

    def current_id(self) -> int | None:
        key = self.table.current_key
        return int(key) if key is not None else None

    def current_row(self) -> Row | None:
        row_id = self.current_id()
        if self.page is None or row_id is None:
            return None
        return next((r for r in self.page.rows if r.id == row_id), None)

    # -- filter actions ------------------------------------------------------------------------

    def set_filter(self, new_filter: Filter, *, business_label: str | None = None) -> None:
        try:
            new_filter.validate()
        except ValueError as exc:
            self.ops.report(str(exc), severity="warning")
            return
        if new_filter.business_id != self.filter.business_id or business_label is not None:
            self.business_label = business_label if new_filter.business_id is not None else None
        self.filter = new_filter
        self.selected.clear()
        self.all_matching = False
        self._show_filter()
        self.load_page(None)

    def action_search(self) -> None:
        self.query_one(FilterBar).focus_search()

    def on_filter_bar_search_submitted(self, message: FilterBar.SearchSubmitted) -> None:
        self.set_filter(replace(self.filter, text=message.text or None))
        self.table.focus()

    def action_cycle_status(self) -> None:
        options: list[tuple[str, ...]] = [(s,) for s in self.STATUSES] + [()]
        current = tuple(self.filter.status)
        index = options.index(current) if current in options else -1
        self.set_filter(replace(self.filter, status=options[(index + 1) % len(options)]))

    def action_cycle_sort(self) -> None:
        self.sort = SORTS[(SORTS.index(self.sort) + 1) % len(SORTS)]
        self.load_page(None)

    def action_clear_filter(self) -> None:
        self.query_one(FilterBar).set_text("")
        self.set_filter(self.default_filter())

    def action_filter_business(self) -> None:
        self._ask_business()

    @work(exclusive=True, group="prompt", exit_on_error=False)
    async def _ask_business(self) -> None:
        current = self.filter.business_id
        value = await self.app.push_screen_wait(
            PromptModal(
                "Filter by business: id or name (empty = any)",
                value=self.business_label or ("" if current is None else str(current)),
                placeholder="e.g. 12 or acme tacos (case-insensitive)",
            )
        )
        if value is None:
            return
        if not value:
            self.set_filter(replace(self.filter, business_id=None))
            return
        try:
            business_id, name = await self.ops.monitor.triage.resolve_business(value)
        except ValueError as exc:
            self.ops.report(str(exc), severity="warning")
            return
        self.set_filter(replace(self.filter, business_id=business_id), business_label=name)

    @work(exclusive=True, group="prompt", exit_on_error=False)
    async def _ask_id(self, field: str, title: str) -> None:
        current = getattr(self.filter, field)
        value = await self.app.push_screen_wait(
            PromptModal(title, value="" if current is None else str(current), validate=_positive_int_or_empty)
        )
        if value is not None:
            self.set_filter(replace(self.filter, **{field: int(value) if value else None}))

    @work(exclusive=True, group="prompt", exit_on_error=False)
    async def _ask_text(self, field: str, title: str) -> None:
        current = getattr(self.filter, field)
        value = await self.app.push_screen_wait(PromptModal(title, value=current or ""))
        if value is not None:
            self.set_filter(replace(self.filter, **{field: value or None}))

    def action_leave(self) -> None:
        if isinstance(self.focused, Input):
            self.table.focus()
            return
        if self.stacked_short and self.has_class("-detail-open"):
            self.remove_class("-detail-open")
            self._show_summary()
            return
        if self.selected or self.all_matching:
            self.selected.clear()
            self.all_matching = False
            self._render_page(keep_cursor=True)

    def action_toggle_select(self) -> None:
        row_id = self.current_id()
        if row_id is None:
            return
        self.all_matching = False
        self.selected.symmetric_difference_update({row_id})
        self._render_page(keep_cursor=True)

    def action_select_all(self) -> None:
        self.all_matching = not self.all_matching
        self.selected.clear()
        self._render_page(keep_cursor=True)

    def action_reload(self) -> None:
        self.load_page(self.cursor, keep_cursor=True)

    def action_full_view(self) -> None:
        row_id = self.current_id()
        if row_id is not None:
            self.open_full_view(row_id)

    @work(exclusive=True, group="full-view", exit_on_error=False, name="full view")
    async def open_full_view(self, row_id: int) -> None:
        error, payload = await self.fetch_raw(row_id)
        body = await asyncio.to_thread(_full_view_body, error, payload)  # megabytes: off the UI loop
        await self.app.push_screen(TextViewModal(f"{self.singular} #{row_id}", body))

    @property
    def singular(self) -> str:
        return self.NOUN[:-1] if self.NOUN.endswith("s") else self.NOUN

    # -- mutating actions ----------------------------------------------------------------------

    def single(self, action: str, *, reason_needed: bool = False) -> None:
        row = self.current_row()
        if row is None:
            self.ops.report(f"no {self.NOUN} on this page", severity="warning")
            return
        self._run_single(action, row, reason_needed)

    @work(exclusive=True, group="action", exit_on_error=False, name="action")
    async def _run_single(self, action: str, row: Row, reason_needed: bool) -> None:
        reason: str | None = None
        if reason_needed:
            line = plain(f"{action.capitalize()} 1 {self.singular}: ")
            line.append_text(self.describe_row(row))
            reason = await self.app.push_screen_wait(
                PromptModal(
                    f"{action.capitalize()} #{row.id}: reason",
                    [line],
                    required=True,
                    placeholder="reason (required, goes to the audit log)",
                    ok_label=action.capitalize(),
                )
            )
            if reason is None:
                self.ops.report(f"{action.capitalize()} #{row.id}: cancelled, nothing changed")
                return
        result = await self.action_call(action, [row.id], reason)
        await self._after(result, {row.id: row})

    def describe_row(self, row: Row) -> Text:
        return plain(f"#{row.id}")

    def bulk(self, action: str, *, reason_needed: bool = False) -> None:
        self._run_bulk(action, reason_needed)

    @work(exclusive=True, group="action", exit_on_error=False, name="bulk action")
    async def _run_bulk(self, action: str, reason_needed: bool) -> None:
        ids = sorted(self.selected)
        by_filter = self.all_matching or not ids
        on_page = {r.id: r for r in self.page.rows} if self.page else {}
        if by_filter:
            preview = await self.fetch_preview(action)
            count = preview.count
            lines = preview_lines(preview, self.NOUN)
        else:
            count = len(ids)
            lines = [plain(f"{count:,} selected {self.NOUN}: {_id_list(ids)}")]
            lines += [self.describe_row(on_page[i]) for i in ids[:SHOWN_ROWS] if i in on_page]
        if count == 0:
            self.ops.report(f"{action}: nothing matches", severity="warning")
            return
        reason: str | None = None
        if reason_needed:
            reason = await self.app.push_screen_wait(
                PromptModal(
                    f"{action.capitalize()} {count:,} {self.NOUN}: reason",
                    lines,
                    required=True,
                    placeholder="reason (required, goes to the audit log)",
                )
            )
            if reason is None:
                self.ops.report(f"{action.capitalize()} {count:,} {self.NOUN}: cancelled, nothing changed")
                return
        typed = count if count > self.ops.confirm_typed_over else None
        scope = "matching the filter" if by_filter else "selected"
        confirmed = await self.app.push_screen_wait(
            ConfirmModal(
                f"{action.capitalize()} {count:,} {self.NOUN} {scope}?",
                lines,
                confirm_label=f"{action.capitalize()} {count:,}",
                typed_count=typed,
            )
        )
        if not confirmed:
            return  # the modal said "cancelled"
        if not by_filter:
            result = await self.action_call(action, ids, reason)
        else:
            result = await self._bulk_with_progress(action, count, reason)
        self.selected.clear()
        self.all_matching = False
        await self._after(result, on_page)

    async def _bulk_with_progress(self, action: str, count: int, reason: str | None) -> ActionResult:
        modal = ProgressModal(f"{action.capitalize()} {count:,} {self.NOUN}", count)
        await self.app.push_screen(modal)
        self.ops.bulk_started(modal.cancel_event)
        try:
            return await self.bulk_call(action, reason, modal.update_progress, modal.cancel_event)
        finally:
            self.ops.bulk_finished(modal.cancel_event)
            if modal.is_attached:
                modal.dismiss(None)

    async def _after(self, result: ActionResult, rows: dict[int, Row]) -> None:
        """Toast naming the rows acted on; reload the page and the cursor row's detail."""
        severity: SeverityLevel = "information" if result.all_applied else "warning"
        self.ops.report(
            result_message(result, lambda i: self.row_label(rows[i]) if i in rows else None),
            severity=severity,
        )
        await self.ops.refresh_monitor()
        self._detail_id = None  # the cursor row may have changed state: reload its detail
        self.load_page(self.cursor, keep_cursor=True)

    def row_label(self, row: Row) -> str:
        """A few words that identify ``row`` to an operator (display-safe)."""
        return str(row.error_first_line)


def business_filter_text(business_id: int | None, label: str | None) -> Text:
    if business_id is None:
        return Text("")
    text = plain(" business:")
    if label:
        text.append_text(safe(label, 30))
        text.append(f" (#{business_id})")
    else:
        text.append(str(business_id))
    return text


def last_action_text(history: Sequence[AuditEntry], status: str, resolved_at: datetime | None) -> Text | None:
    """`retried 13:40 by alice`: the newest action applied to the row (history is newest first);
    a row whose state changed outside opswatch gets its status and resolved time."""
    for entry in history:
        if entry.outcome == "applied":
            verb = entry.action.rsplit(".", 1)[-1]
            text = plain(f"{PAST.get(verb, verb).lower()} {fmt_when(entry.at)} by ")
            text.append_text(safe(entry.actor, 60))
            return text
    if resolved_at is not None:
        return plain(f"{status} {fmt_when(resolved_at)} (not through opswatch: no audit entry)")
    return None


def _positive_int_or_empty(value: str) -> str | None:
    if not value:
        return None
    if not value.isdigit() or int(value) <= 0:
        return "enter a positive whole number, or leave empty for any"
    return None


def _id_list(ids: Sequence[int], limit: int = 8) -> str:
    shown = ", ".join(f"#{i}" for i in ids[:limit])
    return shown + (f" … +{len(ids) - limit}" if len(ids) > limit else "")


PAST = {"retry": "Retried", "abandon": "Abandoned", "resolve": "Resolved", "reopen": "Reopened"}
SHOWN_ROWS = 5
LABEL_CHARS = 40


def _short(label: str) -> str:
    return label if len(label) <= LABEL_CHARS else label[: LABEL_CHARS - 1].rstrip() + " …"


def result_message(result: ActionResult, label: Callable[[int], str | None]) -> str:
    """Toast text: `Retried #20 (WhatsApp 131026 …)`, `Retried 2: #3, #20`, then skipped/failed rows."""
    verb = result.action.rsplit(".", 1)[-1]
    past = PAST.get(verb, f"{verb.capitalize()}d")
    lines: list[str] = []
    applied = list(result.applied)
    if len(applied) == 1:
        name = label(applied[0])
        lines.append(f"{past} #{applied[0]}" + (f" ({_short(name)})" if name else ""))
    elif applied:
        lines.append(f"{past} {len(applied):,}: {_id_list(sorted(applied))}")
    lead = "" if applied else f"{verb.capitalize()} "  # "Retry skipped #1 (…)" when nothing applied
    if result.skipped:
        named = [
            f"#{s.id} ({display_text(s.reason, 60)}" + (f" by {display_text(s.by, 60)})" if s.by else ")")
            for s in result.skipped[:SHOWN_ROWS]
        ]
        lines.append(lead + _listed("skipped", named, len(result.skipped), ", "))
        lead = ""
    if result.failed:
        named = [f"#{f.id}: {display_text(f.error, 120)}" for f in result.failed[:SHOWN_ROWS]]
        lines.append(lead + _listed("failed", named, len(result.failed), "; "))
    if not lines:
        lines.append(f"{verb.capitalize()}: nothing changed")
    if result.cancelled:
        lines.append("cancelled: rows not reached are unchanged")
    if result.stopped:
        lines.append(f"stopped: {display_text(result.stopped, 200)}")
    return "\n".join(lines)


def _listed(what: str, named: list[str], total: int, sep: str) -> str:
    head = what if total == 1 else f"{what} {total:,}:"
    more = total - len(named)
    return f"{head} " + sep.join(named) + (f" … +{more:,}" if more > 0 else "")
