"""Threshold rules and the per-alert state machine: ok -> pending -> firing -> resolved -> ok.

Pure functions over frozen :class:`AlertRecord` values; persistence, notifications and
storm control live in :mod:`core.alerting`. ``advance`` consumes one metric value,
``settle`` applies what time alone changes (flapping ends, resolved alerts retire).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from core.config import AlertRule, FlappingConfig
from core.durations import format_duration_human

__all__ = [
    "FIRING",
    "OK",
    "PENDING",
    "RESOLVED",
    "RESOLVED_VISIBLE_S",
    "AlertRecord",
    "Step",
    "advance",
    "applies_to",
    "breached",
    "format_threshold",
    "format_value",
    "metric_unit",
    "recovered",
    "settle",
    "severity_for",
    "severity_rank",
    "threshold_for",
]

OK, PENDING, FIRING, RESOLVED = "ok", "pending", "firing", "resolved"
RESOLVED_VISIBLE_S = 300.0
"""How long a resolved alert stays listed before it returns to ok."""

_RANK = {"info": 1, "warning": 2, "critical": 3}


def severity_rank(severity: str | None) -> int:
    return _RANK.get(severity or "", 0)


def breached(rule: AlertRule, value: float, threshold: float) -> bool:
    """``value op threshold`` with the rule's comparison."""
    if rule.op == ">":
        return value > threshold
    if rule.op == ">=":
        return value >= threshold
    if rule.op == "<":
        return value < threshold
    return value <= threshold


def severity_for(rule: AlertRule, value: float) -> str | None:
    """The worst severity whose threshold ``value`` breaches, or None."""
    if rule.critical is not None and breached(rule, value, rule.critical):
        return "critical"
    if rule.warning is not None and breached(rule, value, rule.warning):
        return "warning"
    return None


def threshold_for(rule: AlertRule, severity: str | None) -> float | None:
    if severity == "critical":
        return rule.critical
    if severity == "warning":
        return rule.warning
    return None


def recovered(rule: AlertRule, value: float) -> bool:
    """True once ``value`` is back past the recovery edge (default: the lowest threshold)."""
    edge = rule.recovery
    if edge is None:
        edge = rule.warning if rule.warning is not None else rule.critical
    assert edge is not None  # the config model guarantees a threshold
    return not breached(rule, value, edge)


def applies_to(rule: AlertRule, scope: str) -> bool:
    return rule.scope in (None, "*") or rule.scope == scope


@dataclass(frozen=True, slots=True)
class AlertRecord:
    """Everything persisted about one (rule, scope) alert."""

    rule: str
    scope: str
    since: datetime  # start of the current state
    state: str = OK
    severity: str | None = None
    value: float | None = None  # at the last change
    threshold: float | None = None
    started_at: datetime | None = None  # when the breach began (pending start or fire time)
    fired_at: datetime | None = None
    resolved_at: datetime | None = None
    last_notified_at: datetime | None = None
    acknowledged_by: str | None = None
    acknowledged_at: datetime | None = None
    announced: bool = False  # people were told it fires and not yet told it cleared
    notified_severity: str | None = None
    eligible_since: datetime | None = None  # ready to announce, waiting for group_wait
    transitions: tuple[datetime, ...] = ()  # recent flips into firing or resolved
    flapping: bool = False
    flapping_since: datetime | None = None
    good_samples: int = 0
    repeat_count: int = 0
    silenced: bool = False
    suppressed_by: str | None = None

    @property
    def key(self) -> tuple[str, str]:
        return (self.rule, self.scope)


@dataclass(frozen=True, slots=True)
class Step:
    """The outcome of feeding a record one value or one tick; ``record is old`` when unchanged."""

    record: AlertRecord
    moved: tuple[str, str] | None = None  # (from_state, to_state)
    escalated_from: str | None = None
    flapping_started: bool = False
    flapping_ended: bool = False


def advance(rec: AlertRecord, rule: AlertRule, value: float, now: datetime, flap: FlappingConfig) -> Step:
    severity = severity_for(rule, value)
    if rec.state in (OK, RESOLVED):
        if severity is None:
            return Step(rec)
        if rule.for_ > 0:
            pending = _breach(rec, rule, PENDING, severity, value, now, started_at=now)
            return Step(pending, (rec.state, PENDING))
        return _fire(rec, rule, severity, value, now, flap, started_at=now)
    if rec.state == PENDING:
        if severity is None:
            back = replace(
                rec, state=OK, severity=None, value=value, threshold=None, since=now, started_at=None
            )
            return Step(back, (PENDING, OK))
        if (now - rec.since).total_seconds() >= rule.for_:
            return _fire(rec, rule, severity, value, now, flap, started_at=rec.started_at or rec.since)
        if severity != rec.severity:
            return Step(replace(rec, severity=severity, threshold=threshold_for(rule, severity), value=value))
        return Step(rec)
    return _while_firing(rec, rule, severity, value, now, flap)


def _breach(
    rec: AlertRecord,
    rule: AlertRule,
    state: str,
    severity: str,
    value: float,
    now: datetime,
    *,
    started_at: datetime,
    **changes: Any,
) -> AlertRecord:
    """``rec`` entering ``state`` (pending or firing) for a breach at ``severity``."""
    return replace(
        rec,
        state=state,
        severity=severity,
        value=value,
        threshold=threshold_for(rule, severity),
        since=now,
        started_at=started_at,
        good_samples=0,
        **changes,
    )


def _fire(
    rec: AlertRecord,
    rule: AlertRule,
    severity: str,
    value: float,
    now: datetime,
    flap: FlappingConfig,
    *,
    started_at: datetime,
) -> Step:
    fired = _breach(
        rec,
        rule,
        FIRING,
        severity,
        value,
        now,
        started_at=started_at,
        fired_at=now,
        resolved_at=None,
        repeat_count=0,
        acknowledged_by=None,
        acknowledged_at=None,
    )
    return _flipped(fired, (rec.state, FIRING), now, flap)


def _while_firing(
    rec: AlertRecord, rule: AlertRule, severity: str | None, value: float, now: datetime, flap: FlappingConfig
) -> Step:
    if recovered(rule, value):
        good = rec.good_samples + 1
        if good < rule.recovery_samples:
            return Step(replace(rec, good_samples=good))
        done = replace(
            rec,
            state=RESOLVED,
            since=now,
            resolved_at=now,
            value=value,
            good_samples=0,
            acknowledged_by=None,
            acknowledged_at=None,
            eligible_since=None,
        )
        return _flipped(done, (FIRING, RESOLVED), now, flap)
    if severity is None or severity == rec.severity:  # inside the hysteresis band, or unchanged
        return Step(replace(rec, good_samples=0) if rec.good_samples else rec)
    escalated = rec.severity if severity_rank(severity) > severity_rank(rec.severity) else None
    changed = replace(
        rec, severity=severity, threshold=threshold_for(rule, severity), value=value, good_samples=0
    )
    return Step(changed, escalated_from=escalated)


def _flipped(new: AlertRecord, moved: tuple[str, str], now: datetime, flap: FlappingConfig) -> Step:
    """A move into firing or resolved, counted towards flapping."""
    counted, started = _count_flip(new, now, flap)
    return Step(counted, moved, flapping_started=started)


def _count_flip(rec: AlertRecord, now: datetime, flap: FlappingConfig) -> tuple[AlertRecord, bool]:
    recent = (*(t for t in rec.transitions if (now - t).total_seconds() < flap.window), now)
    started = not rec.flapping and len(recent) >= flap.transitions
    return (
        replace(
            rec,
            transitions=recent,
            flapping=rec.flapping or started,
            flapping_since=now if started else rec.flapping_since,
        ),
        started,
    )


def settle(rec: AlertRecord, now: datetime, flap: FlappingConfig) -> Step:
    """Changes due to time alone: a flapping alert calms down; a resolved one returns to ok."""
    current = rec
    ended = False
    if current.flapping:
        recent = tuple(t for t in current.transitions if (now - t).total_seconds() < flap.window)
        if len(recent) < max(1, flap.transitions // 2):
            current = replace(current, transitions=recent, flapping=False, flapping_since=None)
            ended = True
    moved = None
    if (
        current.state == RESOLVED
        and not current.flapping
        and (now - current.since).total_seconds() >= RESOLVED_VISIBLE_S
    ):
        current = replace(current, state=OK, since=now, severity=None, threshold=None, started_at=None)
        moved = (RESOLVED, OK)
    return Step(current, moved, flapping_ended=ended)


# --------------------------------------------------------------------------- display


_BOOL_WORDS = {"db.unreachable": ("reachable", "unreachable"), "endpoint.up": ("down", "up")}


def metric_unit(metric: str, custom_units: Mapping[str, str] | None = None) -> str:
    """``ms``, ``duration``, ``%``, ``bytes``, ``bool`` or a custom unit (possibly empty)."""
    if metric.startswith("custom."):
        return (custom_units or {}).get(metric[7:], "")
    if metric in _BOOL_WORDS:
        return "bool"
    if metric.endswith("_ms"):
        return "ms"
    if metric.endswith(("down_for", "_age", "_age_s", "_s")):
        return "duration"
    if metric.endswith(("error_rate", "_pct")) or ".uptime" in metric:
        return "%"
    if metric.endswith("_bytes"):
        return "bytes"
    return ""


def _number(value: float) -> str:
    if not math.isfinite(value):
        return str(value)
    if abs(value) >= 100:
        return f"{value:,.0f}"
    if value == int(value):
        return str(int(value))
    return f"{value:.2f}".rstrip("0").rstrip(".")


def format_value(value: float | None, unit: str, metric: str = "") -> str:
    if value is None:
        return "no data"
    if unit == "bool":
        low, high = _BOOL_WORDS.get(metric, ("no", "yes"))
        return high if value else low
    if unit == "duration":
        return format_duration_human(value)
    if unit == "ms":
        return f"{_number(value)} ms"
    if unit == "%":
        return f"{_number(value)}%"
    if unit == "bytes":
        size = float(value)
        for name in ("B", "KB", "MB", "GB"):
            if abs(size) < 1024:
                return f"{_number(size)} {name}"
            size /= 1024
        return f"{_number(size)} TB"
    return f"{_number(value)} {unit}" if unit else _number(value)


def format_threshold(rule: AlertRule, severity: str | None, unit: str) -> str:
    """``"> 5m"``, ``"> 2,000 ms for 1m"``; empty for on/off metrics."""
    threshold = threshold_for(rule, severity)
    if threshold is None or unit == "bool":
        text = ""
    else:
        text = f"{rule.op} {format_value(threshold, unit, rule.metric)}"
    if rule.for_ > 0:
        text = f"{text} for {format_duration_human(rule.for_)}".strip()
    return text
