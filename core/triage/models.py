"""Plain frozen dataclasses that cross the triage core -> UI/CLI boundary."""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any, Generic, Literal, TypeVar

from core.audit import AuditEntry
from core.snapshot import CountBy

Kind = Literal["dlq", "event"]

DLQ_STATUSES = ("pending", "retried", "resolved", "abandoned")
EVENT_STATUSES = ("failed", "retrying", "resolved")
MAX_TEXT_FILTER = 200


class Sort(StrEnum):
    NEWEST = "newest"
    OLDEST = "oldest"
    MOST_RETRIES = "most_retries"


def _check_common(
    kind: str,
    status: tuple[str, ...],
    known: tuple[str, ...],
    text: str | None,
    min_age_s: float | None,
    max_age_s: float | None,
    ids: dict[str, int | None],
    business_name: str | None = None,
) -> None:
    for value in status:
        if value not in known:
            raise ValueError(f"unknown {kind} status {value!r} (one of: {', '.join(known)})")
    if len(set(status)) != len(status):
        raise ValueError("status is listed twice in the filter")
    for name, age in (("min_age_s", min_age_s), ("max_age_s", max_age_s)):
        if age is not None and age < 0:
            raise ValueError(f"{name} must not be negative")
    if min_age_s is not None and max_age_s is not None and min_age_s > max_age_s:
        raise ValueError(
            "conflicting filters: 'older than' is longer than 'newer than', so nothing can match"
        )
    if text is not None and len(text) > MAX_TEXT_FILTER:
        raise ValueError(f"search text is longer than {MAX_TEXT_FILTER} characters")
    if text is not None and "\x00" in text:
        raise ValueError("search text must not contain NUL")
    if business_name is not None and (not business_name.strip() or len(business_name) > 200):
        raise ValueError("business name must be 1-200 characters")
    if business_name is not None and "\x00" in business_name:
        raise ValueError("business name must not contain NUL")
    for name, number in ids.items():
        if number is not None and not 0 < number < 2**63:
            raise ValueError(f"{name} must be a positive integer")


def _as_dict(values: dict[str, Any]) -> dict[str, Any]:
    return {k: (list(v) if isinstance(v, tuple) else v) for k, v in values.items() if v not in (None, ())}


@dataclass(frozen=True)
class DlqFilter:
    """Rows matching all given criteria; ``status=()`` means any status."""

    status: tuple[str, ...] = ("pending",)
    business_id: int | None = None
    business_name: str | None = None  # resolved to business_id by the service (case-insensitive)
    channel_id: int | None = None
    text: str | None = None  # case-insensitive substring of the error message
    min_age_s: float | None = None  # older than
    max_age_s: float | None = None  # newer than

    def validate(self) -> None:
        _check_common(
            "DLQ",
            self.status,
            DLQ_STATUSES,
            self.text,
            self.min_age_s,
            self.max_age_s,
            {"business_id": self.business_id, "channel_id": self.channel_id},
            self.business_name,
        )

    def as_dict(self) -> dict[str, Any]:
        return _as_dict(dict(self.__dict__))


@dataclass(frozen=True)
class EventFilter:
    status: tuple[str, ...] = ("failed",)
    business_id: int | None = None
    business_name: str | None = None
    event_name: str | None = None
    text: str | None = None
    min_age_s: float | None = None
    max_age_s: float | None = None

    def validate(self) -> None:
        _check_common(
            "event",
            self.status,
            EVENT_STATUSES,
            self.text,
            self.min_age_s,
            self.max_age_s,
            {"business_id": self.business_id},
            self.business_name,
        )
        if self.event_name is not None and (not self.event_name or len(self.event_name) > 200):
            raise ValueError("event name must be 1-200 characters")

    def as_dict(self) -> dict[str, Any]:
        return _as_dict(dict(self.__dict__))


@dataclass(frozen=True)
class DlqRow:
    id: int
    message_id: int
    business_id: int
    business_name: str
    channel_id: int
    channel_name: str
    platform: str
    status: str
    retry_count: int
    created_at: datetime
    resolved_at: datetime | None
    error_first_line: str


@dataclass(frozen=True)
class EventRow:
    id: int
    event_name: str
    business_id: int
    business_name: str
    status: str
    retry_count: int
    created_at: datetime
    resolved_at: datetime | None
    error_first_line: str


@dataclass(frozen=True)
class Cursor:
    """A keyset position: rows strictly after (or, ``backward``, before) ``key`` in ``sort`` order."""

    sort: Sort
    key: tuple[Any, ...]
    backward: bool = False

    def encode(self) -> str:
        """An opaque, URL-safe token (for the CLI's ``--cursor``)."""
        parts = [["t", v.isoformat()] if isinstance(v, datetime) else ["v", v] for v in self.key]
        raw = json.dumps([self.sort.value, parts, self.backward], separators=(",", ":"))
        return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")

    @classmethod
    def decode(cls, token: str) -> Cursor:
        try:
            raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
            sort, parts, backward = json.loads(raw)
            key = tuple(datetime.fromisoformat(v) if t == "t" else v for t, v in parts)
            if not all(isinstance(v, int | datetime) and not isinstance(v, bool) for v in key):
                raise ValueError("bad key")
            return cls(Sort(sort), key, bool(backward))
        except (ValueError, TypeError, binascii.Error, UnicodeDecodeError) as exc:
            raise ValueError("invalid cursor (take it from a previous page's output)") from exc


T = TypeVar("T")


@dataclass(frozen=True)
class Page(Generic[T]):
    rows: tuple[T, ...]
    total: int
    next_cursor: Cursor | None
    prev_cursor: Cursor | None


@dataclass(frozen=True)
class DlqDetail:
    row: DlqRow
    error_message: str
    payload_pretty: str
    payload_truncated: bool
    history: tuple[AuditEntry, ...]
    payload_bytes: int = 0
    same_message: tuple[int, ...] = ()
    """Ids of the rows of this row's message_id (this one included), oldest first, bounded."""
    same_message_total: int | None = None
    """How many rows that message has; None when the lookup was given up (no index, too slow)."""


@dataclass(frozen=True)
class EventDetail:
    row: EventRow
    error_message: str
    error_stack: str
    payload_pretty: str
    payload_truncated: bool
    history: tuple[AuditEntry, ...]
    payload_bytes: int = 0


@dataclass(frozen=True)
class Skipped:
    id: int
    reason: str
    by: str | None = None


@dataclass(frozen=True)
class Failed:
    id: int
    error: str


@dataclass(frozen=True)
class ActionResult:
    action: str
    applied: tuple[int, ...] = ()
    skipped: tuple[Skipped, ...] = ()
    failed: tuple[Failed, ...] = ()
    cancelled: bool = False
    stopped: str | None = None  # why a bulk action stopped by itself (replay target failing)
    batches: int = 0
    max_lock_s: float = 0.0  # longest time one batch held its row locks
    max_batch_s: float = 0.0

    @property
    def counts(self) -> str:
        text = f"{len(self.applied)} applied, {len(self.skipped)} skipped, {len(self.failed)} failed"
        return text + " (cancelled)" if self.cancelled else text

    @property
    def all_applied(self) -> bool:
        return not self.skipped and not self.failed and not self.cancelled and self.stopped is None


@dataclass(frozen=True)
class BulkPreview:
    count: int
    oldest: datetime | None
    newest: datetime | None
    top_errors: tuple[CountBy, ...] = ()
    businesses: tuple[CountBy, ...] = ()
    channels: tuple[CountBy, ...] = ()
    event_names: tuple[CountBy, ...] = ()

    def groups(self) -> tuple[tuple[str, tuple[CountBy, ...]], ...]:
        """(what, counts) of each grouping, in the order they are shown."""
        return (
            ("errors", self.top_errors),
            ("businesses", self.businesses),
            ("channels", self.channels),
            ("events", self.event_names),
        )


@dataclass(frozen=True)
class BulkProgress:
    done: int
    total: int
    applied: int
    skipped: int
    failed: int
