"""One kind of triage row (dead letters, event failures) behind one generic API.

``service.kind("dlq")`` and ``service.kind("events")`` return a :class:`TriageKind`; its
:class:`KindSpec` says what the kind is called, its filter and row types and the transitions
it allows (from ``core.triage.actions.TRANSITIONS``, the single source of the actions).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Generic, Literal, TypeVar

import asyncpg

from core.audit import history_for
from core.safe_text import display_text
from core.snapshot import DlqSummary, EventSummary
from core.triage import models as m
from core.triage.actions import Transition, transition_for, transitions_of
from core.triage.bulk import ProgressCallback
from core.triage.models import (
    DLQ_STATUSES,
    EVENT_STATUSES,
    ActionResult,
    BulkPreview,
    Cursor,
    Kind,
    Page,
    Sort,
)
from core.triage.rows import ERROR_DISPLAY_CHARS, dlq_row, event_row, render_payload

if TYPE_CHECKING:
    from core.triage.service import TriageService

F = TypeVar("F", m.DlqFilter, m.EventFilter)
R = TypeVar("R", m.DlqRow, m.EventRow)
D = TypeVar("D", m.DlqDetail, m.EventDetail)
AnyFilter = m.DlqFilter | m.EventFilter
RawField = Literal["payload", "error"]
_RAW_COLUMNS: dict[str, str] = {"payload": "payload", "error": "error_message"}


@dataclass(frozen=True)
class KindSpec(Generic[F, R, D]):
    name: str
    """``dlq`` / ``events``: the CLI command, the binding-id prefix, the audit action prefix."""
    kind: Kind
    """``dlq`` / ``event``: the table and the audit target kind."""
    title: str
    noun: str
    singular: str
    filter_type: type[F]
    row_type: type[R]
    detail_type: Callable[..., D]
    statuses: tuple[str, ...]
    make_row: Callable[[asyncpg.Record], R]

    @property
    def transitions(self) -> tuple[Transition, ...]:
        return transitions_of(self.kind)

    def transition(self, action: str) -> Transition:
        return transition_for(self.kind, action)

    @property
    def default_status(self) -> tuple[str, ...]:
        return self.filter_type().status


DLQ: KindSpec[m.DlqFilter, m.DlqRow, m.DlqDetail] = KindSpec(
    "dlq", "dlq", "Dead letters", "dead letters", "dead letter",
    m.DlqFilter, m.DlqRow, m.DlqDetail, DLQ_STATUSES, dlq_row,
)  # fmt: skip
EVENTS: KindSpec[m.EventFilter, m.EventRow, m.EventDetail] = KindSpec(
    "events", "event", "Event failures", "event failures", "event failure",
    m.EventFilter, m.EventRow, m.EventDetail, EVENT_STATUSES, event_row,
)  # fmt: skip
SPECS: dict[str, KindSpec[Any, Any, Any]] = {"dlq": DLQ, "events": EVENTS}


def spec_named(name: str) -> KindSpec[Any, Any, Any]:
    try:
        return SPECS[name]
    except KeyError:
        raise ValueError(f"unknown triage kind {name!r} (one of: {', '.join(SPECS)})") from None


class TriageKind(Generic[F, R, D]):
    """Reads and actions on one kind; every mutating method raises ReadOnlyError when the
    service is read-only and ValueError (one line) on bad input, changing nothing."""

    def __init__(self, service: TriageService, spec: KindSpec[F, R, D]) -> None:
        self.service = service
        self.spec: KindSpec[F, R, D] = spec

    async def list(
        self, filter: F, sort: Sort = Sort.NEWEST, cursor: Cursor | None = None, limit: int = 50
    ) -> Page[R]:
        rows, total, nxt, prev = await self.service._page(self.spec.kind, filter, sort, cursor, limit)
        return Page(tuple(self.spec.make_row(r) for r in rows), total, nxt, prev)

    async def detail(self, id: int) -> D | None:
        found = await self.service._detail(self.spec.kind, id)
        if found is None:
            return None
        row, d = found
        payload, truncated = render_payload(d["payload_type"], d["payload_body"])
        common: dict[str, Any] = {
            "error_message": display_text(d["error_message"] or "", ERROR_DISPLAY_CHARS, multiline=True),
            "payload_pretty": payload,
            "payload_truncated": truncated,
            "history": await history_for(self.service.db, self.spec.kind, int(row["id"])),
            "payload_bytes": int(d["payload_bytes"] or 0),
        }
        if self.spec.kind == "dlq":
            same, total = await self.service._same_message(row["message_id"])
            common |= {"same_message": same, "same_message_total": total}
        else:
            common["error_stack"] = display_text(d["error_stack"] or "", ERROR_DISPLAY_CHARS, multiline=True)
        detail: D = self.spec.detail_type(row=self.spec.make_row(row), **common)
        return detail

    async def preview(self, filter: F, action: str | None = None) -> BulkPreview:
        """Dry run of a bulk action: what ``filter`` matches (restricted to the rows ``action``
        applies to, when given — exactly what ``bulk(filter, action)`` would visit)."""
        return await self.service._preview(self.spec.kind, filter, action)

    async def act(self, action: str, ids: Iterable[Any], reason: str | None = None) -> ActionResult:
        """``action`` on the rows ``ids`` (each only if still in a from-state)."""
        return await self.service._act(self.spec.kind, action, ids, reason)

    async def bulk(
        self,
        filter: F,
        action: str,
        reason: str | None = None,
        *,
        progress: ProgressCallback | None = None,
        cancel: asyncio.Event | None = None,
        rate_limit: float | None = None,
    ) -> ActionResult:
        """``action`` on every row matching ``filter``, in batches."""
        return await self.service._bulk(self.spec.kind, action, filter, reason, progress, cancel, rate_limit)

    async def raw(self, id: int, field: RawField) -> str:
        """The stored payload (exactly as JSON text) or the full error message: unbounded and
        NOT display-safe (pass it through ``core.safe_text`` before showing it)."""
        if field not in _RAW_COLUMNS:
            raise ValueError(f"unknown raw field {field!r} (one of: {', '.join(_RAW_COLUMNS)})")
        return await self.service._raw(self.spec.kind, id, _RAW_COLUMNS[field])

    async def summary(self) -> DlqSummary | EventSummary:
        if self.spec.kind == "dlq":
            return await self.service.dlq_summary()
        return await self.service.event_summary()


DlqKind = TriageKind[m.DlqFilter, m.DlqRow, m.DlqDetail]
EventsKind = TriageKind[m.EventFilter, m.EventRow, m.EventDetail]
