"""Alert decisions made while the database was unreachable: how they are spooled and merged back.

An instance that decides without the database records each changed alert with the fingerprint of
its stored row when the outage began (``before``), the state changes and the notifications it sent
(:mod:`core.spool`). Once the database is back, :func:`merge` stores them, idempotently.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from datetime import datetime
from typing import Any

import asyncpg
from loguru import logger

from core.alerting.models import ENGINE_NAME, AlertChange, Key, alert_target
from core.alerting.store import insert_history, read_state, upsert_records
from core.leader import bump_version
from core.notify.outbox import FailedItem, enqueue, enqueue_dead
from core.rules import OK, RESOLVED, AlertRecord
from core.spool import SpooledItem, SpoolFile, fingerprint

__all__ = ["UNKNOWN_BEFORE", "change_from", "change_line", "merge", "unchanged"]

UNKNOWN_BEFORE = "?"  # decided by an agent that started during the outage: state before unknown


def change_line(t: AlertChange) -> dict[str, Any]:
    return {
        "type": "transition",
        "rule": t.rule,
        "scope": t.scope,
        "from_state": t.from_state,
        "to_state": t.to_state,
        "severity": t.severity,
        "value": t.value,
        "at": t.at.isoformat(),
    }


def change_from(line: Mapping[str, Any]) -> AlertChange:
    return AlertChange(
        str(line["rule"]),
        str(line["scope"]),
        str(line["from_state"]),
        str(line["to_state"]),
        line.get("severity"),
        line.get("value"),
        datetime.fromisoformat(str(line["at"])),
    )


def unchanged(current: AlertRecord | None, before: Any) -> bool:
    """The stored row is still what the offline decider started from."""
    if before == UNKNOWN_BEFORE:
        return current is None or (current.state in (OK, RESOLVED) and not current.announced)
    return bool(fingerprint(current) == before)


async def merge(conn: asyncpg.Connection, spool: SpoolFile, now: datetime) -> int:
    """Store decisions made without the database, idempotently, in the caller's transaction.

    An alert is taken as decided offline when its stored row is still what the decider
    started from, or is an earlier step of the same episode (same ``fired_at``); a later
    step of the same episode (another instance merged it and resolved it since) is kept; a
    different episode (announced by an instance that could not know) wins, and the offline
    one's unsent messages for it are dropped.
    History rows and notifications carry deterministic keys: replaying twice changes nothing.
    Returns the new version.
    """
    version = await bump_version(conn, ENGINE_NAME)
    current, _silences = await read_state(conn, now)
    applied: list[AlertRecord] = []
    conflicts: set[Key] = set()
    for key, rec in spool.records.items():
        stored = current.get(key)
        if unchanged(stored, spool.before.get(key, UNKNOWN_BEFORE)) or (
            stored is not None and stored.fired_at == rec.fired_at and rec.since > stored.since
        ):
            applied.append(rec)  # nobody moved it since, or a later step of the same episode
        elif stored is not None and stored.fired_at != rec.fired_at and rec.announced:
            conflicts.add(key)
            logger.warning(
                "alert {} was also announced by another instance while the database was away",
                alert_target(*key),
            )
    if applied:
        await upsert_records(conn, applied, spool.owner)
    transitions = [change_from(t) for t in spool.transitions]
    kept = [t for t in transitions if (t.rule, t.scope) not in conflicts]
    await insert_history(conn, kept, spool.owner)
    lost = {alert_target(*k) for k in conflicts}
    by_status: dict[str, list[SpooledItem]] = defaultdict(list)
    for spooled in spool.items.values():
        if spooled.status == "unsent" and spooled.item.alerts and set(spooled.item.alerts) <= lost:
            continue  # the other instance announced this episode its own way
        by_status[spooled.status].append(spooled)
    await enqueue(conn, [s.item for s in by_status["sent"]], delivered=True)
    await enqueue_dead(
        conn, [FailedItem(s.item, s.attempts, s.error, s.http_status) for s in by_status["dead"]]
    )
    await enqueue(conn, [s.item for s in by_status["unsent"]])
    return version
