"""Operator actions on alerts: acknowledge, silence, resend, test; each mutating one is one
transaction with its audit row."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import datetime
from typing import Any

import asyncpg

from core.alerting.models import ENGINE_NAME, AlertActionResult, HistoryEntry, Silence, alert_target
from core.alerting.store import (
    alert_for_update,
    cancel_silence,
    insert_silence,
    mark_acknowledged,
    read_history,
    read_silences,
)
from core.audit import write_audit
from core.clock import utcnow
from core.config import Config
from core.db import Database
from core.errors import ReadOnlyError
from core.leader import bump_version
from core.notify.base import AlertInfo, Notification, Notifier, epoch_ms
from core.notify.outbox import OutboxEntry, OutboxItem, enqueue, items_for, list_outbox, requeue
from core.notify.registry import destinations, notifiers_for
from core.rules import FIRING, PENDING

__all__ = ["AlertActions"]


class AlertActions:
    """Operator actions on alerts; each mutating one is one transaction with its audit row."""

    def __init__(
        self,
        db: Database,
        config: Config | None = None,
        *,
        actor: str,
        read_only: bool = False,
        instance_id: str | None = None,
        notifiers: Mapping[str, Notifier] | None = None,
    ) -> None:
        self.db = db
        self.config = config
        self.actor = actor
        self.read_only = read_only
        self.instance_id = instance_id or f"actions-{uuid.uuid4().hex[:8]}"
        self._notifiers = notifiers_for(config, notifiers)
        self._targets = destinations(self._notifiers)

    def _writable(self, what: str) -> None:
        if self.read_only:
            raise ReadOnlyError(f"read-only mode: cannot {what}")

    async def _audit(
        self, conn: asyncpg.Connection, action: str, target_kind: str, outcome: str, **what: Any
    ) -> None:
        await write_audit(
            conn, actor=self.actor, action=action, target_kind=target_kind, outcome=outcome, **what
        )

    def stranded(self, entry: OutboxEntry) -> bool:
        """A pending or dead row queued for a destination this configuration does not have for its
        route (a webhook URL changed since): no instance with this configuration will send it."""
        if entry.status not in ("pending", "dead") or entry.target is None:
            return False
        return self._targets.get(entry.route) != entry.target

    async def acknowledge(self, rule: str, scope: str = "") -> AlertActionResult:
        """Stop repeats of a pending or firing alert until it resolves; an announced one is also
        acknowledged in channels that have the notion (PagerDuty), in the same transaction."""
        self._writable("acknowledge alerts")
        target = alert_target(rule, scope)
        queued = 0
        async with self.db.transaction() as conn:
            await bump_version(conn, ENGINE_NAME)
            row = await alert_for_update(conn, rule, scope)
            if row is None or row["state"] not in (PENDING, FIRING):
                state = "not active" if row is None else row["state"]
                result = AlertActionResult("skipped", f"{target} is {state}; nothing to acknowledge", target)
            elif row["acknowledged_by"] is not None:
                result = AlertActionResult(
                    "skipped", f"{target} is already acknowledged by {row['acknowledged_by']}", target
                )
            else:
                await mark_acknowledged(conn, rule, scope, self.actor)
                if row["state"] == FIRING and row["last_notified_at"] is not None:
                    queued = len(await enqueue(conn, self._acknowledgement(rule, scope, row)))
                result = AlertActionResult("applied", f"acknowledged {target}", target)
            await self._audit(
                conn, "alert.ack", "alert", result.outcome, target_key=target,
                detail={"state": None if row is None else row["state"], "notifications": queued},
            )  # fmt: skip
        return result

    def _acknowledgement(self, rule: str, scope: str, row: asyncpg.Record) -> list[OutboxItem]:
        spec = next((r for r in self.config.alerts.rules if r.name == rule), None) if self.config else None
        fired_at: datetime | None = row["fired_at"]
        severity = row["severity"] or "warning"
        metric = spec.metric if spec is not None else ""
        alert = AlertInfo(rule, scope, severity, metric, None, "", "", "", None, None, fired_at)
        episode = epoch_ms(fired_at) if fired_at is not None else 0
        notification = Notification(
            "acknowledged", severity, (alert,), f"ack:{rule}/{scope}:{episode}", utcnow(), note=self.actor
        )
        return items_for(notification, self._notifiers)

    async def silence(self, rule: str | None, scope: str | None, duration_s: float, reason: str) -> Silence:
        """Hold back announcements matching ``rule`` and/or ``scope`` (None: any) for ``duration_s``."""
        self._writable("create silences")
        reason = reason.strip()
        if not reason:
            raise ValueError("a silence needs a reason")
        if not duration_s > 0:
            raise ValueError("the silence duration must be positive")
        rule = rule or None
        scope = scope or None
        if rule is None and scope is None:
            raise ValueError("a silence needs a rule or a scope (or both)")
        if (
            self.config is not None
            and rule is not None
            and rule not in {r.name for r in self.config.alerts.rules}
        ):
            raise ValueError(f"unknown rule {rule!r}")
        async with self.db.transaction() as conn:
            await bump_version(conn, ENGINE_NAME)
            silence = await insert_silence(conn, rule, scope, duration_s, reason, self.actor)
            await self._audit(
                conn, "silence.create", "silence", "applied", target_ids=[silence.id],
                target_key=alert_target(rule or "*", scope or ""), reason=reason,
                detail={"duration_s": duration_s, "ends_at": silence.ends_at.isoformat()},
            )  # fmt: skip
        return silence

    async def unsilence(self, silence_id: int) -> AlertActionResult:
        self._writable("cancel silences")
        target = f"silence #{silence_id}"
        async with self.db.transaction() as conn:
            await bump_version(conn, ENGINE_NAME)
            if await cancel_silence(conn, silence_id, self.actor):
                result = AlertActionResult("applied", f"cancelled {target}", target, silence_id)
            else:
                result = AlertActionResult("skipped", f"{target} is not active", target, silence_id)
            await self._audit(conn, "silence.cancel", "silence", result.outcome, target_ids=[silence_id])
        return result

    async def resend(self, outbox_id: int, *, retarget: bool = False) -> AlertActionResult:
        """Re-queue a dead-lettered notification (attempts start again); with ``retarget`` also a
        pending one, and either goes to its route's current destination (see :func:`requeue`)."""
        self._writable("resend notifications")
        target = f"notification #{outbox_id}"
        async with self.db.transaction() as conn:
            found = await requeue(conn, outbox_id, retarget=retarget)
            if found is None:
                raise ValueError(f"no notification #{outbox_id} in the outbox")
            previous, fingerprint = found
            if previous == "dead" or (retarget and previous == "pending"):
                where = " to the route's current destination" if retarget else ""
                result = AlertActionResult("applied", f"re-queued {target}{where}", target, outbox_id)
            else:
                wanted = "pending or dead" if retarget else "dead"
                result = AlertActionResult(
                    "skipped", f"{target} is {previous}, not {wanted}", target, outbox_id
                )
            detail: dict[str, object] = {"from": previous}
            if retarget:
                detail |= {"retarget": True, "previous_target": fingerprint}
            await self._audit(
                conn,
                "notification.resend",
                "notification",
                result.outcome,
                target_ids=[outbox_id],
                detail=detail,
            )
        return result

    async def send_test(self, severity: str) -> tuple[int, ...]:
        """Queue a test message for every route that takes ``severity``; returns the outbox ids."""
        self._writable("send test notifications")
        if severity not in ("critical", "warning", "info"):
            raise ValueError(f"unknown severity {severity!r} (critical, warning or info)")
        now = utcnow()
        note = (
            f"Test message sent by {self.actor} at {now.strftime('%Y-%m-%d %H:%M:%S UTC')}. "
            f"If you can read this, {severity} alerts from opswatch reach this channel."
        )
        notification = Notification("test", severity, (), f"test:{uuid.uuid4().hex}", now, note=note)
        items = items_for(notification, self._notifiers)
        async with self.db.transaction() as conn:
            ids = await enqueue(conn, items)
            await self._audit(
                conn, "alert.test", "notification", "applied" if ids else "skipped", target_ids=ids,
                target_key=severity, detail={"routes": [i.route for i in items]},
            )  # fmt: skip
        return tuple(ids)

    async def history(
        self, limit: int = 100, *, rule: str | None = None, scope: str | None = None
    ) -> list[HistoryEntry]:
        async with self.db.acquire() as conn:
            return await read_history(conn, limit, rule, scope)

    async def outbox(self, status: str | None = None, limit: int = 100) -> list[OutboxEntry]:
        return await list_outbox(self.db, status, limit)

    async def silences(self, active_only: bool = True) -> list[Silence]:
        async with self.db.acquire() as conn:
            return await read_silences(conn, active_only)
