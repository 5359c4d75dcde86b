"""The persistent notification outbox (``opswatch.notification_outbox``).

A notification is rendered and stored *before* anything is sent, under a deterministic
``dedup_key`` (``INSERT ... ON CONFLICT DO NOTHING``), so evaluating the same alert twice
never queues it twice. Deliverers claim rows with a lease (``locked_by``/``locked_until``,
``FOR UPDATE SKIP LOCKED``): one instance sends a row; if it dies, the lease runs out and
another takes over. Per route and target only the oldest pending row is eligible, so a firing
message and its resolved message arrive in order, and a rate-limited webhook is not hammered.

Instances sharing the outbox may be configured differently. Each row stores the fingerprint
of the destination it was queued for (``target``, see :func:`core.notify.base.target_id`); an
instance claims only rows for routes it has with that same destination. A row nobody running
can send stays pending (counted, listed) until such an instance appears; it is never
dead-lettered for "not configured here".
"""

from __future__ import annotations

import json
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg

from core.db import Database
from core.notify.base import Notification, Notifier, summary_line
from core.notify.render import inert
from core.redact import redact
from core.safe_text import display_text, first_line
from core.snapshot import OutboxSummary

__all__ = [
    "STATUSES",
    "ClaimedRow",
    "FailedItem",
    "OutboxEntry",
    "OutboxItem",
    "claim",
    "enqueue",
    "enqueue_dead",
    "entries",
    "items_for",
    "list_outbox",
    "mark_delivered",
    "mark_failed",
    "outbox_summary",
    "prune_delivered",
    "requeue",
]

STATUSES = ("pending", "delivered", "dead")


@dataclass(frozen=True)
class OutboxItem:
    dedup_key: str
    channel: str
    route: str
    severity: str
    kind: str
    payload: Mapping[str, Any]
    summary: str
    alerts: tuple[str, ...] = ()
    target: str | None = None  # destination fingerprint; None: any instance with the route


@dataclass(frozen=True)
class FailedItem:
    """An item whose delivery was given up before it reached the outbox (sent directly)."""

    item: OutboxItem
    attempts: int
    error: str | None
    status: int | None = None


@dataclass(frozen=True)
class ClaimedRow:
    id: int
    channel: str
    route: str
    kind: str
    severity: str
    payload: dict[str, Any]
    attempts: int
    alerts: tuple[str, ...] = ()  # "rule/scope" of each alert, for log lines
    summary: str = ""


@dataclass(frozen=True)
class OutboxEntry:
    """One outbox row for the UI and the CLI (text already made safe to display)."""

    id: int
    created_at: datetime
    channel: str
    route: str
    severity: str
    kind: str
    status: str
    attempts: int
    next_attempt_at: datetime
    last_error: str | None
    last_status: int | None
    delivered_at: datetime | None
    summary: str
    target: str | None = None


def items_for(notification: Notification, notifiers: Mapping[str, Notifier]) -> list[OutboxItem]:
    """Render ``notification`` for every route that takes its severity."""
    kind = "grouped" if notification.kind == "firing" and notification.grouped else notification.kind
    clean = inert(notification)
    summary = summary_line(clean)
    alerts = tuple(f"{a.rule}/{a.scope}" if a.scope else a.rule for a in clean.alerts)
    items: list[OutboxItem] = []
    for notifier in notifiers.values():
        routes = notifier.routes(notification.severity)
        if not routes:
            continue
        targets = notifier.targets()
        for rendered in notifier.render(notification):
            for route in routes:
                key = f"{notification.key}|{route}" + (f"|{rendered.suffix}" if rendered.suffix else "")
                items.append(
                    OutboxItem(
                        key,
                        notifier.channel,
                        route,
                        notification.severity,
                        kind,
                        rendered.payload,
                        summary,
                        alerts,
                        targets.get(route),
                    )
                )
    return items


async def enqueue(
    conn: asyncpg.Connection, items: Sequence[OutboxItem], *, delivered: bool = False
) -> list[int]:
    """Store ``items``; ones whose dedup_key exists are skipped. Returns the new row ids.

    ``delivered=True`` records items that were already sent another way (database outage).
    """
    n = len(items)
    status = "delivered" if delivered else "pending"
    return await _insert(conn, items, [status] * n, [1 if delivered else 0] * n, [None] * n, [None] * n)


async def enqueue_dead(conn: asyncpg.Connection, failed: Sequence[FailedItem]) -> list[int]:
    """Record items given up on outside the outbox as dead letters (so they can be resent)."""
    return await _insert(
        conn,
        [f.item for f in failed],
        ["dead"] * len(failed),
        [f.attempts for f in failed],
        [None if f.error is None else f.error[:500] for f in failed],
        [f.status for f in failed],
    )


async def _insert(
    conn: asyncpg.Connection,
    items: Sequence[OutboxItem],
    statuses: list[str],
    attempts: list[int],
    errors: list[str | None],
    last_status: list[int | None],
) -> list[int]:
    if not items:
        return []
    rows = await conn.fetch(
        """
        INSERT INTO opswatch.notification_outbox
            (dedup_key, channel, route, target, severity, kind, payload, summary, alerts,
             status, attempts, last_error, last_status, delivered_at, last_attempt_at)
        SELECT k, c, r, tg, s, kd, p::jsonb, sm, COALESCE(string_to_array(a, E'\\x1f'), '{}'),
               st, att, le, ls, CASE WHEN st = 'delivered' THEN clock_timestamp() END,
               CASE WHEN att > 0 THEN clock_timestamp() END
        FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[],
                    $8::text[], $9::text[], $10::text[], $11::int[], $12::text[], $13::int[])
             AS t(k, c, r, tg, s, kd, p, sm, a, st, att, le, ls)
        ON CONFLICT (dedup_key) DO NOTHING
        RETURNING id
        """,
        [i.dedup_key for i in items],
        [i.channel for i in items],
        [i.route for i in items],
        [i.target for i in items],
        [i.severity for i in items],
        [i.kind for i in items],
        [json.dumps(i.payload, ensure_ascii=False) for i in items],
        [i.summary for i in items],
        ["\x1f".join(i.alerts) if i.alerts else None for i in items],
        statuses,
        attempts,
        [None if e is None else redact(e) for e in errors],
        last_status,
    )
    return [int(r["id"]) for r in rows]


_CLAIM = """
UPDATE opswatch.notification_outbox AS o
SET locked_by = $1, locked_until = clock_timestamp() + make_interval(secs => $2)
WHERE o.id IN (
    SELECT c.id FROM opswatch.notification_outbox AS c
    WHERE c.status = 'pending'
      AND c.next_attempt_at <= clock_timestamp()
      AND (c.locked_until IS NULL OR c.locked_until < clock_timestamp())
      AND ($4::text[] IS NULL OR EXISTS (
            SELECT 1 FROM unnest($4::text[], $5::text[]) AS m(route, target)
            WHERE m.route = c.route AND (c.target IS NULL OR c.target = m.target)))
      AND {eligible}
    ORDER BY c.id
    LIMIT $3
    FOR UPDATE SKIP LOCKED
)
AND o.status = 'pending'
AND (o.locked_until IS NULL OR o.locked_until < clock_timestamp())
RETURNING o.id, o.channel, o.route, o.kind, o.severity, o.payload, o.attempts, o.alerts, o.summary
"""
_HEADS = """c.id IN (SELECT DISTINCT ON (h.route, h.target) h.id FROM opswatch.notification_outbox AS h
                  WHERE h.status = 'pending' ORDER BY h.route, h.target, h.id)"""


async def claim(
    db: Database,
    *,
    instance_id: str,
    lease_s: float,
    targets: Mapping[str, str] | None,
    limit: int = 20,
    only_ids: Collection[int] | None = None,
) -> list[ClaimedRow]:
    """Lease due rows to ``instance_id``: the oldest pending row of each route and target (or ``only_ids``).

    ``targets`` maps each route this instance can send to its destination fingerprint
    (:meth:`Notifier.targets`); only rows it can send are claimed. None claims any row.
    """
    if targets is not None and not targets:
        return []
    routes = None if targets is None else list(targets)
    fingerprints = None if targets is None else list(targets.values())
    if only_ids is not None:
        rows = await db.fetch(
            _CLAIM.format(eligible="c.id = ANY($6::bigint[])"),
            instance_id,
            float(lease_s),
            limit,
            routes,
            fingerprints,
            list(only_ids),
        )
    else:
        rows = await db.fetch(
            _CLAIM.format(eligible=_HEADS), instance_id, float(lease_s), limit, routes, fingerprints
        )
    return [
        ClaimedRow(
            id=int(r["id"]),
            channel=r["channel"],
            route=r["route"],
            kind=r["kind"],
            severity=r["severity"],
            payload=json.loads(r["payload"]),
            attempts=int(r["attempts"]),
            alerts=tuple(r["alerts"] or ()),
            summary=first_line(r["summary"] or "", 200),
        )
        for r in sorted(rows, key=lambda r: int(r["id"]))
    ]


async def mark_delivered(db: Database, row_id: int, instance_id: str, status: int | None) -> bool:
    """False when the lease was lost meanwhile (another instance owns the row now)."""
    done = await db.fetchval(
        """
        UPDATE opswatch.notification_outbox
        SET status = 'delivered', delivered_at = clock_timestamp(), attempts = attempts + 1,
            last_attempt_at = clock_timestamp(), last_status = $3, last_error = NULL,
            locked_by = NULL, locked_until = NULL
        WHERE id = $1 AND locked_by = $2 AND status = 'pending'
        RETURNING id
        """,
        row_id,
        instance_id,
        status,
    )
    return done is not None


async def mark_failed(
    db: Database,
    row_id: int,
    instance_id: str,
    *,
    error: str,
    status: int | None,
    delay_s: float,
    max_attempts: int,
    permanent: bool,
) -> tuple[str, int] | None:
    """Record a failed attempt: back to pending after ``delay_s``, or dead. Returns (status, attempts)."""
    row = await db.fetchrow(
        """
        UPDATE opswatch.notification_outbox
        SET attempts = attempts + 1, last_attempt_at = clock_timestamp(), last_status = $4, last_error = $3,
            status = CASE WHEN $6 OR attempts + 1 >= $5 THEN 'dead' ELSE 'pending' END,
            next_attempt_at = clock_timestamp() + make_interval(secs => $7),
            locked_by = NULL, locked_until = NULL
        WHERE id = $1 AND locked_by = $2 AND status = 'pending'
        RETURNING status, attempts
        """,
        row_id,
        instance_id,
        redact(error)[:500],
        status,
        max_attempts,
        permanent,
        float(delay_s),
    )
    return None if row is None else (str(row["status"]), int(row["attempts"]))


async def requeue(
    conn: asyncpg.Connection, row_id: int, *, retarget: bool = False
) -> tuple[str, str | None] | None:
    """Put a dead row back to pending (fresh attempts); None if there is no such row.

    ``retarget`` also clears the row's destination fingerprint, so any instance with its route
    sends it to the route's *current* destination: for rows queued to a webhook URL that no
    configuration has any more (those wait as pending forever otherwise). It applies to pending
    rows too. Returns the previous status and fingerprint.
    """
    row = await conn.fetchrow(
        "SELECT status, target FROM opswatch.notification_outbox WHERE id = $1 FOR UPDATE", row_id
    )
    if row is None:
        return None
    status, target = str(row["status"]), row["target"]
    if status == "dead" or (retarget and status == "pending"):
        await conn.execute(
            """
            UPDATE opswatch.notification_outbox
            SET status = 'pending', attempts = 0, next_attempt_at = clock_timestamp(), last_error = NULL,
                last_status = NULL, locked_by = NULL, locked_until = NULL,
                target = CASE WHEN $2 THEN NULL ELSE target END
            WHERE id = $1
            """,
            row_id,
            retarget,
        )
    return status, target


_ENTRY_COLUMNS = """id, created_at, channel, route, severity, kind, status, attempts, next_attempt_at,
    last_error, last_status, delivered_at, summary, target"""


def _entry(r: asyncpg.Record) -> OutboxEntry:
    error = r["last_error"]
    return OutboxEntry(
        id=int(r["id"]),
        created_at=r["created_at"],
        channel=r["channel"],
        route=display_text(r["route"], 100),
        severity=r["severity"],
        kind=r["kind"],
        status=r["status"],
        attempts=int(r["attempts"]),
        next_attempt_at=r["next_attempt_at"],
        last_error=None if error is None else first_line(error, 300, redact_secrets=True),
        last_status=r["last_status"],
        delivered_at=r["delivered_at"],
        summary=first_line(r["summary"] or "", 300),
        target=r["target"],
    )


async def list_outbox(db: Database, status: str | None = None, limit: int = 100) -> list[OutboxEntry]:
    """Newest first, optionally only one status."""
    if status is not None and status not in STATUSES:
        raise ValueError(f"unknown outbox status {status!r} (one of {', '.join(STATUSES)})")
    rows = await db.fetch(
        f"""SELECT {_ENTRY_COLUMNS} FROM opswatch.notification_outbox
            WHERE $1::text IS NULL OR status = $1 ORDER BY id DESC LIMIT $2""",
        status,
        max(1, min(limit, 10_000)),
    )
    return [_entry(r) for r in rows]


async def entries(db: Database, ids: Collection[int]) -> dict[int, OutboxEntry]:
    rows = await db.fetch(
        f"SELECT {_ENTRY_COLUMNS} FROM opswatch.notification_outbox WHERE id = ANY($1::bigint[])", list(ids)
    )
    return {int(r["id"]): _entry(r) for r in rows}


async def outbox_summary(db: Database) -> OutboxSummary:
    row = await db.fetchrow(
        """
        SELECT count(*) FILTER (WHERE status = 'pending') AS pending,
               count(*) FILTER (WHERE status = 'dead') AS dead,
               count(*) FILTER (WHERE status = 'delivered'
                                AND delivered_at > clock_timestamp() - interval '1 hour') AS delivered
        FROM opswatch.notification_outbox
        WHERE status <> 'delivered' OR delivered_at > clock_timestamp() - interval '1 hour'
        """
    )
    assert row is not None
    return OutboxSummary(
        pending=int(row["pending"]), dead=int(row["dead"]), delivered_last_hour=int(row["delivered"])
    )


async def prune_delivered(db: Database, older_than_s: float) -> int:
    """Delete delivered rows older than ``older_than_s``; dead and pending rows are kept."""
    status = await db.execute(
        """DELETE FROM opswatch.notification_outbox
           WHERE status = 'delivered' AND delivered_at < clock_timestamp() - make_interval(secs => $1)""",
        float(older_than_s),
    )
    return int(status.split()[-1])
