"""What differs between the triage kinds on screen: columns, cells, detail header, filter line.

The actions, keys and statuses come from the kind's spec (``core.triage``); a view only says
how its rows look and which kind-specific filter it offers.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar, Generic

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import BindingType
from textual.containers import Horizontal

from core.api import (
    DLQ,
    EVENTS,
    D,
    DlqDetail,
    DlqFilter,
    DlqRow,
    EventDetail,
    EventFilter,
    EventRow,
    F,
    KindSpec,
    R,
)
from core.snapshot import Severity, Snapshot
from tui.keymap import bind
from tui.render import age_between, fmt_age, fmt_when, plain, safe, status_text
from tui.screens.triage.text import business_filter_text, last_action_text, same_message_text
from tui.widgets.paged_table import PagedTable
from tui.widgets.payload_view import PayloadView
from tui.widgets.sparkline_tile import SparkTile

if TYPE_CHECKING:
    from tui.screens.triage.screen import TriageScreen

Column = tuple[str, str, int, int]
"""(key, label, width, shown from table width). Width 0 is the one flexible column: it takes
what the others leave. Widths change only on resize, so paging never re-lays out the table."""


def columns(first: Column, second: Column, *, status_width: int) -> tuple[Column, ...]:
    """Id, age, the kind's two columns, tries, status, error (``KindView.row_cells`` order)."""
    return (
        ("id", "Id", 7, 0),
        ("age", "Age", 6, 0),
        first,
        second,
        ("retries", "Tries", 5, 150),
        ("status", "Status", status_width, 0),
        ("error", "Error", 0, 0),  # what went wrong is what triage reads first: it gets the room
    )


class KindView(Generic[F, R, D]):
    """One screen's presentation of its kind (one instance per screen)."""

    SPEC: ClassVar[KindSpec[Any, Any, Any]]
    COLUMNS: ClassVar[tuple[Column, ...]] = ()
    FILTER_BINDINGS: ClassVar[list[BindingType]] = []
    """Kind-specific filter keys (before the common triage keys)."""

    def __init__(self, screen: TriageScreen[F, R, D]) -> None:
        self.screen: TriageScreen[F, R, D] = screen

    def compose_extra(self) -> ComposeResult:
        yield from ()

    def on_mount(self) -> None:
        pass

    def apply_snapshot(self, snapshot: Snapshot) -> None:
        pass

    def summary_key(self, snapshot: Snapshot) -> object:
        """Changes when the page might be out of date (new rows, status changes)."""
        return None

    def row_cells(self, row: R) -> list[Text]:
        """Id, age, the kind's two cells, tries, status, error (the order of COLUMNS)."""
        return [
            plain(str(row.id)),
            plain(fmt_age(age_between(row.created_at, self.screen.now()))),
            *self.kind_cells(row),
            plain(str(row.retry_count)),
            status_text(row.status, self.screen.palette),
            safe(row.error_first_line, 120),
        ]

    def kind_cells(self, row: R) -> list[Text]:
        raise NotImplementedError

    def describe_row(self, row: R) -> Text:
        raise NotImplementedError

    def row_label(self, row: R) -> str:
        """A few words that identify ``row`` to an operator (display-safe)."""
        return str(row.error_first_line)

    def detail_header(self, detail: D) -> Text:
        raise NotImplementedError

    def filter_parts(self, f: F) -> Text:
        """The kind's own filter fields, for the filter line."""
        raise NotImplementedError

    def show_detail(self, detail: D) -> None:
        self.screen.query_one(PayloadView).show(
            self.detail_header(detail),
            detail.error_message,
            detail.payload_pretty,
            truncated=detail.payload_truncated,
            history=detail.history,
            **self.detail_extra(detail),
        )

    def detail_extra(self, detail: D) -> dict[str, Any]:
        return {}

    def filter_summary(self) -> Text:
        f = self.screen.filter
        text = plain(" status:" + ("|".join(f.status) if f.status else "any"))
        text.append_text(business_filter_text(f.business_id, self.screen.business_label))
        text.append_text(self.filter_parts(f))
        if f.text:
            text.append(" text:")
            text.append_text(safe(f.text, 30))
        return text

    def _header(self, detail: D, after_retries: str) -> Text:
        row = detail.row
        header = plain(f"#{row.id} ", "bold")
        header.append_text(status_text(row.status, self.screen.palette))
        header.append(f" · retries {row.retry_count}{after_retries}")
        return header

    def _created(self, header: Text, detail: D) -> None:
        row = detail.row
        header.append(f"\ncreated {fmt_when(row.created_at)}")
        last = last_action_text(detail.history, row.status, row.resolved_at)
        if last is not None:
            header.append(" · ")
            header.append_text(last)


class DlqView(KindView[DlqFilter, DlqRow, DlqDetail]):
    SPEC = DLQ
    COLUMNS = columns(("business", "Business", 14, 0), ("channel", "Channel", 18, 110), status_width=11)
    FILTER_BINDINGS = [bind("dlq.channel", "c", "filter_channel", "Channel", show=False)]

    def summary_key(self, snapshot: Snapshot) -> object:
        dlq = snapshot.dlq
        return None if dlq is None else (dlq.max_id, dlq.pending, dlq.outflow_per_hour)

    def kind_cells(self, row: DlqRow) -> list[Text]:
        channel = safe(row.platform, 12)
        channel.append(":")
        channel.append_text(safe(row.channel_name, 20))
        return [safe(row.business_name, 24), channel]

    def describe_row(self, row: DlqRow) -> Text:
        text = plain(f"#{row.id} ")
        text.append_text(safe(row.business_name, 40))
        text.append(" / ")
        text.append_text(safe(row.channel_name, 40))
        text.append(" — ")
        text.append_text(safe(row.error_first_line, 80))
        return text

    def detail_header(self, detail: DlqDetail) -> Text:
        row = detail.row
        header = self._header(detail, f" · message {row.message_id}\nbusiness ")
        header.append_text(safe(row.business_name, 60))
        header.append(f" (#{row.business_id}) · channel ")
        header.append_text(safe(f"{row.platform}:{row.channel_name}", 60))
        header.append(f" (#{row.channel_id})")
        self._created(header, detail)
        header.append("\n")
        header.append_text(same_message_text(row.id, row.message_id, detail))
        return header

    def filter_parts(self, f: DlqFilter) -> Text:
        return plain(f" channel:{f.channel_id}" if f.channel_id is not None else "")

    def action_filter_channel(self) -> None:
        self.screen.ask_id("channel_id", "Filter by channel id (empty = any)")


class EventsView(KindView[EventFilter, EventRow, EventDetail]):
    SPEC = EVENTS
    COLUMNS = columns(("event", "Event", 16, 0), ("business", "Business", 14, 110), status_width=10)
    FILTER_BINDINGS = [bind("events.event_name", "e", "filter_event", "Event name", show=False)]

    def __init__(self, screen: TriageScreen[EventFilter, EventRow, EventDetail]) -> None:
        super().__init__(screen)
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
        """Tallies by event and status, and the hourly trend."""
        summary = snapshot.events
        if summary is None:
            return
        screen = self.screen
        rows = [
            (
                f"{t.event_name}\x00{t.status}",
                [
                    safe(t.event_name, 40),
                    status_text(t.status, screen.palette),
                    plain(f"{t.last_hour:,}"),
                    plain(f"{t.last_24h:,}"),
                ],
            )
            for t in summary.tallies
        ]
        self._tallies.sync(rows)
        limit = screen.ops.event_threshold
        severity = Severity.WARNING if limit is not None and summary.last_hour > limit else Severity.OK
        body = plain(f"last hour {summary.last_hour:,}  last 24 h {summary.last_24h:,}")
        if limit is not None:
            body.append(f"  (alert above {limit:g}/h)")
        stale = screen.stale(snapshot, "summaries", screen.ops.summary_stale_after)
        screen.query_one("#events-trend", SparkTile).show(
            body, severity=severity, trend=[float(v) for v in summary.hourly], stale=stale
        )

    def summary_key(self, snapshot: Snapshot) -> object:
        ev = snapshot.events
        return None if ev is None else (ev.max_id, ev.last_hour, ev.tallies)

    def kind_cells(self, row: EventRow) -> list[Text]:
        return [safe(row.event_name, 30), safe(row.business_name, 24)]

    def describe_row(self, row: EventRow) -> Text:
        text = plain(f"#{row.id} ")
        text.append_text(safe(row.event_name, 40))
        text.append(" — ")
        text.append_text(safe(row.error_first_line, 80))
        return text

    def row_label(self, row: EventRow) -> str:
        return f"{row.event_name}: {row.error_first_line}"

    def detail_header(self, detail: EventDetail) -> Text:
        row = detail.row
        header = self._header(detail, "\nevent ")
        header.append_text(safe(row.event_name, 60))
        header.append(" · business ")
        header.append_text(safe(row.business_name, 60))
        header.append(f" (#{row.business_id})")
        self._created(header, detail)
        return header

    def detail_extra(self, detail: EventDetail) -> dict[str, Any]:
        return {"stack": detail.error_stack}

    def action_filter_event(self) -> None:
        self.screen.ask_text("event_name", "Filter by event name (empty = any)")

    def filter_parts(self, f: EventFilter) -> Text:
        text = Text("")
        if f.event_name:
            text.append(" event:")
            text.append_text(safe(f.event_name, 30))
        return text


VIEWS: dict[str, type[KindView[Any, Any, Any]]] = {"dlq": DlqView, "events": EventsView}
