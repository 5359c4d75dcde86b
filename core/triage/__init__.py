"""Dead-letter and event-failure triage: reads, summaries, state-conditional actions, bulk, redrive."""

from core.triage.models import (
    DLQ_STATUSES,
    EVENT_STATUSES,
    ActionResult,
    BulkPreview,
    BulkProgress,
    Cursor,
    DlqDetail,
    DlqFilter,
    DlqRow,
    EventDetail,
    EventFilter,
    EventRow,
    Failed,
    Kind,
    Page,
    Skipped,
    Sort,
)
from core.triage.redrive import NOTIFY_CHANNEL as REDRIVE_CHANNEL
from core.triage.service import TriageService

__all__ = [
    "DLQ_STATUSES",
    "EVENT_STATUSES",
    "REDRIVE_CHANNEL",
    "ActionResult",
    "BulkPreview",
    "BulkProgress",
    "Cursor",
    "DlqDetail",
    "DlqFilter",
    "DlqRow",
    "EventDetail",
    "EventFilter",
    "EventRow",
    "Failed",
    "Kind",
    "Page",
    "Skipped",
    "Sort",
    "TriageService",
]
