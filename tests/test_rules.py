"""The rule state machine and value formatting (pure, no database)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from core.config import DEFAULT_RULES, AlertRule, FlappingConfig
from core.rules import (
    FIRING,
    OK,
    PENDING,
    RESOLVED,
    RESOLVED_VISIBLE_S,
    AlertRecord,
    advance,
    breached,
    format_duration_human,
    format_threshold,
    format_value,
    metric_unit,
    recovered,
    settle,
    severity_for,
)

T0 = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
FLAP = FlappingConfig(transitions=4, window=600)


def rule(**kw: Any) -> AlertRule:
    base: dict[str, Any] = {
        "name": "latency",
        "metric": "endpoint.latency_ms",
        "warning": 2000,
        "critical": 5000,
    }
    return AlertRule.model_validate(base | kw)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def run(r: AlertRule, values: list[tuple[float, float]], rec: AlertRecord | None = None) -> list[AlertRecord]:
    rec = rec or AlertRecord(r.name, "api", since=T0)
    out = []
    for t, v in values:
        rec = advance(rec, r, v, at(t), FLAP).record
        out.append(rec)
    return out


@pytest.mark.parametrize(
    ("op", "below", "equal", "above"),
    [
        (">", False, False, True),
        (">=", False, True, True),
        ("<", True, False, False),
        ("<=", True, True, False),
    ],
)
def test_breached_compares_with_the_rules_operator(op: str, below: bool, equal: bool, above: bool) -> None:
    r = AlertRule.model_validate({"name": "r", "metric": "db.rtt_ms", "op": op, "warning": 1})
    assert (breached(r, 0, 1), breached(r, 1, 1), breached(r, 2, 1)) == (below, equal, above)


def test_severity_and_recovery_edges() -> None:
    r = rule(recovery=1500)
    assert severity_for(r, 1999) is None
    assert severity_for(r, 2001) == "warning"
    assert severity_for(r, 5001) == "critical"
    assert not recovered(r, 1800)  # inside the hysteresis band
    assert recovered(r, 1500)
    low = rule(op="<", warning=99, critical=95, metric="endpoint.uptime_1h", name="uptime")
    assert severity_for(low, 96) == "warning" and severity_for(low, 90) == "critical"


def test_pending_then_firing_after_for_duration() -> None:
    r = rule(for_=60)
    rec = AlertRecord(r.name, "api", since=T0)
    step = advance(rec, r, 2500, at(0), FLAP)
    assert step.moved == (OK, PENDING) and step.record.started_at == at(0)
    step = advance(step.record, r, 2600, at(59), FLAP)
    assert step.moved is None and step.record.state == PENDING
    step = advance(step.record, r, 2600, at(60), FLAP)
    assert step.moved == (PENDING, FIRING)
    assert step.record.fired_at == at(60) and step.record.started_at == at(0)
    assert step.record.severity == "warning" and step.record.threshold == 2000


def test_pending_drops_back_to_ok_without_firing() -> None:
    r = rule(for_=60)
    states = [rec.state for rec in run(r, [(0, 2500), (30, 100), (40, 2500)])]
    assert states == [PENDING, OK, PENDING]


def test_hysteresis_recovery_threshold_prevents_spam() -> None:
    r = rule(recovery=1500)
    recs = run(r, [(0, 2100), (10, 1990), (20, 2010), (30, 1900), (40, 1400)])
    assert [x.state for x in recs] == [FIRING, FIRING, FIRING, FIRING, RESOLVED]


def test_recovery_samples_need_consecutive_good_values() -> None:
    r = rule(recovery_samples=3)
    recs = run(r, [(0, 2100), (10, 100), (20, 100), (30, 2100), (40, 100), (50, 100), (60, 100)])
    assert [x.state for x in recs] == [FIRING] * 6 + [RESOLVED]
    assert recs[3].good_samples == 0


def test_escalation_and_quiet_deescalation() -> None:
    r = rule()
    rec = run(r, [(0, 2100)])[0]
    up = advance(rec, r, 6000, at(10), FLAP)
    assert up.escalated_from == "warning" and up.record.severity == "critical" and up.record.threshold == 5000
    down = advance(up.record, r, 3000, at(20), FLAP)
    assert down.escalated_from is None and down.record.severity == "warning"


def test_acknowledgement_cleared_when_resolved() -> None:
    r = rule()
    rec = run(r, [(0, 2100)])[0]
    acked = AlertRecord(**{**{f: getattr(rec, f) for f in rec.__slots__}, "acknowledged_by": "ops"})
    resolved = advance(acked, r, 10, at(10), FLAP).record
    assert resolved.state == RESOLVED and resolved.acknowledged_by is None


def test_flapping_starts_after_n_flips_and_settles() -> None:
    r = rule()
    rec = AlertRecord(r.name, "api", since=T0)
    started = []
    for i, v in enumerate([2100, 100, 2100, 100, 2100, 100]):
        step = advance(rec, r, v, at(i * 30), FLAP)
        rec = step.record
        started.append(step.flapping_started)
    assert started == [False, False, False, True, False, False]
    assert rec.flapping and rec.flapping_since == at(90)
    assert not settle(rec, at(400), FLAP).flapping_ended  # flips still inside the window
    calm = settle(rec, at(1000), FLAP)
    assert calm.flapping_ended and not calm.record.flapping


def test_resolved_returns_to_ok_after_a_while() -> None:
    r = rule()
    recs = run(r, [(0, 2100), (10, 100)])
    assert settle(recs[-1], at(10 + RESOLVED_VISIBLE_S - 1), FLAP).moved is None
    back = settle(recs[-1], at(10 + RESOLVED_VISIBLE_S), FLAP)
    assert back.moved == (RESOLVED, OK) and back.record.state == OK


def test_default_rules_match_the_seed() -> None:
    rules = {r.name: r for r in DEFAULT_RULES}
    assert severity_for(rules["api-down"], 301) == "critical" and severity_for(rules["api-down"], 299) is None
    assert severity_for(rules["slow-response"], 2500) == "warning"
    assert severity_for(rules["slow-response"], 5500) == "critical"
    assert severity_for(rules["db-unreachable"], 1) == "critical"
    assert severity_for(rules["event-failures"], 6) == "warning"


@pytest.mark.parametrize(
    ("metric", "value", "text"),
    [
        ("endpoint.down_for", 312, "5m 12s"),
        ("endpoint.latency_ms", 2345.6, "2,346 ms"),
        ("endpoint.error_rate", 7.5, "7.5%"),
        ("db.unreachable", 1, "unreachable"),
        ("db.size_bytes", 1536 * 1024, "1.5 MB"),
        ("events.failures_last_hour", 6, "6"),
    ],
)
def test_format_value(metric: str, value: float, text: str) -> None:
    assert format_value(value, metric_unit(metric), metric) == text


def test_format_threshold_and_durations() -> None:
    assert format_threshold(rule(for_=60), "critical", "ms") == "> 5,000 ms for 1m"
    db = AlertRule.model_validate({"name": "db", "metric": "db.unreachable", "critical": 0})
    assert format_threshold(db, "critical", "bool") == ""
    assert [format_duration_human(s) for s in (0, 59, 300, 3660, 90000)] == [
        "0s",
        "59s",
        "5m",
        "1h 1m",
        "1d 1h",
    ]
    assert metric_unit("custom.auth_failure_rate", {"auth_failure_rate": "%"}) == "%"
