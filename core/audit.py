"""The audit log (``opswatch.audit_log``): who did what to which rows, when, and how it went.

Writers call :func:`write_audit` on the connection of the transaction that makes the change,
so a change and its audit row commit (or roll back) together.

``detail`` conventions used by triage (other writers may store anything JSON):
``from`` maps each applied id (as text) to its state before the action, ``to`` is the state
after it, ``skipped`` maps ids to ``{"reason", "by"}`` and ``failed`` maps ids to an error.
"""

from __future__ import annotations

import getpass
import json
import os
import socket
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

import asyncpg

from core.db import Database
from core.safe_text import display_text

OUTCOMES = ("applied", "skipped", "failed", "partial", "refused")

_COLUMNS = "id, at, actor, action, target_kind, target_ids, target_key, filter, reason, outcome, detail"


@dataclass(frozen=True)
class AuditEntry:
    id: int
    at: datetime
    actor: str
    action: str
    target_kind: str
    target_ids: tuple[int, ...]
    target_key: str | None
    filter: dict[str, Any] | None
    reason: str | None
    outcome: str
    detail: dict[str, Any] | None

    @property
    def from_state(self) -> str | None:
        """For a per-row history entry: the row's state before the action."""
        value = (self.detail or {}).get("from_state")
        return value if isinstance(value, str) else None


def default_actor(configured: str | None = None) -> str:
    """The configured actor name, else ``user@host`` of this process."""
    if configured and configured.strip():
        return configured.strip()
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = os.environ.get("USER") or f"uid{os.getuid()}"
    return f"{user}@{socket.gethostname()}"


def outcome_of(applied: int, skipped: int, failed: int) -> str:
    """``applied`` only when everything applied; ``partial`` for a mix."""
    if applied and not skipped and not failed:
        return "applied"
    if not applied and failed and not skipped:
        return "failed"
    if not applied and not failed:
        return "skipped"
    return "partial"


def _json(value: Mapping[str, Any] | None) -> str | None:
    return None if value is None else json.dumps(value, ensure_ascii=False, default=str)


async def write_audit(
    conn: asyncpg.Connection,
    *,
    actor: str,
    action: str,
    target_kind: str,
    outcome: str,
    target_ids: Sequence[int] = (),
    target_key: str | None = None,
    filter: Mapping[str, Any] | None = None,
    reason: str | None = None,
    detail: Mapping[str, Any] | None = None,
) -> int:
    """Insert one audit row on ``conn`` (call it inside the action's transaction); returns its id."""
    if outcome not in OUTCOMES:
        raise ValueError(f"unknown audit outcome {outcome!r}")
    row_id: int = await conn.fetchval(
        """
        INSERT INTO opswatch.audit_log
            (actor, action, target_kind, target_ids, target_key, filter, reason, outcome, detail)
        VALUES ($1, $2, $3, $4::bigint[], $5, $6::jsonb, $7, $8, $9::jsonb)
        RETURNING id
        """,
        actor,
        action,
        target_kind,
        list(target_ids),
        target_key,
        _json(filter),
        reason,
        outcome,
        _json(detail),
    )
    return row_id


def _loads(value: Any) -> dict[str, Any] | None:
    if value is None:
        return None
    parsed = json.loads(value) if isinstance(value, str) else value
    return parsed if isinstance(parsed, dict) else {"value": parsed}


def _entry(row: asyncpg.Record) -> AuditEntry:
    reason = row["reason"]
    key = row["target_key"]
    return AuditEntry(
        id=row["id"],
        at=row["at"],
        actor=display_text(row["actor"], 200),
        action=display_text(row["action"], 100),
        target_kind=display_text(row["target_kind"], 50),
        target_ids=tuple(row["target_ids"] or ()),
        target_key=None if key is None else display_text(key, 300),
        filter=_loads(row["filter"]),
        reason=None if reason is None else display_text(reason, 2000, multiline=True),
        outcome=row["outcome"],
        detail=_loads(row["detail"]),
    )


async def read_audit(
    db: Database,
    *,
    limit: int = 100,
    before_id: int | None = None,
    target_kind: str | None = None,
    actor: str | None = None,
    action: str | None = None,
    target_id: int | None = None,
) -> list[AuditEntry]:
    """Newest first; page with ``before_id`` (the smallest id of the previous page)."""
    if limit < 1:
        raise ValueError("limit must be at least 1")
    conditions: list[str] = []
    args: list[Any] = []
    for column, value in (("target_kind", target_kind), ("actor", actor), ("action", action)):
        if value is not None:
            args.append(value)
            conditions.append(f"{column} = ${len(args)}")
    if before_id is not None:
        args.append(before_id)
        conditions.append(f"id < ${len(args)}")
    if target_id is not None:
        args.append([target_id])
        conditions.append(f"target_ids @> ${len(args)}::bigint[]")
    where = f"WHERE {' AND '.join(conditions)}" if conditions else ""
    args.append(min(limit, 10_000))
    rows = await db.fetch(
        f"SELECT {_COLUMNS} FROM opswatch.audit_log {where} ORDER BY id DESC LIMIT ${len(args)}", *args
    )
    return [_entry(r) for r in rows]


def narrow_to(entry: AuditEntry, target_id: int) -> AuditEntry:
    """The entry as seen from one row: its own outcome, from-state and error only."""
    detail = entry.detail or {}
    key = str(target_id)
    own: dict[str, Any] = {}
    outcome = entry.outcome
    from_map = detail.get("from")
    failed_map = detail.get("failed")
    skipped_map = detail.get("skipped")
    if isinstance(from_map, dict) and key in from_map:
        own["from_state"] = from_map[key]
        outcome = "applied"
    elif isinstance(failed_map, dict) and key in failed_map:
        own["error"] = failed_map[key]
        outcome = "failed"
    elif isinstance(skipped_map, dict) and key in skipped_map:
        own["skipped"] = skipped_map[key]
        outcome = "skipped"
    for name in ("to", "redrive", "bulk_id"):
        if name in detail:
            own[name] = detail[name]
    if len(entry.target_ids) > 1:
        own["batch_rows"] = len(entry.target_ids)
    return replace(entry, target_ids=(target_id,), outcome=outcome, detail=own)


async def history_for(db: Database, kind: str, target_id: int, *, limit: int = 100) -> tuple[AuditEntry, ...]:
    """Actions taken on one row (newest first), each narrowed to that row (:func:`narrow_to`)."""
    rows = await db.fetch(
        f"""
        SELECT {_COLUMNS} FROM opswatch.audit_log
        WHERE target_kind = $1 AND target_ids @> $2::bigint[]
        ORDER BY id DESC LIMIT $3
        """,
        kind,
        [target_id],
        limit,
    )
    return tuple(narrow_to(_entry(r), target_id) for r in rows)


@dataclass(frozen=True)
class AuditLog:
    """Reads the audit log for the faces (writers call :func:`write_audit` in their own transaction)."""

    db: Database

    async def read(
        self,
        *,
        limit: int = 100,
        before_id: int | None = None,
        target_kind: str | None = None,
        actor: str | None = None,
        target_id: int | None = None,
    ) -> list[AuditEntry]:
        return await read_audit(
            self.db,
            limit=limit,
            before_id=before_id,
            target_kind=target_kind,
            actor=actor,
            target_id=target_id,
        )
