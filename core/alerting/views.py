"""What the screens show of the alerts: :class:`core.snapshot.AlertView` rows, worst first."""

from __future__ import annotations

from collections.abc import Mapping

from core.alerting.models import Key
from core.alerting.planner import Planner
from core.rules import OK, AlertRecord, format_threshold, format_value
from core.safe_text import display_text
from core.snapshot import AlertView, Severity

__all__ = ["alert_views"]

_STATE_ORDER = {"firing": 0, "flapping": 1, "pending": 2, "resolved": 3}


def alert_views(
    planner: Planner, records: Mapping[Key, AlertRecord], values: Mapping[Key, float]
) -> list[AlertView]:
    """Pending, firing, flapping and recently resolved alerts, worst first."""
    views: list[AlertView] = []
    for key, rec in records.items():
        if rec.state == OK and not rec.flapping:
            continue
        rule = planner.rules.get(rec.rule)
        if rule is None:
            continue
        unit = planner.unit(rule)
        value = values.get(key, rec.value)
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
