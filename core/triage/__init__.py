"""Dead-letter and event-failure triage: reads, summaries, state-conditional actions, bulk, redrive."""

from core.triage.actions import Transition, past_tense
from core.triage.kind import DLQ, EVENTS, SPECS, KindSpec, TriageKind
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
    "DLQ",
    "DLQ_STATUSES",
    "EVENTS",
    "EVENT_STATUSES",
    "REDRIVE_CHANNEL",
    "SPECS",
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
    "KindSpec",
    "Page",
    "Skipped",
    "Sort",
    "Transition",
    "TriageKind",
    "TriageService",
    "past_tense",
]
