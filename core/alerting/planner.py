"""The pure part of alerting: records, silences and metric values in, the next records, their
changes and the notifications to queue out. No I/O, no database, no clock (``now`` is an input).

Alerts that start within ``group_wait`` of each other go out as one message per severity; an
alert whose ``depends_on`` rule is active on the same scope, service or globally is held back
(never its resolved message once it was announced); silences hold new announcements;
acknowledgements stop repeats; a flapping alert gets one FLAPPING message and then nothing until
it settles.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from core.alerting.models import AlertChange, Key, MetricSample, Silence
from core.config import AlertRule, Config
from core.notify.base import AlertInfo, Notification, epoch_ms
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

__all__ = ["Plan", "Planner"]


@dataclass
class _Flags:
    """What happened to one alert in this evaluation, across its steps."""

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
class Plan:
    """One evaluation's decisions: the records after it, which of them changed, and what to send."""

    records: dict[Key, AlertRecord]
    changed: set[Key] = field(default_factory=set)
    transitions: list[AlertChange] = field(default_factory=list)
    notifications: list[Notification] = field(default_factory=list)


@dataclass
class _Outgoing:
    """Messages collected over all alerts of one evaluation, batched per severity at the end."""

    resolved: dict[str, list[AlertInfo]] = field(default_factory=lambda: defaultdict(list))
    repeats: dict[str, list[tuple[AlertInfo, int]]] = field(default_factory=lambda: defaultdict(list))
    singles: list[Notification] = field(default_factory=list)


@dataclass
class _Alert:
    """The decision about one alert in progress: its facts and the updates decided so far."""

    rec: AlertRecord
    flags: _Flags | None
    value: float | None
    silenced: bool
    suppressor: str | None
    announced: bool
    upd: dict[str, Any] = field(default_factory=dict)


def _member(rec: AlertRecord) -> str:
    return f"{rec.rule}/{rec.scope}/{epoch_ms(rec.fired_at) if rec.fired_at else 0}"


def _digest(parts: Iterable[str]) -> str:
    return hashlib.sha256("\n".join(sorted(parts)).encode()).hexdigest()[:20]


def _batch_key(kind: str, severity: str, members: list[str]) -> str:
    return f"{kind}:{members[0]}" if len(members) == 1 else f"{kind}:{severity}:{_digest(members)}"


def _quiet(rec: AlertRecord, flags: _Flags | None) -> bool:
    """Nothing to decide: ok, never announced, nothing held back or waiting, untouched now."""
    return rec.state == OK and not (
        rec.announced or rec.flapping or rec.silenced or rec.suppressed_by or rec.eligible_since or flags
    )


def _active_scopes(records: Iterable[AlertRecord]) -> dict[str, list[str]]:
    active: dict[str, list[str]] = defaultdict(list)
    for rec in records:
        if rec.state in (PENDING, FIRING):
            active[rec.rule].append(rec.scope)
    return active


def _repeat_notifications(
    repeats: Mapping[str, list[tuple[AlertInfo, int]]], now: datetime
) -> list[Notification]:
    out = []
    for severity, items in repeats.items():
        infos = tuple(i for i, _ in items)
        members = [f"{a.incident_key}:{n}" for a, n in items]
        out.append(Notification("repeat", severity, infos, _batch_key("repeat", severity, members), now))
    return out


class Planner:
    """Pure decisions for one evaluation: state steps, suppression, silences, notifications."""

    def __init__(self, config: Config) -> None:
        alerts = config.alerts
        self.rules: dict[str, AlertRule] = {r.name: r for r in alerts.rules}
        self.flap = alerts.flapping
        self.group_wait = alerts.group_wait
        self.repeat_due = timedelta(seconds=alerts.repeat_interval)
        self.services = {e.name: e.service for e in config.endpoints}
        self.units = {m.name: m.unit for m in config.metrics}

    def values_for(self, samples: Iterable[MetricSample]) -> dict[Key, float]:
        """The value each (rule, scope) sees in ``samples``; a rule without ``scope`` or with
        ``*`` sees every scope of its metric."""
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
                rec.rule, rec.scope, severity, "", shown, format_value(shown, ""), "",
                "rule removed from the configuration", None, rec.started_at, rec.fired_at,
                rec.resolved_at, previous, len(rec.transitions),
            )  # fmt: skip
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
        """The ``depends_on`` rule active on this scope, its service or globally, if any."""
        service = self.services.get(scope)
        for dep in rule.depends_on:
            for other in active.get(dep, ()):
                if other == scope or other == "" or scope == "":
                    return dep
                if service is not None and self.services.get(other) == service:
                    return dep
        return None

    # -- steps -----------------------------------------------------------------------------------

    def plan(
        self,
        records: Mapping[Key, AlertRecord],
        silences: tuple[Silence, ...],
        values: Mapping[Key, float],
        now: datetime,
    ) -> Plan:
        plan = Plan(dict(records))
        flags: dict[Key, _Flags] = {}
        self._step_values(plan, flags, values, now)
        self._step_time(plan, flags, values, now)
        self._decide(plan, flags, silences, values, now)
        return plan

    def _apply(
        self,
        plan: Plan,
        flags: dict[Key, _Flags],
        key: Key,
        old: AlertRecord,
        step: Step,
        value: float | None,
        now: datetime,
    ) -> None:
        if step.record is old and not step.moved:
            return
        plan.records[key] = step.record
        plan.changed.add(key)
        flags.setdefault(key, _Flags()).add(step)
        if step.moved:
            r = step.record
            plan.transitions.append(AlertChange(r.rule, r.scope, *step.moved, r.severity, value, now))

    def _step_values(
        self, plan: Plan, flags: dict[Key, _Flags], values: Mapping[Key, float], now: datetime
    ) -> None:
        """Feed each rule's new value to its alert (a new alert only once a threshold is crossed)."""
        for key, value in values.items():
            rule = self.rules[key[0]]
            old = plan.records.get(key)
            if old is None:
                if severity_for(rule, value) is None:
                    continue
                old = AlertRecord(key[0], key[1], since=now)
            self._apply(plan, flags, key, old, advance(old, rule, value, now, self.flap), value, now)

    def _step_time(
        self, plan: Plan, flags: dict[Key, _Flags], values: Mapping[Key, float], now: datetime
    ) -> None:
        """Changes due to time or configuration alone: retire orphans, settle flapping and resolved."""
        for key, rec in list(plan.records.items()):
            if self._orphaned(rec) and (rec.state != OK or rec.announced):
                gone = replace(rec, state=OK, since=now, flapping=False, eligible_since=None, resolved_at=now)
                self._apply(plan, flags, key, rec, Step(gone, (rec.state, OK)), values.get(key), now)
                flags[key].retired = True
            elif rec.flapping or rec.state == RESOLVED:
                self._apply(plan, flags, key, rec, settle(rec, now, self.flap), values.get(key), now)

    # -- decisions -------------------------------------------------------------------------------

    def _decide(
        self,
        plan: Plan,
        flags: dict[Key, _Flags],
        silences: tuple[Silence, ...],
        values: Mapping[Key, float],
        now: datetime,
    ) -> None:
        live = [s for s in silences if s.active(now)]
        active = _active_scopes(plan.records.values())
        out = _Outgoing()
        for key, rec in list(plan.records.items()):
            f = flags.get(key)
            if _quiet(rec, f):
                continue
            alert = self._facts(rec, f, live, active, values.get(key))
            self._flapping_or_resolved(alert, out, now)
            self._firing(alert, out, now)
            if alert.upd:
                plan.records[key] = replace(rec, **alert.upd)
                plan.changed.add(key)
        plan.notifications.extend(self._batched("resolved", out.resolved, now))
        plan.notifications.extend(out.singles)
        plan.notifications.extend(self._flush_groups(plan, values, now))
        plan.notifications.extend(_repeat_notifications(out.repeats, now))

    def _facts(
        self,
        rec: AlertRecord,
        flags: _Flags | None,
        live: list[Silence],
        active: Mapping[str, list[str]],
        value: float | None,
    ) -> _Alert:
        """Whether a silence or a dependency holds the alert back now (stored when it changed)."""
        rule = self.rules.get(rec.rule)
        silenced = any(s.matches(rec.rule, rec.scope) for s in live)
        held = rec.state in (PENDING, FIRING)
        suppressor = self.suppressor(rule, rec.scope, active) if rule is not None and held else None
        alert = _Alert(rec, flags, value, silenced, suppressor, rec.announced)
        if silenced != rec.silenced:
            alert.upd["silenced"] = silenced
        if suppressor != rec.suppressed_by:
            alert.upd["suppressed_by"] = suppressor
        return alert

    def _flapping_or_resolved(self, alert: _Alert, out: _Outgoing, now: datetime) -> None:
        """One FLAPPING message when flapping starts; the resolved message of an announced alert."""
        rec, f = alert.rec, alert.flags
        if f is None:
            return
        if f.flapping_started:
            if not alert.silenced:
                key = f"flapping:{rec.rule}/{rec.scope}/{epoch_ms(rec.flapping_since or now)}"
                out.singles.append(self._single("flapping", rec, alert.value, now, key=key))
                alert.announced = True
                alert.upd.update(announced=True, notified_severity=rec.severity, last_notified_at=now)
        elif f.resolved and not rec.flapping:
            self._retract(alert, out, now)
        if f.flapping_ended:
            if rec.state == FIRING:  # announced afresh once it has settled
                alert.announced = False
                alert.upd["announced"] = False
            else:
                self._retract(alert, out, now)

    def _retract(self, alert: _Alert, out: _Outgoing, now: datetime) -> None:
        """An announced alert is over: queue its resolved message."""
        if not alert.announced:
            return
        rec = alert.rec
        severity = rec.notified_severity or rec.severity or "warning"
        out.resolved[severity].append(self.info(rec, alert.value))
        alert.announced = False
        alert.upd.update(announced=False, notified_severity=None, last_notified_at=now)

    def _firing(self, alert: _Alert, out: _Outgoing, now: datetime) -> None:
        """A firing alert waits for its group, escalates, or repeats when due."""
        rec, f = alert.rec, alert.flags
        if rec.state != FIRING or rec.flapping:
            if rec.eligible_since is not None:
                alert.upd["eligible_since"] = None
            return
        if not alert.announced:
            eligible = None if alert.silenced or alert.suppressor else (rec.eligible_since or now)
            if eligible != rec.eligible_since:
                alert.upd["eligible_since"] = eligible
        elif f and f.escalated_from and not alert.silenced:
            key = f"escalated:{_member(rec)}:{rec.severity}"
            out.singles.append(
                self._single("escalated", rec, alert.value, now, key=key, previous=f.escalated_from)
            )
            alert.upd.update(notified_severity=rec.severity, last_notified_at=now)
        elif self._repeat_due(alert, now):
            count = rec.repeat_count + 1
            out.repeats[rec.severity or "warning"].append((self.info(rec, alert.value), count))
            alert.upd.update(repeat_count=count, last_notified_at=now)

    def _repeat_due(self, alert: _Alert, now: datetime) -> bool:
        rec = alert.rec
        if rec.acknowledged_by or alert.silenced or alert.suppressor or rec.last_notified_at is None:
            return False
        return now - rec.last_notified_at >= self.repeat_due

    # -- notifications ---------------------------------------------------------------------------

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
            key = _batch_key(kind, severity, [a.incident_key for a in infos])
            out.append(Notification(kind, severity, tuple(infos), key, now))
        return out

    def _flush_groups(self, plan: Plan, values: Mapping[Key, float], now: datetime) -> list[Notification]:
        """Announce each severity's waiting alerts together once the first has waited group_wait."""
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
            key = f"firing:{ids[0]}" if len(members) == 1 else f"grouped:{severity}:{_digest(ids)}"
            out.append(Notification("firing", severity, infos, key, now))
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
