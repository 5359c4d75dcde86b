"""The mutating actions of the triage screen: reason prompt, preview, confirmation, progress, toast.

Everything about an action (key, label, reason required) comes from its transition in
``core.triage.actions``; the rows affected come from the kind's preview.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from textual import work
from textual.notifications import SeverityLevel

from core.api import ActionResult, Transition
from tui.render import plain
from tui.screens.triage.text import SHOWN_ROWS, id_list, preview_lines, result_message
from tui.widgets.confirm_modal import ConfirmModal
from tui.widgets.progress_modal import ProgressModal
from tui.widgets.prompt_modal import PromptModal

REASON_PLACEHOLDER = "reason (required, goes to the audit log)"


class ActionFlow:
    """Mixin of TriageScreen: one row (the cursor's) or many (selection / every match)."""

    if TYPE_CHECKING:  # supplied by the screen
        app: Any
        ops: Any
        page: Any
        kind: Any
        view: Any
        filter: Any
        cursor: Any
        selected: set[int]
        all_matching: bool
        _detail_id: int | None

        @property
        def noun(self) -> str: ...
        @property
        def singular(self) -> str: ...
        def current_row(self) -> Any: ...
        def load_page(self, cursor: Any, *, to_end: bool = False, keep_cursor: bool = False) -> Any: ...

    def single(self, t: Transition) -> None:
        row = self.current_row()
        if row is None:
            self.ops.report(f"no {self.noun} on this page", severity="warning")
            return
        self._run_single(t, row)

    @work(exclusive=True, group="action", exit_on_error=False, name="action")
    async def _run_single(self, t: Transition, row: Any) -> None:
        reason: str | None = None
        if t.reason_required:
            line = plain(f"{t.label} 1 {self.singular}: ")
            line.append_text(self.view.describe_row(row))
            reason = await self.app.push_screen_wait(
                PromptModal(
                    f"{t.label} #{row.id}: reason",
                    [line],
                    required=True,
                    placeholder=REASON_PLACEHOLDER,
                    ok_label=t.label,
                )
            )
            if reason is None:
                self.ops.report(f"{t.label} #{row.id}: cancelled, nothing changed")
                return
        result = await self.kind.act(t.name, [row.id], reason)
        await self._after(result, {row.id: row})

    def bulk(self, t: Transition) -> None:
        self._run_bulk(t)

    @work(exclusive=True, group="action", exit_on_error=False, name="bulk action")
    async def _run_bulk(self, t: Transition) -> None:
        ids = sorted(self.selected)
        by_filter = self.all_matching or not ids
        on_page = {r.id: r for r in self.page.rows} if self.page else {}
        noun = self.noun
        if by_filter:
            preview = await self.kind.preview(self.filter, t.name)
            count = preview.count
            lines = preview_lines(preview, noun)
        else:
            count = len(ids)
            lines = [plain(f"{count:,} selected {noun}: {id_list(ids)}")]
            lines += [self.view.describe_row(on_page[i]) for i in ids[:SHOWN_ROWS] if i in on_page]
        if count == 0:
            self.ops.report(f"{t.name}: nothing matches", severity="warning")
            return
        reason: str | None = None
        if t.reason_required:
            reason = await self.app.push_screen_wait(
                PromptModal(
                    f"{t.label} {count:,} {noun}: reason",
                    lines,
                    required=True,
                    placeholder=REASON_PLACEHOLDER,
                )
            )
            if reason is None:
                self.ops.report(f"{t.label} {count:,} {noun}: cancelled, nothing changed")
                return
        typed = count if count > self.ops.confirm_typed_over else None
        scope = "matching the filter" if by_filter else "selected"
        confirmed = await self.app.push_screen_wait(
            ConfirmModal(
                f"{t.label} {count:,} {noun} {scope}?",
                lines,
                confirm_label=f"{t.label} {count:,}",
                typed_count=typed,
            )
        )
        if not confirmed:
            return  # the modal said "cancelled"
        if not by_filter:
            result = await self.kind.act(t.name, ids, reason)
        else:
            result = await self._bulk_with_progress(t, count, reason)
        self.selected.clear()
        self.all_matching = False
        await self._after(result, on_page)

    async def _bulk_with_progress(self, t: Transition, count: int, reason: str | None) -> ActionResult:
        modal = ProgressModal(f"{t.label} {count:,} {self.noun}", count)
        await self.app.push_screen(modal)
        self.ops.bulk_started(modal.cancel_event)
        try:
            result: ActionResult = await self.kind.bulk(
                self.filter, t.name, reason, progress=modal.update_progress, cancel=modal.cancel_event
            )
            return result
        finally:
            self.ops.bulk_finished(modal.cancel_event)
            if modal.is_attached:
                modal.dismiss(None)

    async def _after(self, result: ActionResult, rows: dict[int, Any]) -> None:
        """Toast naming the rows acted on; reload the page and the cursor row's detail."""
        severity: SeverityLevel = "information" if result.all_applied else "warning"
        self.ops.report(
            result_message(result, lambda i: self.view.row_label(rows[i]) if i in rows else None),
            severity=severity,
        )
        await self.ops.refresh_monitor()
        self._detail_id = None  # the cursor row may have changed state: reload its detail
        self.load_page(self.cursor, keep_cursor=True)
