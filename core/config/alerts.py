"""Alert rule sections: thresholds per metric, flapping, evaluation and storm control."""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import Field, model_validator

from core.config.catalogue import DEFAULT_RULE_SPECS, METRICS
from core.config.errors import LocatedValueError, suggest
from core.config.types import Duration, Name, PositiveDuration, Section

__all__ = ["DEFAULT_RULES", "AlertRule", "AlertsConfig", "FlappingConfig"]


class FlappingConfig(Section):
    """``transitions`` state changes within ``window`` make an alert FLAPPING (notifications throttled)."""

    transitions: int = Field(4, ge=2)
    """State changes that make an alert flapping."""
    window: PositiveDuration = 600.0
    """Time window for counting transitions."""


class AlertRule(Section):
    """A threshold rule on one metric, with warning and/or critical levels."""

    name: Name
    """Unique rule name (used by depends_on, silences and notifications)."""
    metric: str
    """Metric to watch: see METRICS, or custom.<name> for a SQL metric."""
    op: Literal[">", ">=", "<", "<="] = ">"
    """Comparison: the rule breaches when `value op threshold`."""
    warning: float | None = None
    """Warning threshold."""
    critical: float | None = None
    """Critical threshold."""
    for_: Duration = Field(0.0, alias="for")
    """How long the breach must last before the alert fires ("for" in YAML)."""
    recovery: float | None = None
    """Hysteresis: the value must get back past this threshold to resolve (default: the threshold)."""
    recovery_samples: int = Field(1, ge=1)
    """Consecutive good evaluations needed to resolve."""
    scope: str | None = None
    """Endpoint name, or "*" for every endpoint (default "*" for endpoint.* metrics, else unused)."""
    depends_on: tuple[str, ...] = ()
    """Rules that, while firing, hold this one back (e.g. api-down for error-rate)."""
    runbook: str | None = None
    """Short hint or link for whoever gets the alert."""
    description: str = ""
    """What the rule means, shown in alerts."""

    @model_validator(mode="before")
    @classmethod
    def _default_scope(cls, data: Any) -> Any:
        if (
            isinstance(data, dict)
            and str(data.get("metric", "")).startswith("endpoint.")
            and not data.get("scope")
        ):
            return {**data, "scope": "*"}
        return data

    @model_validator(mode="after")
    def _check(self) -> AlertRule:
        if self.metric not in METRICS and not re.fullmatch(r"custom\.[A-Za-z_][A-Za-z0-9_]*", self.metric):
            raise LocatedValueError(
                ("metric",),
                f"unknown metric {self.metric!r}" + suggest(self.metric, [*METRICS, "custom.<name>"]),
            )
        if self.warning is None and self.critical is None:
            raise LocatedValueError(("warning",), "a rule needs a warning or a critical threshold (or both)")
        above = self.op in (">", ">=")
        if self.warning is not None and self.critical is not None:
            if (above and self.critical < self.warning) or (not above and self.critical > self.warning):
                side = "at or above" if above else "at or below"
                raise LocatedValueError(
                    ("critical",), f"must be {side} warning ({self.warning:g}) for op '{self.op}'"
                )
        if self.recovery is not None:
            thresholds = [t for t in (self.warning, self.critical) if t is not None]
            edge = min(thresholds) if above else max(thresholds)
            if (above and self.recovery > edge) or (not above and self.recovery < edge):
                side = "at or below" if above else "at or above"
                raise LocatedValueError(("recovery",), f"must be {side} the lowest threshold ({edge:g})")
        if self.scope is not None and not self.metric.startswith("endpoint."):
            raise LocatedValueError(("scope",), "scope applies only to endpoint.* metrics")
        if self.name in self.depends_on:
            raise LocatedValueError(("depends_on",), "a rule cannot depend on itself")
        return self


DEFAULT_RULES: tuple[AlertRule, ...] = tuple(AlertRule.model_validate(spec) for spec in DEFAULT_RULE_SPECS)
"""The seed's alerting plan; used when ``alerts.rules`` is omitted (auth-failures only with its metric)."""


class AlertsConfig(Section):
    """Rule evaluation, storm control and the rules themselves."""

    evaluation_interval: PositiveDuration = 5.0
    """How often rules are evaluated."""
    group_wait: Duration = 2.0
    """Alerts starting within this time of each other go out as one message."""
    repeat_interval: PositiveDuration = 3600.0
    """Re-notify a firing, unacknowledged alert this often."""
    flapping: FlappingConfig = FlappingConfig()
    """Flapping detection."""
    rules: tuple[AlertRule, ...] = DEFAULT_RULES
    """Alert rules; omitted -> the seed's defaults (DEFAULT_RULES)."""

    @model_validator(mode="after")
    def _check(self) -> AlertsConfig:
        names = [rule.name for rule in self.rules]
        for i, rule in enumerate(self.rules):
            if rule.name in names[:i]:
                raise LocatedValueError(
                    ("rules", i, "name"),
                    f"duplicate rule name {rule.name!r} (also rules[{names.index(rule.name)}])",
                )
            for j, dep in enumerate(rule.depends_on):
                if dep not in names:
                    raise LocatedValueError(
                        ("rules", i, "depends_on", j), f"unknown rule {dep!r}" + suggest(dep, names)
                    )
        graph = {rule.name: rule.depends_on for rule in self.rules}
        for i, rule in enumerate(self.rules):
            stack, seen = list(rule.depends_on), set()
            while stack:
                current = stack.pop()
                if current == rule.name:
                    raise LocatedValueError(("rules", i, "depends_on"), "depends_on forms a cycle")
                if current not in seen:
                    seen.add(current)
                    stack.extend(graph.get(current, ()))
        return self
