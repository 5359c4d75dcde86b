"""4 Event failures: tallies by event and status, hourly trend, and the triage list."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Horizontal

from core.snapshot import Severity, Snapshot
from core.triage import TriageService
from core.triage.actions import transition_for
from core.triage.bulk import narrow_status
from core.triage.models import (
    EVENT_STATUSES,
    ActionResult,
    BulkPreview,
    BulkProgress,
    Cursor,
    EventDetail,
    EventFilter,
    EventRow,
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
from tui.widgets.paged_table import PagedTable
from tui.widgets.payload_view import PayloadView
from tui.widgets.sparkline_tile import SparkTile


class EventsScreen(TriageScreen):
    SCREEN_TITLE = "Event failures"
    NOUN = "event failures"
    STATUSES = EVENT_STATUSES
    COLUMNS = (
        ("id", "Id", 7, 0),
        ("age", "Age", 6, 0),
        ("event", "Event", 16, 0),
        ("business", "Business", 14, 110),
        ("retries", "Tries", 5, 150),
        ("status", "Status", 10, 0),
        ("error", "Error", 0, 0),
    )
    BINDINGS = [
        bind("events.retry", "r", "retry", "Retry"),
        bind("events.resolve", "u", "resolve", "Resolve"),
        bind("events.bulk_retry", "R", "bulk_retry", "Retry all", key_display="R"),
        bind("events.bulk_resolve", "U", "bulk_resolve", "Resolve all", key_display="U", show=False),
        bind("events.event_name", "e", "filter_event", "Event name", show=False),
        *triage_bindings("events"),
    ]

    @property
    def triage(self) -> TriageService:
        return self.ops.monitor.triage

    def __init__(self) -> None:
        super().__init__()
        self._tallies = PagedTable(id="events-tallies")
        """Held, not queried: a snapshot or mount may come while the screen is still composing."""

    def compose_extra(self) -> ComposeResult:
        with Horizontal(id="events-top"):
            yield self._tallies
            yield SparkTile("Failures per hour, last 24 h", spark=True, id="events-trend")

    def on_mount(self) -> None:
        tallies = self._tallies
        tallies.can_focus = False
        tallies.cursor_type = "none"
        tallies.add_column("Event", key="event")
        tallies.add_column("Status", key="status")
        tallies.add_column("1 h", key="h1")
        tallies.add_column("24 h", key="h24")

    def apply_snapshot(self, snapshot: Snapshot) -> None:
        super().apply_snapshot(snapshot)
        summary = snapshot.events
        if summary is None:
            return
        rows = [
            (
                f"{t.event_name}\x00{t.status}",
                [
                    safe(t.event_name, 40),
                    status_text(t.status, self.palette),
                    plain(f"{t.last_hour:,}"),
                    plain(f"{t.last_24h:,}"),
                ],
            )
            for t in summary.tallies
        ]
        self._tallies.sync(rows)
        limit = self.ops.event_threshold
        severity = Severity.WARNING if limit is not None and summary.last_hour > limit else Severity.OK
        body = plain(f"last hour {summary.last_hour:,}  last 24 h {summary.last_24h:,}")
        if limit is not None:
            body.append(f"  (alert above {limit:g}/h)")
        stale = self.stale(snapshot, "summaries", self.ops.summary_stale_after)
        self.query_one("#events-trend", SparkTile).show(
            body, severity=severity, trend=[float(v) for v in summary.hourly], stale=stale
        )

    def default_filter(self) -> EventFilter:
        return EventFilter()

    async def fetch_page(self, cursor: Cursor | None) -> Page[EventRow]:
        page: Page[EventRow] = await self.triage.list_events(self.filter, self.sort, cursor, limit=PAGE_SIZE)
        return page

    async def fetch_detail(self, row_id: int) -> EventDetail | None:
        detail: EventDetail | None = await self.triage.event_detail(row_id)
        return detail

    async def fetch_preview(self, action: str) -> BulkPreview:
        narrowed = narrow_status(self.filter, transition_for("event", action))
        assert isinstance(narrowed, EventFilter)
        preview: BulkPreview = await self.triage.preview_events(narrowed)
        return preview

    async def fetch_raw(self, row_id: int) -> tuple[str, str]:
        error = await self.triage.raw_error("event", row_id)
        payload = await self.triage.raw_payload("event", row_id)
        return error, payload

    def action_call(self, action: str, ids: list[int], reason: str | None) -> Awaitable[ActionResult]:
        method = {"retry": self.triage.retry_events, "resolve": self.triage.resolve_events}[action]
        return method(ids)

    def bulk_call(
        self, action: str, reason: str | None, progress: Callable[[BulkProgress], None], cancel: asyncio.Event
    ) -> Awaitable[ActionResult]:
        return self.triage.bulk_events(
            action,
            self.filter,
            progress=progress,
            cancel=cancel,
        )

    def summary_key(self, snapshot: Snapshot) -> object:
        ev = snapshot.events
        return None if ev is None else (ev.max_id, ev.last_hour, ev.tallies)

    def row_cells(self, row: EventRow) -> list[Text]:
        return [
            plain(str(row.id)),
            plain(fmt_age(age_between(row.created_at, self.now()))),
            safe(row.event_name, 30),
            safe(row.business_name, 24),
            plain(str(row.retry_count)),
            status_text(row.status, self.palette),
            safe(row.error_first_line, 120),
        ]

    def describe_row(self, row: EventRow) -> Text:
        text = plain(f"#{row.id} ")
        text.append_text(safe(row.event_name, 40))
        text.append(" — ")
        text.append_text(safe(row.error_first_line, 80))
        return text

    def row_label(self, row: EventRow) -> str:
        return f"{row.event_name}: {row.error_first_line}"

    def show_detail(self, detail: EventDetail) -> None:
        row = detail.row
        header = plain(f"#{row.id} ", "bold")
        header.append_text(status_text(row.status, self.palette))
        header.append(f" · retries {row.retry_count}\nevent ")
        header.append_text(safe(row.event_name, 60))
        header.append(" · business ")
        header.append_text(safe(row.business_name, 60))
        header.append(f" (#{row.business_id})\ncreated {fmt_when(row.created_at)}")
        last = last_action_text(detail.history, row.status, row.resolved_at)
        if last is not None:
            header.append(" · ")
            header.append_text(last)
        self.query_one(PayloadView).show(
            header,
            detail.error_message,
            detail.payload_pretty,
            truncated=detail.payload_truncated,
            history=detail.history,
            stack=detail.error_stack,
        )

    def filter_summary(self) -> Text:
        f = self.filter
        text = plain(" status:" + ("|".join(f.status) if f.status else "any"))
        text.append_text(business_filter_text(f.business_id, self.business_label))
        if f.event_name:
            text.append(" event:")
            text.append_text(safe(f.event_name, 30))
        if f.text:
            text.append(" text:")
            text.append_text(safe(f.text, 30))
        return text

    def action_filter_event(self) -> None:
        self._ask_text("event_name", "Filter by event name (empty = any)")

    def action_retry(self) -> None:
        self.single("retry")

    def action_resolve(self) -> None:
        self.single("resolve")

    def action_bulk_retry(self) -> None:
        self.bulk("retry")

    def action_bulk_resolve(self) -> None:
        self.bulk("resolve")
