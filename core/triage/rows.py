"""Database records to the display-safe rows and payload text of core.triage.models."""

from __future__ import annotations

import json
from typing import Any

import asyncpg

from core.safe_text import NOT_JSON_MARKER, display_text, first_line, pretty_json
from core.triage.models import DlqRow, EventRow
from core.triage.queries import DETAIL_PAYLOAD_CHARS

ERROR_DISPLAY_CHARS = 20_000
PAYLOAD_DISPLAY_CHARS = 50_000
FIRST_LINE_CHARS = 200


def display_name(value: Any, fallback_id: Any) -> str:
    return display_text(value, 100) if value is not None else f"#{fallback_id}"


def dlq_row(r: asyncpg.Record) -> DlqRow:
    return DlqRow(
        id=r["id"],
        message_id=r["message_id"],
        business_id=r["business_id"],
        business_name=display_name(r["business_name"], r["business_id"]),
        channel_id=r["channel_id"],
        channel_name=display_name(r["channel_name"], r["channel_id"]),
        platform=display_text(r["platform"] or "", 30),
        status=display_text(r["status"], 30),
        retry_count=r["retry_count"],
        created_at=r["created_at"],
        resolved_at=r["resolved_at"],
        error_first_line=first_line(r["error_head"] or "", FIRST_LINE_CHARS),
    )


def event_row(r: asyncpg.Record) -> EventRow:
    return EventRow(
        id=r["id"],
        event_name=display_text(r["event_name"], 100),
        business_id=r["business_id"],
        business_name=display_name(r["business_name"], r["business_id"]),
        status=display_text(r["status"], 30),
        retry_count=r["retry_count"],
        created_at=r["created_at"],
        resolved_at=r["resolved_at"],
        error_first_line=first_line(r["error_head"] or "", FIRST_LINE_CHARS),
    )


def render_payload(payload_type: str | None, body: str | None) -> tuple[str, bool]:
    """(display-safe pretty text, truncated) from the detail query's bounded payload columns."""
    if payload_type is None or body is None:
        return "", False
    fetched_all = len(body) <= DETAIL_PAYLOAD_CHARS
    if payload_type == "string":
        parsed: Any = None
        if fetched_all:
            try:
                parsed = json.loads(body)
            except (ValueError, RecursionError):
                parsed = None
        if isinstance(parsed, dict | list):
            text = "(JSON text stored as a JSON string)\n" + pretty_json(parsed, PAYLOAD_DISPLAY_CHARS)
        else:
            text = f"{NOT_JSON_MARKER}, stored as a JSON string:\n" + display_text(
                body, PAYLOAD_DISPLAY_CHARS, multiline=True
            )
    else:
        text = display_text(body, PAYLOAD_DISPLAY_CHARS, multiline=True)
    truncated = not fetched_all or len(body) > PAYLOAD_DISPLAY_CHARS
    return text, truncated
