"""The alert engine: rules -> persisted alert state -> notifications in the outbox.

Every evaluation feeds the metric samples through :mod:`core.rules`, then decides what
people are told: alerts that start within ``group_wait`` of each other go out as one
message per severity; an alert whose ``depends_on`` rule is active on the same scope,
service or globally is held back (never its resolved message once it was announced);
silences hold new announcements; acknowledgements stop repeats; a flapping alert gets one
FLAPPING message and then nothing until it settles.

Several instances may share one database. One of them evaluates (a lease in
``opswatch.alert_leader``); it writes state, history and outbox rows in one transaction,
after checking under a row lock that it still holds the lease and that nobody changed the
shared state meanwhile (otherwise it reloads and decides again). The others reload when
the state version moves. Outbox dedup keys are deterministic, so even two writers could
not queue a notification twice.
"""

from __future__ import annotations

import hashlib
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
from loguru import logger

from core.audit import write_audit
from core.config import AlertRule, Config
from core.db import Database, DatabaseUnavailable
from core.errors import ReadOnlyError
from core.leader import LeaderLease, bump_version
from core.notify.base import AlertInfo, Notification, Notifier, epoch_ms
from core.notify.offline import OfflineEntry, OfflineOutbox
from core.notify.outbox import (
    FailedItem,
    OutboxEntry,
    OutboxItem,
    enqueue,
    enqueue_dead,
    items_for,
    list_outbox,
    requeue,
)
from core.notify.registry import build_notifiers, destinations
from core.notify.render import describe
from core.rules import (
    FIRING,
    OK,
    PENDING,
    RESOLVED,
    AlertRecord,
    Step,
    advance,
    format_threshold,
    format_value,
    metric_unit,
    settle,
    severity_for,
)
from core.safe_text import display_text
from core.snapshot import AlertView, Severity
from core.spool import (
    Spool,
    SpooledItem,
    SpoolFile,
    fingerprint,
    item_json,
    read_spools,
    record_json,
    remove,
)

__all__ = [
    "ENGINE_NAME",
    "ActionResult",
    "AlertActions",
    "AlertEngine",
    "HistoryEntry",
    "MetricSample",
    "Silence",
    "Transition",
]

ENGINE_NAME = "alerting"
_CLOCK_SKEW = timedelta(seconds=30)
Key = tuple[str, str]
Clock = Callable[[], datetime]


def _utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class MetricSample:
    metric: str
    scope: str  # endpoint name, "" for global metrics
    value: float | None  # None: no data, the alert keeps its state


@dataclass(frozen=True, slots=True)
class Transition:
    rule: str
    scope: str
    from_state: str
    to_state: str
    severity: str | None
    value: float | None
    at: datetime


@dataclass(frozen=True)
class Silence:
    id: int
    rule: str | None  # None: any rule
    scope: str | None  # None: any scope
    starts_at: datetime
    ends_at: datetime
    reason: str
    created_by: str
    created_at: datetime
    cancelled_at: datetime | None = None
    cancelled_by: str | None = None

    def active(self, now: datetime) -> bool:
        """``starts_at`` comes from the database clock: allow for skew against this host's clock."""
        return self.cancelled_at is None and self.starts_at - _CLOCK_SKEW <= now < self.ends_at

    def matches(self, rule: str, scope: str) -> bool:
        return (self.rule is None or self.rule == rule) and (self.scope is None or self.scope == scope)


@dataclass(frozen=True)
class HistoryEntry:
    id: int
    at: datetime
    rule: str
    scope: str
    from_state: str
    to_state: str
    severity: str | None
    value: float | None
    instance: str | None


@dataclass(frozen=True)
class ActionResult:
    outcome: str  # applied | skipped
    message: str
    target: str
    id: int | None = None


# --------------------------------------------------------------------------- planning


@dataclass
class _Flags:
    moved: list[tuple[str, str]] = field(default_factory=list)
    escalated_from: str | None = None
    flapping_started: bool = False
    flapping_ended: bool = False
    retired: bool = False  # its rule was removed from the configuration

    def add(self, step: Step) -> None:
        if step.moved:
            self.moved.append(step.moved)
        self.escalated_from = step.escalated_from or self.escalated_from
        self.flapping_started |= step.flapping_started
        self.flapping_ended |= step.flapping_ended

    @property
    def resolved(self) -> bool:
        return self.retired or any(to == RESOLVED for _, to in self.moved)


@dataclass
class _Plan:
    records: dict[Key, AlertRecord]
    changed: set[Key] = field(default_factory=set)
    transitions: list[Transition] = field(default_factory=list)
    notifications: list[Notification] = field(default_factory=list)


def _member(rec: AlertRecord) -> str:
    return f"{rec.rule}/{rec.scope}/{epoch_ms(rec.fired_at) if rec.fired_at else 0}"


def _digest(parts: Iterable[str]) -> str:
    return hashlib.sha256("\n".join(sorted(parts)).encode()).hexdigest()[:20]


class _Planner:
    """Pure decisions for one evaluation: state steps, suppression, silences, notifications."""

    def __init__(self, config: Config) -> None:
        alerts = config.alerts
        self.rules: dict[str, AlertRule] = {r.name: r for r in alerts.rules}
        self.flap = alerts.flapping
        self.group_wait = alerts.group_wait
        self.repeat_interval = alerts.repeat_interval
        self.services = {e.name: e.service for e in config.endpoints}
        self.units = {m.name: m.unit for m in config.metrics}

    def values_for(self, samples: Iterable[MetricSample]) -> dict[Key, float]:
        by_metric: dict[str, dict[str, float]] = defaultdict(dict)
        for s in samples:
            if s.value is not None:
                by_metric[s.metric][s.scope] = float(s.value)
        values: dict[Key, float] = {}
        for rule in self.rules.values():
            scoped = by_metric.get(rule.metric)
            if not scoped:
                continue
            if rule.scope in (None, "*"):
                for scope, value in scoped.items():
                    values[(rule.name, scope)] = value
            elif rule.scope in scoped:
                values[(rule.name, rule.scope)] = scoped[rule.scope]
        return values

    def unit(self, rule: AlertRule) -> str:
        return metric_unit(rule.metric, self.units)

    def info(self, rec: AlertRecord, value: float | None, previous: str | None = None) -> AlertInfo:
        rule = self.rules.get(rec.rule)
        severity = rec.severity or rec.notified_severity or "warning"
        shown = value if value is not None else rec.value
        if rule is None:
            return AlertInfo(
                rec.rule,
                rec.scope,
                severity,
                "",
                shown,
                format_value(shown, ""),
                "",
                "rule removed from the configuration",
                None,
                rec.started_at,
                rec.fired_at,
                rec.resolved_at,
                previous,
                len(rec.transitions),
            )
        unit = self.unit(rule)
        return AlertInfo(
            rule=rec.rule,
            scope=rec.scope,
            severity=severity,
            metric=rule.metric,
            value=shown,
            value_text=format_value(shown, unit, rule.metric),
            threshold_text=format_threshold(rule, severity, unit),
            description=rule.description,
            runbook=rule.runbook,
            started_at=rec.started_at,
            fired_at=rec.fired_at,
            resolved_at=rec.resolved_at,
            previous_severity=previous,
            transitions=len(rec.transitions),
        )

    def _orphaned(self, rec: AlertRecord) -> bool:
        """Its rule, or the endpoint it watches, is no longer in the configuration."""
        rule = self.rules.get(rec.rule)
        if rule is None:
            return True
        return bool(rec.scope) and rule.metric.startswith("endpoint.") and rec.scope not in self.services

    def suppressor(self, rule: AlertRule, scope: str, active: Mapping[str, list[str]]) -> str | None:
        service = self.services.get(scope)
        for dep in rule.depends_on:
            for other in active.get(dep, ()):
                if other == scope or other == "" or scope == "":
                    return dep
                if service is not None and self.services.get(other) == service:
                    return dep
        return None

    def plan(
        self,
        records: Mapping[Key, AlertRecord],
        silences: tuple[Silence, ...],
        values: Mapping[Key, float],
        now: datetime,
    ) -> _Plan:
        plan = _Plan(dict(records))
        recs = plan.records
        flags: dict[Key, _Flags] = {}

        def apply(key: Key, old: AlertRecord, step: Step) -> None:
            if step.record is old and not step.moved:
                return
            recs[key] = step.record
            plan.changed.add(key)
            flags.setdefault(key, _Flags()).add(step)
            if step.moved:
                r = step.record
                plan.transitions.append(
                    Transition(r.rule, r.scope, *step.moved, r.severity, values.get(key), now)
                )

        for key, value in values.items():
            rule = self.rules[key[0]]
            old = recs.get(key)
            if old is None:
                if severity_for(rule, value) is None:
                    continue
                old = AlertRecord(key[0], key[1], since=now)
            apply(key, old, advance(old, rule, value, now, self.flap))

        for key, rec in list(recs.items()):
            if self._orphaned(rec) and (rec.state != OK or rec.announced):
                gone = replace(rec, state=OK, since=now, flapping=False, eligible_since=None, resolved_at=now)
                apply(key, rec, Step(gone, (rec.state, OK)))
                flags[key].retired = True
            elif rec.flapping or rec.state == RESOLVED:
                apply(key, rec, settle(rec, now, self.flap))

        self._decide(plan, flags, silences, values, now)
        return plan

    def _decide(
        self,
        plan: _Plan,
        flags: dict[Key, _Flags],
        silences: tuple[Silence, ...],
        values: Mapping[Key, float],
        now: datetime,
    ) -> None:
        recs = plan.records
        live = [s for s in silences if s.active(now)]
        active: dict[str, list[str]] = defaultdict(list)
        for rec in recs.values():
            if rec.state in (PENDING, FIRING):
                active[rec.rule].append(rec.scope)
        resolved: dict[str, list[AlertInfo]] = defaultdict(list)
        repeats: dict[str, list[tuple[AlertInfo, int]]] = defaultdict(list)
        singles: list[Notification] = []
        repeat_due = timedelta(seconds=self.repeat_interval)

        for key, rec in list(recs.items()):
            f = flags.get(key)
            if rec.state == OK and not (
                rec.announced or rec.flapping or rec.silenced or rec.suppressed_by or rec.eligible_since or f
            ):
                continue
            rule = self.rules.get(rec.rule)
            silenced = any(s.matches(rec.rule, rec.scope) for s in live)
            suppressor = (
                self.suppressor(rule, rec.scope, active) if rule and rec.state in (PENDING, FIRING) else None
            )
            upd: dict[str, Any] = {}
            if silenced != rec.silenced:
                upd["silenced"] = silenced
            if suppressor != rec.suppressed_by:
                upd["suppressed_by"] = suppressor
            announced = rec.announced
            value = values.get(key)

            if f and f.flapping_started:
                if not silenced:
                    key_ = f"flapping:{rec.rule}/{rec.scope}/{epoch_ms(rec.flapping_since or now)}"
                    singles.append(self._single("flapping", rec, value, now, key=key_))
                    announced = True
                    upd.update(announced=True, notified_severity=rec.severity, last_notified_at=now)
            elif f and f.resolved and not rec.flapping:
                if announced:
                    severity = rec.notified_severity or rec.severity or "warning"
                    resolved[severity].append(self.info(rec, value))
                    announced = False
                    upd.update(announced=False, notified_severity=None, last_notified_at=now)
            if f and f.flapping_ended:
                if rec.state == FIRING:
                    announced = False
                    upd["announced"] = False
                elif announced:
                    severity = rec.notified_severity or rec.severity or "warning"
                    resolved[severity].append(self.info(rec, value))
                    announced = False
                    upd.update(announced=False, notified_severity=None, last_notified_at=now)

            if rec.state == FIRING and not rec.flapping:
                if not announced:
                    eligible = None if silenced or suppressor else (rec.eligible_since or now)
                    if eligible != rec.eligible_since:
                        upd["eligible_since"] = eligible
                elif f and f.escalated_from and not silenced:
                    key_ = f"escalated:{_member(rec)}:{rec.severity}"
                    singles.append(
                        self._single("escalated", rec, value, now, key=key_, previous=f.escalated_from)
                    )
                    upd.update(notified_severity=rec.severity, last_notified_at=now)
                elif (
                    not rec.acknowledged_by
                    and not silenced
                    and not suppressor
                    and rec.last_notified_at is not None
                    and now - rec.last_notified_at >= repeat_due
                ):
                    count = rec.repeat_count + 1
                    repeats[rec.severity or "warning"].append((self.info(rec, value), count))
                    upd.update(repeat_count=count, last_notified_at=now)
            elif rec.eligible_since is not None:
                upd["eligible_since"] = None

            if upd:
                recs[key] = replace(rec, **upd)
                plan.changed.add(key)

        plan.notifications.extend(self._batched("resolved", resolved, now))
        plan.notifications.extend(singles)
        plan.notifications.extend(self._flush_groups(plan, values, now))
        for severity, items in repeats.items():
            infos = tuple(i for i, _ in items)
            members = [f"{a.incident_key}:{n}" for a, n in items]
            nkey = f"repeat:{members[0]}" if len(items) == 1 else f"repeat:{severity}:{_digest(members)}"
            plan.notifications.append(Notification("repeat", severity, infos, nkey, now))

    def _single(
        self,
        kind: str,
        rec: AlertRecord,
        value: float | None,
        now: datetime,
        *,
        key: str,
        previous: str | None = None,
    ) -> Notification:
        info = self.info(rec, value, previous)
        return Notification(
            kind, rec.severity or "warning", (info,), key, now, flapping_window_s=self.flap.window
        )

    def _batched(self, kind: str, batch: Mapping[str, list[AlertInfo]], now: datetime) -> list[Notification]:
        out = []
        for severity, infos in batch.items():
            members = [a.incident_key for a in infos]
            key = f"{kind}:{members[0]}" if len(infos) == 1 else f"{kind}:{severity}:{_digest(members)}"
            out.append(Notification(kind, severity, tuple(infos), key, now))
        return out

    def _flush_groups(self, plan: _Plan, values: Mapping[Key, float], now: datetime) -> list[Notification]:
        waiting: dict[str, list[AlertRecord]] = defaultdict(list)
        for rec in plan.records.values():
            if rec.eligible_since is not None and rec.state == FIRING and not rec.announced:
                waiting[rec.severity or "warning"].append(rec)
        out = []
        for severity, members in sorted(waiting.items()):
            first = min(r.eligible_since for r in members if r.eligible_since is not None)
            if (now - first).total_seconds() < self.group_wait:
                continue
            members.sort(key=lambda r: (r.fired_at or now, r.rule, r.scope))
            infos = tuple(self.info(r, values.get(r.key)) for r in members)
            ids = [_member(r) for r in members]
            kind = "firing" if len(members) == 1 else "grouped"
            key = f"firing:{ids[0]}" if len(members) == 1 else f"grouped:{severity}:{_digest(ids)}"
            out.append(Notification("firing", severity, infos, key, now))
            logger.debug("announcing {} {} alert(s) as {}", len(members), severity, kind)
            for r in members:
                plan.records[r.key] = replace(
                    r,
                    announced=True,
                    notified_severity=severity,
                    last_notified_at=now,
                    eligible_since=None,
                    repeat_count=0,
                )
                plan.changed.add(r.key)
        return out


# --------------------------------------------------------------------------- persistence

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


def _record_args(rec: AlertRecord, instance: str) -> tuple[Any, ...]:
    return (
        rec.rule,
        rec.scope,
        rec.state,
        rec.severity,
        rec.value,
        rec.threshold,
        rec.since,
        rec.started_at,
        rec.fired_at,
        rec.resolved_at,
        rec.last_notified_at,
        rec.acknowledged_by,
        rec.acknowledged_at,
        rec.announced,
        rec.notified_severity,
        rec.eligible_since,
        list(rec.transitions),
        rec.flapping,
        rec.flapping_since,
        rec.good_samples,
        rec.repeat_count,
        rec.silenced,
        rec.suppressed_by,
        instance,
    )


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


_SILENCE_COLUMNS = (
    "id, rule, scope, starts_at, ends_at, reason, created_by, created_at, cancelled_at, cancelled_by"
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


async def _read_state(
    conn: asyncpg.Connection, now: datetime
) -> tuple[dict[Key, AlertRecord], tuple[Silence, ...]]:
    rows = await conn.fetch(f"SELECT {_STATE_COLUMNS} FROM opswatch.alert_state")
    silences = await conn.fetch(
        f"SELECT {_SILENCE_COLUMNS} FROM opswatch.silences"
        " WHERE cancelled_at IS NULL AND ends_at > $1 ORDER BY id",
        now,
    )
    records = {(r["rule"], r["scope"]): _record(r) for r in rows}
    return records, tuple(_silence(s) for s in silences)


class _LeaseLost(Exception):
    pass


async def _insert_history(conn: asyncpg.Connection, transitions: Iterable[Transition], instance: str) -> None:
    rows = [
        (t.at, t.rule, t.scope, t.from_state, t.to_state, t.severity, t.value, instance,
         _history_key(t.rule, t.scope, t.from_state, t.to_state, t.at))
        for t in transitions
    ]  # fmt: skip
    if rows:
        await conn.executemany(
            """INSERT INTO opswatch.alert_history
                   (at, rule, scope, from_state, to_state, severity, value, instance, dedup_key)
               VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT (dedup_key) DO NOTHING""",
            rows,
        )


# --------------------------------------------------------------------------- engine

_STATE_ORDER = {"firing": 0, "flapping": 1, "pending": 2, "resolved": 3}
_REACHABILITY_METRICS = frozenset({"db.unreachable", "db.down_for"})


_UNKNOWN_BEFORE = "?"  # decided by an agent that started during the outage: state before unknown


def _history_key(rule: str, scope: str, from_state: str, to_state: str, at: datetime) -> str:
    return f"{rule}/{scope}/{from_state}>{to_state}/{epoch_ms(at)}"


def _transition_line(t: Transition) -> dict[str, Any]:
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


def _transition_from(line: Mapping[str, Any]) -> Transition:
    return Transition(
        str(line["rule"]),
        str(line["scope"]),
        str(line["from_state"]),
        str(line["to_state"]),
        line.get("severity"),
        line.get("value"),
        datetime.fromisoformat(str(line["at"])),
    )


def _unchanged(current: AlertRecord | None, before: Any) -> bool:
    """The stored row is still what the offline decider started from."""
    if before == _UNKNOWN_BEFORE:
        return current is None or (current.state in (OK, RESOLVED) and not current.announced)
    return bool(fingerprint(current) == before)


class AlertEngine:
    """Evaluates rules; persists transitions and notifications; serves :meth:`active` views."""

    def __init__(
        self,
        db: Database,
        config: Config,
        *,
        instance_id: str,
        clock: Clock = _utcnow,
        notifiers: Mapping[str, Notifier] | None = None,
        on_enqueued: Callable[[], None] | None = None,
        announce_unreachable_at_start: bool = False,
        spool_dir: Path | None = None,
    ) -> None:
        """``announce_unreachable_at_start``: this instance is the designated agent (``opswatch run``)
        and announces a database it could never reach, directly (see :meth:`evaluate`).
        ``spool_dir``: where decisions made without the database are recorded durably and shared
        with the other instances of this host (:mod:`core.spool`); None keeps them in memory only."""
        self.db = db
        self.config = config
        self.announce_unreachable_at_start = announce_unreachable_at_start
        self._reachability_rules = frozenset(
            r.name for r in config.alerts.rules if r.metric in _REACHABILITY_METRICS
        )
        self.instance_id = instance_id
        self.clock = clock
        self.on_enqueued = on_enqueued
        self._planner = _Planner(config)
        self._notifiers = dict(notifiers) if notifiers is not None else build_notifiers(config)
        interval = config.alerts.evaluation_interval
        self.lease = LeaderLease(
            db, ENGINE_NAME, instance_id, ttl_s=1.5 * interval, check_every_s=0.25 * interval
        )
        self._records: dict[Key, AlertRecord] = {}
        self._silences: tuple[Silence, ...] = ()
        self._values: dict[Key, float] = {}
        self._version = -1
        self._loaded = False
        self._pending = 0
        self.spool = Spool(spool_dir, instance_id) if spool_dir is not None else None
        self.offline = OfflineOutbox(
            journal=self._journal if self.spool is not None else None,
            direct=lambda: db.down_since is not None,
        )
        self._offline_changed: set[Key] = set()
        self._offline_transitions: list[Transition] = []
        self._before: dict[Key, Any] = {}  # fingerprint of each alert when the offline stretch began
        self._outage = False  # a database call failed since other instances' spools were replayed
        self._offline_noted = False  # "evaluating in memory" was logged for this outage

    @property
    def is_leader(self) -> bool:
        return self.lease.status.leader

    @property
    def degraded(self) -> bool:
        """True while decisions made without the database are not stored yet (notified directly)."""
        return bool(self._offline_changed or self.offline)

    def has_pending(self) -> bool:
        """True while an alert is pending or waiting for group_wait (evaluate often then)."""
        return self._pending > 0

    def pending_scopes(self) -> set[str]:
        """Scopes of alerts that are pending or waiting for group_wait: re-evaluated on every tick."""
        if not self._pending:
            return set()
        return {r.scope for r in self._records.values() if r.state == PENDING or r.eligible_since is not None}

    async def load(self) -> None:
        """Merge what other instances of this host decided offline, then read the shared state
        (restart reconciliation happens on the next evaluation)."""
        await self._replay_others(self.clock())
        status = await self.lease.tick(force=True)
        await self._reload(self.clock(), status.version)
        self._loaded = True

    async def sync(self) -> None:
        """Check the lease and reload shared state now if it changed (e.g. after an operator action)."""
        status = await self.lease.tick(force=True)
        if status.version != self._version or status.acquired:
            await self._reload(self.clock(), status.version)

    async def close(self) -> None:
        """Hand the evaluation lease over at once (clean shutdown)."""
        if self.spool is not None:
            self.spool.close()
        if self.lease.status.leader:
            await self.lease.release()

    async def _reload(self, now: datetime, version: int) -> None:
        async with self.db.acquire() as conn:
            records, silences = await _read_state(conn, now)
        self._adopt(records, silences, version)

    def _adopt(self, records: dict[Key, AlertRecord], silences: tuple[Silence, ...], version: int) -> None:
        self._records = records
        self._silences = silences
        self._version = version
        self.lease.seen(version)
        self._count_pending()

    def _count_pending(self) -> None:
        self._pending = sum(
            1 for r in self._records.values() if r.state == PENDING or r.eligible_since is not None
        )

    async def evaluate(self, samples: Iterable[MetricSample], now: datetime) -> list[Transition]:
        values = self._planner.values_for(samples)
        self._values.update(values)
        try:
            if not self._loaded:
                decided_offline = {k: self._records[k] for k in self._offline_changed}
                await self.load()
                # started during an outage and announced it: what was decided since is newer
                # than anything stored before the outage, so the resolved message follows
                for key in decided_offline:
                    if self._before.get(key) == _UNKNOWN_BEFORE:
                        self._before[key] = fingerprint(self._records.get(key))
                self._records.update(decided_offline)
                self._count_pending()
            elif self._outage:
                # before deciding anything after an outage: another instance of this host may have
                # evaluated (and notified) meanwhile and be paused or gone; its decisions are merged
                await self._replay_others(now)
            status = await self.lease.tick()
            self._offline_noted = self.degraded  # reachable: the next outage is logged again
            if self.degraded:
                return await self._recover(status.leader, status.version, values, now)
            if status.version != self._version or status.acquired:
                await self._reload(now, status.version)
            if not status.leader:
                return []
            plan = self._planner.plan(self._records, self._silences, values, now)
            if not plan.changed:
                return []
            return await self._commit(plan, values, now)
        except DatabaseUnavailable:
            self._outage = True
            if self._loaded and self.lease.status.leader:
                return self._evaluate_offline(values, now)
            if not self._loaded and self.announce_unreachable_at_start:
                # Nobody can have been evaluating (no state, no lease): only the database's own
                # reachability rules are decided, so no endpoint alert is announced twice; what a
                # predecessor on this host decided before a restart is known from its spool.
                reachability = {k: v for k, v in values.items() if k[0] in self._reachability_rules}
                if not self._offline_noted:
                    self._seed_from_spools()
                return self._evaluate_offline(reachability, now)
            raise

    def _evaluate_offline(self, values: Mapping[Key, float], now: datetime) -> list[Transition]:
        """The database is unreachable and this instance decides: in memory, sent directly."""
        if not self._offline_noted:
            self._offline_noted = True
            logger.warning("database unreachable: evaluating alerts in memory, notifying directly")
        plan = self._planner.plan(self._records, self._silences, values, now)
        if not plan.changed:
            return []
        items = [item for n in plan.notifications for item in items_for(n, self._notifiers)]
        lines: list[dict[str, Any]] = []
        for key in sorted(plan.changed):
            if key not in self._before:
                self._before[key] = (
                    _UNKNOWN_BEFORE if not self._loaded else fingerprint(self._records.get(key))
                )
            lines.append(self._alert_line(key, plan.records[key]))
        lines.extend(_transition_line(t) for t in plan.transitions)
        lines.extend({"type": "item", "item": item_json(i)} for i in items)
        if self.spool is not None:
            self.spool.write(lines)  # durable before anything is sent
        self._records = plan.records
        self._count_pending()
        self._offline_changed |= plan.changed
        self._offline_transitions.extend(plan.transitions)
        if items:
            self.offline.put(items)
            if self.on_enqueued is not None:
                self.on_enqueued()
        return plan.transitions

    def _alert_line(self, key: Key, rec: AlertRecord) -> dict[str, Any]:
        return {
            "type": "alert",
            "rule": key[0],
            "scope": key[1],
            "before": self._before.get(key),
            "record": record_json(rec),
        }

    def _journal(self, entry: OfflineEntry) -> None:
        if self.spool is None:
            return
        self.spool.write([{
            "type": "sent" if entry.sent else "dead",
            "key": entry.item.dedup_key,
            "attempts": entry.attempts,
            "error": entry.last_error,
            "status": entry.last_status,
        }])  # fmt: skip

    def _seed_from_spools(self) -> None:
        """A restarted agent during an outage: take over what its predecessor on this host decided
        about the database's reachability (announced already: not again)."""
        if self.spool is None:
            return
        for other in read_spools(self.spool.directory, exclude=self.spool.path):
            for key, rec in other.records.items():
                if key[0] in self._reachability_rules:
                    self._records[key] = rec
                    self._before[key] = other.before.get(key, _UNKNOWN_BEFORE)
                    self._offline_changed.add(key)
        if self._offline_changed:
            self.spool.write(self._alert_line(k, self._records[k]) for k in sorted(self._offline_changed))
            self._count_pending()

    async def _replay_others(self, now: datetime) -> None:
        """Merge the spools of the other instances of this host (see :meth:`_merge`)."""
        self._outage = False
        if self.spool is None:
            return
        for other in read_spools(self.spool.directory, exclude=self.spool.path):
            if not other.empty:
                async with self.db.transaction() as conn:
                    await self._merge(conn, other, now)
                logger.info(
                    "merged what {} decided while the database was away ({} alert(s), {} notification(s))",
                    other.owner,
                    len(other.records),
                    len(other.items),
                )
            remove(other)

    async def _merge(self, conn: asyncpg.Connection, spool: SpoolFile, now: datetime) -> int:
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
        current, _silences = await _read_state(conn, now)
        applied: list[AlertRecord] = []
        conflicts: set[Key] = set()
        for key, rec in spool.records.items():
            stored = current.get(key)
            if _unchanged(stored, spool.before.get(key, _UNKNOWN_BEFORE)) or (
                stored is not None and stored.fired_at == rec.fired_at and rec.since > stored.since
            ):
                applied.append(rec)  # nobody moved it since, or a later step of the same episode
            elif stored is not None and stored.fired_at != rec.fired_at and rec.announced:
                conflicts.add(key)
                logger.warning(
                    "alert {} was also announced by another instance while the database was away",
                    _target(*key),
                )
        if applied:
            await conn.executemany(_UPSERT, [_record_args(r, spool.owner) for r in applied])
        transitions = [_transition_from(t) for t in spool.transitions]
        kept = [t for t in transitions if (t.rule, t.scope) not in conflicts]
        await _insert_history(conn, kept, spool.owner)
        lost = {_target(*k) for k in conflicts}
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

    async def _recover(
        self, leader: bool, version: int, values: Mapping[Key, float], now: datetime
    ) -> list[Transition]:
        """The database is back after an offline stretch: merge what was decided and sent meanwhile
        into the shared state (never discard it), then evaluate as usual."""
        adopted = self.offline.adopt()
        own = SpoolFile(Path(), self.instance_id, True)
        for key in self._offline_changed:
            own.before[key] = self._before.get(key, _UNKNOWN_BEFORE)
            own.records[key] = self._records[key]
        own.transitions = [_transition_line(t) for t in self._offline_transitions]
        for entry in adopted.all:
            status = "sent" if entry.sent else "dead" if entry.dead else "unsent"
            own.items[entry.item.dedup_key] = SpooledItem(
                entry.item, status, entry.attempts, entry.last_error, entry.last_status
            )
        try:
            async with self.db.transaction() as conn:
                version = await self._merge(conn, own, now)
                records, silences = await _read_state(conn, now)
        except BaseException:
            self.offline.release(adopted.all, stored=False)
            raise
        self.offline.release(adopted.all, stored=True)
        if self.spool is not None and not self.offline:
            self.spool.clear()
        self._offline_changed.clear()
        self._offline_transitions.clear()
        self._before.clear()
        self._offline_noted = False
        self._adopt(records, silences, version)
        logger.info("database is back: alert state and directly sent notifications stored")
        if self.on_enqueued is not None:
            self.on_enqueued()
        if not leader:
            return []
        plan = self._planner.plan(self._records, self._silences, values, now)
        if not plan.changed:
            return []
        return await self._commit(plan, values, now)

    async def _commit(self, plan: _Plan, values: Mapping[Key, float], now: datetime) -> list[Transition]:
        silences = self._silences
        try:
            async with self.db.transaction() as conn:
                mine, version = await self.lease.check_in(conn)
                if not mine:
                    raise _LeaseLost
                if version != self._version:
                    records, silences = await _read_state(conn, now)
                    plan = self._planner.plan(records, silences, values, now)
                if plan.changed:
                    await self._write(conn, plan)
                    version = int(
                        await conn.fetchval(
                            "UPDATE opswatch.alert_leader SET version = version + 1"
                            " WHERE name = $1 RETURNING version",
                            ENGINE_NAME,
                        )
                    )
        except _LeaseLost:
            logger.info(
                "alert evaluation lease lost; following {}", self.lease.status.holder or "another instance"
            )
            self.lease.lost()
            await self._reload(now, (await self.lease.tick(force=True)).version)
            return []
        self._adopt(plan.records, silences, version)
        if plan.notifications and self.on_enqueued is not None:
            self.on_enqueued()
        return plan.transitions

    async def _write(self, conn: asyncpg.Connection, plan: _Plan) -> None:
        """Store changed alerts, their transitions and notifications."""
        await conn.executemany(
            _UPSERT, [_record_args(plan.records[k], self.instance_id) for k in sorted(plan.changed)]
        )
        await _insert_history(conn, plan.transitions, self.instance_id)
        items = [item for n in plan.notifications for item in items_for(n, self._notifiers)]
        if items:
            ids = await enqueue(conn, items)
            what, fields = describe(plan.notifications)
            logger.bind(**fields).info(
                "queued {} notification(s) ({} new) for {} alert change(s): {}",
                len(items),
                len(ids),
                len(plan.notifications),
                what,
            )

    # -- views ---------------------------------------------------------------------------------

    def active(self) -> list[AlertView]:
        """Pending, firing, flapping and recently resolved alerts, worst first."""
        views: list[AlertView] = []
        for key, rec in self._records.items():
            if rec.state == OK and not rec.flapping:
                continue
            rule = self._planner.rules.get(rec.rule)
            if rule is None:
                continue
            unit = self._planner.unit(rule)
            value = self._values.get(key, rec.value)
            severity = rec.severity or rec.notified_severity or "warning"
            threshold = format_threshold(rule, severity, unit)
            summary = f"{rule.description or rule.name}: {format_value(value, unit, rule.metric)}"
            views.append(
                AlertView(
                    rule=rec.rule,
                    scope=rec.scope,
                    state="flapping" if rec.flapping else rec.state,
                    severity=Severity(severity),
                    value=value,
                    threshold=rec.threshold,
                    since=rec.since,
                    summary=f"{summary} (threshold {threshold})" if threshold else summary,
                    acknowledged_by=None
                    if rec.acknowledged_by is None
                    else display_text(rec.acknowledged_by, 100),
                    silenced=rec.silenced,
                    suppressed_by=rec.suppressed_by,
                )
            )
        views.sort(key=lambda v: (_STATE_ORDER.get(v.state, 9), -v.severity.rank, v.since, v.rule, v.scope))
        return views

    def silences(self, now: datetime | None = None) -> list[Silence]:
        moment = now or self.clock()
        return [s for s in self._silences if s.active(moment)]


# --------------------------------------------------------------------------- operator actions


def _target(rule: str, scope: str) -> str:
    return f"{rule}/{scope}" if scope else rule


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
        self._notifiers = (
            dict(notifiers)
            if notifiers is not None
            else (build_notifiers(config) if config is not None else {})
        )
        self._targets = destinations(self._notifiers)

    def _writable(self, what: str) -> None:
        if self.read_only:
            raise ReadOnlyError(f"read-only mode: cannot {what}")

    def stranded(self, entry: OutboxEntry) -> bool:
        """A pending or dead row queued for a destination this configuration does not have for its
        route (a webhook URL changed since): no instance with this configuration will send it."""
        if entry.status not in ("pending", "dead") or entry.target is None:
            return False
        return self._targets.get(entry.route) != entry.target

    async def acknowledge(self, rule: str, scope: str = "") -> ActionResult:
        """Stop repeats of a pending or firing alert until it resolves; an announced one is also
        acknowledged in channels that have the notion (PagerDuty), in the same transaction."""
        self._writable("acknowledge alerts")
        target = _target(rule, scope)
        queued = 0
        async with self.db.transaction() as conn:
            await bump_version(conn, ENGINE_NAME)
            row = await conn.fetchrow(
                "SELECT state, acknowledged_by, severity, fired_at, last_notified_at"
                " FROM opswatch.alert_state WHERE rule = $1 AND scope = $2 FOR UPDATE",
                rule,
                scope,
            )
            if row is None or row["state"] not in (PENDING, FIRING):
                state = "not active" if row is None else row["state"]
                result = ActionResult("skipped", f"{target} is {state}; nothing to acknowledge", target)
            elif row["acknowledged_by"] is not None:
                result = ActionResult(
                    "skipped", f"{target} is already acknowledged by {row['acknowledged_by']}", target
                )
            else:
                await conn.execute(
                    """UPDATE opswatch.alert_state
                       SET acknowledged_by = $3, acknowledged_at = clock_timestamp(),
                       updated_at = clock_timestamp() WHERE rule = $1 AND scope = $2""",
                    rule,
                    scope,
                    self.actor,
                )
                if row["state"] == FIRING and row["last_notified_at"] is not None:
                    queued = len(await enqueue(conn, self._acknowledgement(rule, scope, row)))
                result = ActionResult("applied", f"acknowledged {target}", target)
            await write_audit(
                conn,
                actor=self.actor,
                action="alert.ack",
                target_kind="alert",
                target_key=target,
                outcome=result.outcome,
                detail={"state": None if row is None else row["state"], "notifications": queued},
            )
        return result

    def _acknowledgement(self, rule: str, scope: str, row: asyncpg.Record) -> list[OutboxItem]:
        spec = next((r for r in self.config.alerts.rules if r.name == rule), None) if self.config else None
        fired_at: datetime | None = row["fired_at"]
        alert = AlertInfo(
            rule=rule,
            scope=scope,
            severity=row["severity"] or "warning",
            metric=spec.metric if spec is not None else "",
            value=None,
            value_text="",
            threshold_text="",
            description="",
            runbook=None,
            started_at=None,
            fired_at=fired_at,
        )
        episode = int(fired_at.timestamp() * 1000) if fired_at is not None else 0
        notification = Notification(
            "acknowledged", alert.severity, (alert,), f"ack:{rule}/{scope}:{episode}", datetime.now(UTC),
            note=self.actor,
        )  # fmt: skip
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
            row = await conn.fetchrow(
                f"""INSERT INTO opswatch.silences (rule, scope, starts_at, ends_at, reason, created_by)
                    VALUES ($1, $2, clock_timestamp(), clock_timestamp() + make_interval(secs => $3), $4, $5)
                    RETURNING {_SILENCE_COLUMNS}""",
                rule,
                scope,
                float(duration_s),
                reason,
                self.actor,
            )
            assert row is not None
            silence = _silence(row)
            await write_audit(
                conn,
                actor=self.actor,
                action="silence.create",
                target_kind="silence",
                target_ids=[silence.id],
                target_key=_target(rule or "*", scope or ""),
                reason=reason,
                outcome="applied",
                detail={"duration_s": duration_s, "ends_at": silence.ends_at.isoformat()},
            )
        return silence

    async def unsilence(self, silence_id: int) -> ActionResult:
        self._writable("cancel silences")
        target = f"silence #{silence_id}"
        async with self.db.transaction() as conn:
            await bump_version(conn, ENGINE_NAME)
            done = await conn.fetchval(
                """UPDATE opswatch.silences SET cancelled_at = clock_timestamp(), cancelled_by = $2
                   WHERE id = $1 AND cancelled_at IS NULL AND ends_at > clock_timestamp() RETURNING id""",
                silence_id,
                self.actor,
            )
            result = (
                ActionResult("applied", f"cancelled {target}", target, silence_id)
                if done is not None
                else ActionResult("skipped", f"{target} is not active", target, silence_id)
            )
            await write_audit(
                conn,
                actor=self.actor,
                action="silence.cancel",
                target_kind="silence",
                target_ids=[silence_id],
                outcome=result.outcome,
            )
        return result

    async def resend(self, outbox_id: int, *, retarget: bool = False) -> ActionResult:
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
                result = ActionResult("applied", f"re-queued {target}{where}", target, outbox_id)
            else:
                wanted = "pending or dead" if retarget else "dead"
                result = ActionResult("skipped", f"{target} is {previous}, not {wanted}", target, outbox_id)
            detail: dict[str, object] = {"from": previous}
            if retarget:
                detail |= {"retarget": True, "previous_target": fingerprint}
            await write_audit(
                conn,
                actor=self.actor,
                action="notification.resend",
                target_kind="notification",
                target_ids=[outbox_id],
                outcome=result.outcome,
                detail=detail,
            )
        return result

    async def send_test(self, severity: str) -> tuple[int, ...]:
        """Queue a test message for every route that takes ``severity``; returns the outbox ids."""
        self._writable("send test notifications")
        if severity not in ("critical", "warning", "info"):
            raise ValueError(f"unknown severity {severity!r} (critical, warning or info)")
        now = datetime.now(UTC)
        note = (
            f"Test message sent by {self.actor} at {now.strftime('%Y-%m-%d %H:%M:%S UTC')}. "
            f"If you can read this, {severity} alerts from opswatch reach this channel."
        )
        notification = Notification("test", severity, (), f"test:{uuid.uuid4().hex}", now, note=note)
        items = items_for(notification, self._notifiers)
        async with self.db.transaction() as conn:
            ids = await enqueue(conn, items)
            await write_audit(
                conn,
                actor=self.actor,
                action="alert.test",
                target_kind="notification",
                target_ids=ids,
                target_key=severity,
                outcome="applied" if ids else "skipped",
                detail={"routes": [i.route for i in items]},
            )
        return tuple(ids)

    async def history(
        self, limit: int = 100, *, rule: str | None = None, scope: str | None = None
    ) -> list[HistoryEntry]:
        rows = await self.db.fetch(
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
                int(r["id"]),
                r["at"],
                r["rule"],
                r["scope"],
                r["from_state"],
                r["to_state"],
                r["severity"],
                r["value"],
                r["instance"],
            )
            for r in rows
        ]

    async def outbox(self, status: str | None = None, limit: int = 100) -> list[OutboxEntry]:
        return await list_outbox(self.db, status, limit)

    async def silences(self, active_only: bool = True) -> list[Silence]:
        rows = await self.db.fetch(
            f"""SELECT {_SILENCE_COLUMNS} FROM opswatch.silences
                WHERE NOT $1 OR (cancelled_at IS NULL AND ends_at > clock_timestamp())
                ORDER BY id DESC LIMIT 1000""",
            active_only,
        )
        return [_silence(r) for r in rows]
