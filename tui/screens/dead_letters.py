"""3 Dead letters: the DLQ triage screen."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from rich.text import Text

from core.snapshot import Snapshot
from core.triage import TriageService
from core.triage.actions import transition_for
from core.triage.bulk import narrow_status
from core.triage.models import (
    DLQ_STATUSES,
    ActionResult,
    BulkPreview,
    BulkProgress,
    Cursor,
    DlqDetail,
    DlqFilter,
    DlqRow,
    Page,
)
from tui.keymap import bind
from tui.render import age_between, fmt_age, fmt_when, plain, safe, status_text
from tui.screens.triage_base import (
    PAGE_SIZE,
    TriageScreen,
    business_filter_text,
    last_action_text,
    triage_bindings,
)
from tui.widgets.payload_view import PayloadView


class DeadLettersScreen(TriageScreen):
    SCREEN_TITLE = "Dead letters"
    NOUN = "dead letters"
    STATUSES = DLQ_STATUSES
    COLUMNS = (
        ("id", "Id", 7, 0),
        ("age", "Age", 6, 0),
        ("business", "Business", 14, 0),
        ("channel", "Channel", 18, 110),
        ("retries", "Tries", 5, 150),
        ("status", "Status", 11, 0),
        ("error", "Error", 0, 0),  # what went wrong is what triage reads first: it gets the room
    )
    BINDINGS = [
        bind("dlq.retry", "r", "retry", "Retry"),
        bind("dlq.abandon", "a", "abandon", "Abandon"),
        bind("dlq.bulk_retry", "R", "bulk_retry", "Retry all", key_display="R"),
        bind("dlq.bulk_abandon", "A", "bulk_abandon", "Abandon all", key_display="A", show=False),
        bind("dlq.reopen", "o", "reopen", "Reopen", show=False),
        bind("dlq.resolve", "u", "resolve", "Resolve", show=False),
        bind("dlq.bulk_resolve", "U", "bulk_resolve", "Resolve all", key_display="U", show=False),
        bind("dlq.channel", "c", "filter_channel", "Channel", show=False),
        *triage_bindings("dlq"),
    ]

    @property
    def triage(self) -> TriageService:
        return self.ops.monitor.triage

    def default_filter(self) -> DlqFilter:
        return DlqFilter()

    async def fetch_page(self, cursor: Cursor | None) -> Page[DlqRow]:
        page: Page[DlqRow] = await self.triage.list_dlq(self.filter, self.sort, cursor, limit=PAGE_SIZE)
        return page

    async def fetch_detail(self, row_id: int) -> DlqDetail | None:
        detail: DlqDetail | None = await self.triage.dlq_detail(row_id)
        return detail

    async def fetch_preview(self, action: str) -> BulkPreview:
        narrowed = narrow_status(self.filter, transition_for("dlq", action))
        assert isinstance(narrowed, DlqFilter)
        preview: BulkPreview = await self.triage.preview_dlq(narrowed)
        return preview

    async def fetch_raw(self, row_id: int) -> tuple[str, str]:
        error = await self.triage.raw_error("dlq", row_id)
        payload = await self.triage.raw_payload("dlq", row_id)
        return error, payload

    def action_call(self, action: str, ids: list[int], reason: str | None) -> Awaitable[ActionResult]:
        if action == "abandon":
            return self.triage.abandon_dlq(ids, reason or "")
        method = {
            "retry": self.triage.retry_dlq,
            "resolve": self.triage.resolve_dlq,
            "reopen": self.triage.reopen_dlq,
        }[action]
        return method(ids)

    def bulk_call(
        self, action: str, reason: str | None, progress: Callable[[BulkProgress], None], cancel: asyncio.Event
    ) -> Awaitable[ActionResult]:
        return self.triage.bulk_dlq(
            action,
            self.filter,
            reason=reason,
            progress=progress,
            cancel=cancel,
        )

    def summary_key(self, snapshot: Snapshot) -> object:
        dlq = snapshot.dlq
        return None if dlq is None else (dlq.max_id, dlq.pending, dlq.outflow_per_hour)

    def row_cells(self, row: DlqRow) -> list[Text]:
        channel = safe(row.platform, 12)
        channel.append(":")
        channel.append_text(safe(row.channel_name, 20))
        return [
            plain(str(row.id)),
            plain(fmt_age(age_between(row.created_at, self.now()))),
            safe(row.business_name, 24),
            channel,
            plain(str(row.retry_count)),
            status_text(row.status, self.palette),
            safe(row.error_first_line, 120),
        ]

    def describe_row(self, row: DlqRow) -> Text:
        text = plain(f"#{row.id} ")
        text.append_text(safe(row.business_name, 40))
        text.append(" / ")
        text.append_text(safe(row.channel_name, 40))
        text.append(" — ")
        text.append_text(safe(row.error_first_line, 80))
        return text

    def show_detail(self, detail: DlqDetail) -> None:
        row = detail.row
        header = plain(f"#{row.id} ", "bold")
        header.append_text(status_text(row.status, self.palette))
        header.append(f" · retries {row.retry_count} · message {row.message_id}\nbusiness ")
        header.append_text(safe(row.business_name, 60))
        header.append(f" (#{row.business_id}) · channel ")
        header.append_text(safe(f"{row.platform}:{row.channel_name}", 60))
        header.append(f" (#{row.channel_id})\ncreated {fmt_when(row.created_at)}")
        last = last_action_text(detail.history, row.status, row.resolved_at)
        if last is not None:
            header.append(" · ")
            header.append_text(last)
        header.append("\n")
        header.append_text(same_message_text(row.id, row.message_id, detail))
        self.query_one(PayloadView).show(
            header,
            detail.error_message,
            detail.payload_pretty,
            truncated=detail.payload_truncated,
            history=detail.history,
        )

    def filter_summary(self) -> Text:
        f = self.filter
        text = plain(" status:" + ("|".join(f.status) if f.status else "any"))
        text.append_text(business_filter_text(f.business_id, self.business_label))
        if f.channel_id is not None:
            text.append(f" channel:{f.channel_id}")
        if f.text:
            text.append(" text:")
            text.append_text(safe(f.text, 30))
        return text

    def action_filter_channel(self) -> None:
        self._ask_id("channel_id", "Filter by channel id (empty = any)")

    def action_retry(self) -> None:
        self.single("retry")

    def action_abandon(self) -> None:
        self.single("abandon", reason_needed=True)

    def action_reopen(self) -> None:
        self.single("reopen")

    def action_resolve(self) -> None:
        self.single("resolve")

    def action_bulk_retry(self) -> None:
        self.bulk("retry")

    def action_bulk_abandon(self) -> None:
        self.bulk("abandon", reason_needed=True)

    def action_bulk_resolve(self) -> None:
        self.bulk("resolve")


def same_message_text(row_id: int, message_id: int, detail: DlqDetail) -> Text:
    """`failed 3 times: #33, #37, #41` (rows of the same message, this one in bold)."""
    total = detail.same_message_total
    if total is None:
        return plain(
            f"other failures of message {message_id}: not looked up (too slow without an index on "
            "message_id; see opswatch db advise)",
            "italic",
        )
    if total <= 1:
        return plain("failed once (no other dead letter of this message)")
    text = plain(f"failed {total:,} times: ")
    for i, other in enumerate(detail.same_message):
        if i:
            text.append(", ")
        text.append(f"#{other}", "bold" if other == row_id else "")
    if total > len(detail.same_message):
        text.append(f" … +{total - len(detail.same_message):,}")
    return text
