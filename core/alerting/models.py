"""What the alert engine, its planner, its store and the operator actions exchange."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

__all__ = [
    "ENGINE_NAME",
    "AlertActionResult",
    "AlertChange",
    "HistoryEntry",
    "Key",
    "MetricSample",
    "Silence",
    "alert_target",
]

ENGINE_NAME = "alerting"
CLOCK_SKEW = timedelta(seconds=30)
Key = tuple[str, str]  # (rule, scope)


@dataclass(frozen=True, slots=True)
class MetricSample:
    metric: str
    scope: str  # endpoint name, "" for global metrics
    value: float | None  # None: no data, the alert keeps its state


@dataclass(frozen=True, slots=True)
class AlertChange:
    """One alert moving from one state to another (a row of ``opswatch.alert_history``)."""

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
        return self.cancelled_at is None and self.starts_at - CLOCK_SKEW <= now < self.ends_at

    def matches(self, rule: str, scope: str) -> bool:
        return (self.rule is None or self.rule == rule) and (self.scope is None or self.scope == scope)


@dataclass(frozen=True, slots=True)
class HistoryEntry(AlertChange):
    """A stored :class:`AlertChange`: its row id and the instance that decided it."""

    id: int
    instance: str | None


@dataclass(frozen=True)
class AlertActionResult:
    """The outcome of one operator action on one alert, silence or notification."""

    outcome: str  # applied | skipped
    message: str
    target: str
    id: int | None = None


def alert_target(rule: str, scope: str) -> str:
    return f"{rule}/{scope}" if scope else rule
