"""Filter, sort, selection and full-view keys of the triage screen."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from textual import work
from textual.widgets import Input

from core.api import Sort
from tui.screens.triage.text import full_view_body, positive_int_or_empty
from tui.widgets.filter_bar import FilterBar
from tui.widgets.prompt_modal import PromptModal
from tui.widgets.text_view import TextViewModal

SORTS = (Sort.NEWEST, Sort.OLDEST, Sort.MOST_RETRIES)


class FilterKeys:
    """Mixin of TriageScreen."""

    if TYPE_CHECKING:  # supplied by the screen
        app: Any
        ops: Any
        kind: Any
        triage: Any
        filter: Any
        sort: Sort
        cursor: Any
        selected: set[int]
        all_matching: bool
        business_label: str | None
        focused: Any

        @property
        def table(self) -> Any: ...
        @property
        def filter_bar(self) -> FilterBar: ...

        @property
        def stacked_short(self) -> bool: ...
        @property
        def singular(self) -> str: ...
        def has_class(self, *class_names: str) -> bool: ...
        def remove_class(self, *class_names: str, update: bool = True) -> Any: ...
        def current_id(self) -> int | None: ...
        def load_page(self, cursor: Any, *, to_end: bool = False, keep_cursor: bool = False) -> Any: ...
        def _render_page(
            self, *, keep_cursor: bool = False, to_end: bool = False, at: str | None = None
        ) -> None: ...
        def _show_filter(self) -> None: ...
        def _show_summary(self) -> None: ...

    def set_filter(self, new_filter: Any, *, business_label: str | None = None) -> None:
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
        self.filter_bar.focus_search()

    def on_filter_bar_search_submitted(self, message: FilterBar.SearchSubmitted) -> None:
        self.set_filter(replace(self.filter, text=message.text or None))
        self.table.focus()

    def action_cycle_status(self) -> None:
        options: list[tuple[str, ...]] = [(s,) for s in self.kind.spec.statuses] + [()]
        current = tuple(self.filter.status)
        index = options.index(current) if current in options else -1
        self.set_filter(replace(self.filter, status=options[(index + 1) % len(options)]))

    def action_cycle_sort(self) -> None:
        self.sort = SORTS[(SORTS.index(self.sort) + 1) % len(SORTS)]
        self.load_page(None)

    def action_clear_filter(self) -> None:
        self.filter_bar.set_text("")
        self.set_filter(self.kind.spec.filter_type())

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
            business_id, name = await self.triage.resolve_business(value)
        except ValueError as exc:
            self.ops.report(str(exc), severity="warning")
            return
        self.set_filter(replace(self.filter, business_id=business_id), business_label=name)

    @work(exclusive=True, group="prompt", exit_on_error=False)
    async def ask_id(self, field: str, title: str) -> None:
        current = getattr(self.filter, field)
        value = await self.app.push_screen_wait(
            PromptModal(title, value="" if current is None else str(current), validate=positive_int_or_empty)
        )
        if value is not None:
            self.set_filter(replace(self.filter, **{field: int(value) if value else None}))

    @work(exclusive=True, group="prompt", exit_on_error=False)
    async def ask_text(self, field: str, title: str) -> None:
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
        error = await self.kind.raw(row_id, "error")
        payload = await self.kind.raw(row_id, "payload")
        body = await asyncio.to_thread(full_view_body, error, payload)  # megabytes: off the UI loop
        await self.app.push_screen(TextViewModal(f"{self.singular} #{row_id}", body))
