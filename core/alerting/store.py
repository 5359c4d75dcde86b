"""The SQL of alerting: alert state, history and silences in PostgreSQL (schema ``opswatch``).

Every function runs in the caller's connection or transaction; none opens its own.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

import asyncpg

from core.alerting.models import ENGINE_NAME, AlertChange, HistoryEntry, Key, Silence
from core.notify.base import epoch_ms
from core.rules import AlertRecord
from core.safe_text import display_text

__all__ = [
    "alert_for_update",
    "cancel_silence",
    "history_key",
    "insert_history",
    "insert_silence",
    "mark_acknowledged",
    "next_version",
    "read_history",
    "read_silences",
    "read_state",
    "upsert_records",
]

_STATE_COLUMNS = (
    "rule, scope, state, severity, value, threshold, since, started_at, fired_at, resolved_at, "
    "last_notified_at, "
    "acknowledged_by, acknowledged_at, announced, notified_severity, eligible_since, transitions, flapping, "
    "flapping_since, good_samples, repeat_count, silenced, suppressed_by"
)
_UPSERT = f"""
INSERT INTO opswatch.alert_state ({_STATE_COLUMNS}, instance, updated_at)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, $22,
        $23, $24, clock_timestamp())
ON CONFLICT (rule, scope) DO UPDATE SET
""" + ", ".join(f"{c} = EXCLUDED.{c}" for c in [*_STATE_COLUMNS.split(", ")[2:], "instance", "updated_at"])

_SILENCE_COLUMNS = (
    "id, rule, scope, starts_at, ends_at, reason, created_by, created_at, cancelled_at, cancelled_by"
)


def _record_args(rec: AlertRecord, instance: str) -> tuple[Any, ...]:
    return (
        rec.rule, rec.scope, rec.state, rec.severity, rec.value, rec.threshold, rec.since, rec.started_at,
        rec.fired_at, rec.resolved_at, rec.last_notified_at, rec.acknowledged_by, rec.acknowledged_at,
        rec.announced, rec.notified_severity, rec.eligible_since, list(rec.transitions), rec.flapping,
        rec.flapping_since, rec.good_samples, rec.repeat_count, rec.silenced, rec.suppressed_by, instance,
    )  # fmt: skip


def _record(row: asyncpg.Record) -> AlertRecord:
    return AlertRecord(
        rule=row["rule"],
        scope=row["scope"],
        since=row["since"],
        state=row["state"],
        severity=row["severity"],
        value=row["value"],
        threshold=row["threshold"],
        started_at=row["started_at"],
        fired_at=row["fired_at"],
        resolved_at=row["resolved_at"],
        last_notified_at=row["last_notified_at"],
        acknowledged_by=row["acknowledged_by"],
        acknowledged_at=row["acknowledged_at"],
        announced=row["announced"],
        notified_severity=row["notified_severity"],
        eligible_since=row["eligible_since"],
        transitions=tuple(row["transitions"] or ()),
        flapping=row["flapping"],
        flapping_since=row["flapping_since"],
        good_samples=row["good_samples"],
        repeat_count=row["repeat_count"],
        silenced=row["silenced"],
        suppressed_by=row["suppressed_by"],
    )


def _silence(row: asyncpg.Record) -> Silence:
    return Silence(
        id=int(row["id"]),
        rule=row["rule"],
        scope=row["scope"],
        starts_at=row["starts_at"],
        ends_at=row["ends_at"],
        reason=display_text(row["reason"], 500),
        created_by=display_text(row["created_by"], 200),
        created_at=row["created_at"],
        cancelled_at=row["cancelled_at"],
        cancelled_by=None if row["cancelled_by"] is None else display_text(row["cancelled_by"], 200),
    )


# --------------------------------------------------------------------------- engine


async def read_state(
    conn: asyncpg.Connection, now: datetime
) -> tuple[dict[Key, AlertRecord], tuple[Silence, ...]]:
    """Every stored alert, and the silences not over at ``now``."""
    rows = await conn.fetch(f"SELECT {_STATE_COLUMNS} FROM opswatch.alert_state")
    silences = await conn.fetch(
        f"SELECT {_SILENCE_COLUMNS} FROM opswatch.silences"
        " WHERE cancelled_at IS NULL AND ends_at > $1 ORDER BY id",
        now,
    )
    records = {(r["rule"], r["scope"]): _record(r) for r in rows}
    return records, tuple(_silence(s) for s in silences)


async def upsert_records(conn: asyncpg.Connection, records: Iterable[AlertRecord], instance: str) -> None:
    await conn.executemany(_UPSERT, [_record_args(r, instance) for r in records])


def history_key(rule: str, scope: str, from_state: str, to_state: str, at: datetime) -> str:
    return f"{rule}/{scope}/{from_state}>{to_state}/{epoch_ms(at)}"


async def insert_history(conn: asyncpg.Connection, changes: Iterable[AlertChange], instance: str) -> None:
    """History rows carry deterministic keys: inserting one twice changes nothing."""
    rows = [
        (t.at, t.rule, t.scope, t.from_state, t.to_state, t.severity, t.value, instance,
         history_key(t.rule, t.scope, t.from_state, t.to_state, t.at))
        for t in changes
    ]  # fmt: skip
    if rows:
        await conn.executemany(
            """INSERT INTO opswatch.alert_history
                   (at, rule, scope, from_state, to_state, severity, value, instance, dedup_key)
               VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT (dedup_key) DO NOTHING""",
            rows,
        )


async def next_version(conn: asyncpg.Connection) -> int:
    """Bump the shared state version after a write (the leader row exists: the lease holds it)."""
    return int(
        await conn.fetchval(
            "UPDATE opswatch.alert_leader SET version = version + 1 WHERE name = $1 RETURNING version",
            ENGINE_NAME,
        )
    )


# --------------------------------------------------------------------------- operator actions


async def alert_for_update(conn: asyncpg.Connection, rule: str, scope: str) -> asyncpg.Record | None:
    """The alert's state, severity and notification times, its row locked."""
    row: asyncpg.Record | None = await conn.fetchrow(
        "SELECT state, acknowledged_by, severity, fired_at, last_notified_at"
        " FROM opswatch.alert_state WHERE rule = $1 AND scope = $2 FOR UPDATE",
        rule,
        scope,
    )
    return row


async def mark_acknowledged(conn: asyncpg.Connection, rule: str, scope: str, actor: str) -> None:
    await conn.execute(
        """UPDATE opswatch.alert_state
           SET acknowledged_by = $3, acknowledged_at = clock_timestamp(),
           updated_at = clock_timestamp() WHERE rule = $1 AND scope = $2""",
        rule,
        scope,
        actor,
    )


async def insert_silence(
    conn: asyncpg.Connection, rule: str | None, scope: str | None, duration_s: float, reason: str, actor: str
) -> Silence:
    """A silence starting now by the database clock."""
    row = await conn.fetchrow(
        f"""INSERT INTO opswatch.silences (rule, scope, starts_at, ends_at, reason, created_by)
            VALUES ($1, $2, clock_timestamp(), clock_timestamp() + make_interval(secs => $3), $4, $5)
            RETURNING {_SILENCE_COLUMNS}""",
        rule,
        scope,
        float(duration_s),
        reason,
        actor,
    )
    assert row is not None
    return _silence(row)


async def cancel_silence(conn: asyncpg.Connection, silence_id: int, actor: str) -> bool:
    """End an active silence now; False when it is not active."""
    done = await conn.fetchval(
        """UPDATE opswatch.silences SET cancelled_at = clock_timestamp(), cancelled_by = $2
           WHERE id = $1 AND cancelled_at IS NULL AND ends_at > clock_timestamp() RETURNING id""",
        silence_id,
        actor,
    )
    return done is not None


async def read_silences(conn: asyncpg.Connection, active_only: bool) -> list[Silence]:
    rows = await conn.fetch(
        f"""SELECT {_SILENCE_COLUMNS} FROM opswatch.silences
            WHERE NOT $1 OR (cancelled_at IS NULL AND ends_at > clock_timestamp())
            ORDER BY id DESC LIMIT 1000""",
        active_only,
    )
    return [_silence(r) for r in rows]


async def read_history(
    conn: asyncpg.Connection, limit: int, rule: str | None, scope: str | None
) -> list[HistoryEntry]:
    rows = await conn.fetch(
        """SELECT id, at, rule, scope, from_state, to_state, severity, value, instance
           FROM opswatch.alert_history
           WHERE ($1::text IS NULL OR rule = $1) AND ($2::text IS NULL OR scope = $2)
           ORDER BY id DESC LIMIT $3""",
        rule,
        scope,
        max(1, min(limit, 10_000)),
    )
    return [
        HistoryEntry(
            r["rule"],
            r["scope"],
            r["from_state"],
            r["to_state"],
            r["severity"],
            r["value"],
            r["at"],
            id=int(r["id"]),
            instance=r["instance"],
        )
        for r in rows
    ]
