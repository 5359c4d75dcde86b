"""The alert planner on its own: records, silences and values in, decisions out — no database, no HTTP.

The same stories as tests/test_alerting.py, decided in-process in simulated time.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

from core.alerting.models import AlertChange, MetricSample, Silence
from core.alerting.planner import Plan, Planner
from core.config import Config
from core.notify.base import epoch_ms
from core.rules import AlertRecord
from tests.test_alerting import API_DOWN, DB_DOWN, ERROR_RATE, SLOW, down

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


# ep0..ep8 belong to service "api", ep9 to "pay" (as in tests/test_alerting.py)
ENDPOINTS = [{"name": f"ep{i}", "url": f"http://127.0.0.1:9/ep{i}", "service": "api"} for i in range(9)]
ENDPOINTS.append({"name": "ep9", "url": "http://127.0.0.1:9/ep9", "service": "pay"})


def make_config(
    *, api_for: float = 60, group_wait: float = 0, repeat: float = 3600, rules: Any = None
) -> Config:
    """The rules of tests/test_alerting.py; no notification channel (the planner sends nothing)."""
    rules = [API_DOWN | {"for": api_for}, ERROR_RATE, DB_DOWN, SLOW] if rules is None else rules
    flapping = {"transitions": 4, "window": 600}
    alerts = {"group_wait": group_wait, "repeat_interval": repeat, "flapping": flapping, "rules": rules}
    return Config.model_validate({"endpoints": ENDPOINTS, "alerts": alerts})


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


class Run:
    """One evaluation after another, each fed the records the previous one decided (as the engine does)."""

    def __init__(self, config: Config, silences: tuple[Silence, ...] = ()) -> None:
        self.planner = Planner(config)
        self.records: dict[tuple[str, str], AlertRecord] = {}
        self.silences = silences

    def step(self, seconds: float, samples: list[MetricSample]) -> Plan:
        plan = self.planner.plan(self.records, self.silences, self.planner.values_for(samples), at(seconds))
        self.records = plan.records
        return plan

    def edit(self, rule: str, scope: str, **changes: Any) -> None:
        """What an operator action stores (e.g. an acknowledgement), seen on the next evaluation."""
        self.records[(rule, scope)] = replace(self.records[(rule, scope)], **changes)


def moved(plan: Plan) -> list[tuple[str, str, str, str]]:
    return [(t.rule, t.scope, t.from_state, t.to_state) for t in plan.transitions]


def sent(plan: Plan) -> list[tuple[str, str, list[str]]]:
    return [(n.kind, n.severity, [a.title for a in n.alerts]) for n in plan.notifications]


def silence(
    rule: str | None, scope: str | None, start: float, end: float, cancelled: float | None = None
) -> Silence:
    return Silence(
        1, rule, scope, at(start), at(end), "maintenance", "alice", at(start),
        cancelled_at=None if cancelled is None else at(cancelled),
    )  # fmt: skip


def test_pending_firing_resolved_ok_with_one_message_each_way() -> None:
    run = Run(make_config())
    assert moved(run.step(0, down(up=[0]))) == []
    assert run.records == {}  # a rule that never breached keeps no record
    first = run.step(10, down(0, seconds=10))
    assert first.transitions == [AlertChange("api-down", "ep0", "ok", "pending", "critical", 10.0, at(10))]
    assert first.notifications == []
    assert moved(run.step(69, down(0, seconds=69))) == []
    fired = run.step(70, down(0, seconds=70))
    assert moved(fired) == [("api-down", "ep0", "pending", "firing")]
    assert sent(fired) == [("firing", "critical", ["api-down on ep0"])]
    [notification] = fired.notifications
    [info] = notification.alerts
    assert (info.value_text, info.threshold_text, info.description) == (
        "1m 10s",
        "> 0s for 1m",
        "Endpoint down",
    )
    assert notification.key == f"firing:api-down/ep0/{epoch_ms(at(70))}"
    rec = run.records[("api-down", "ep0")]
    assert (rec.announced, rec.notified_severity, rec.last_notified_at) == (True, "critical", at(70))
    quiet = run.step(100, down(0, seconds=100))
    assert (quiet.transitions, quiet.notifications) == ([], [])
    resolved = run.step(130, down(up=[0]))
    assert moved(resolved) == [("api-down", "ep0", "firing", "resolved")]
    assert sent(resolved) == [("resolved", "critical", ["api-down on ep0"])]
    assert not run.records[("api-down", "ep0")].announced
    settled = run.step(430, down(up=[0]))
    assert moved(settled) == [("api-down", "ep0", "resolved", "ok")]
    assert settled.notifications == []


def test_unchanged_evaluations_change_nothing_and_leave_the_input_alone() -> None:
    run = Run(make_config(api_for=0))
    run.step(0, down(0))
    before = dict(run.records)
    again = run.planner.plan(before, (), run.planner.values_for(down(0)), at(10))
    assert (again.changed, again.transitions, again.notifications) == (set(), [], [])
    assert again.records == before and again.records is not before


def test_no_data_keeps_the_state_it_had() -> None:
    run = Run(make_config(api_for=0))
    run.step(0, down(0))
    unknown = run.step(10, [MetricSample("endpoint.down_for", "ep0", None)])
    assert run.planner.values_for([MetricSample("endpoint.down_for", "ep0", None)]) == {}
    assert (unknown.changed, unknown.notifications) == (set(), [])
    assert run.records[("api-down", "ep0")].state == "firing"


def test_values_reach_rules_of_every_scope_or_of_their_own() -> None:
    config = make_config(rules=[API_DOWN, API_DOWN | {"name": "ep3-down", "scope": "ep3"}, DB_DOWN])
    planner = Planner(config)
    values = planner.values_for(
        [*down(1, 3), MetricSample("db.unreachable", "", 1), MetricSample("other", "", 5)]
    )
    assert values == {
        ("api-down", "ep1"): 100.0,
        ("api-down", "ep3"): 100.0,
        ("ep3-down", "ep3"): 100.0,
        ("db-unreachable", ""): 1.0,
    }


def test_alerts_firing_within_group_wait_make_one_message() -> None:
    run = Run(make_config(api_for=0, group_wait=5))
    first = run.step(0, down(0, 1, 2, 3, 4))
    assert len(first.transitions) == 5 and first.notifications == []
    assert {r.eligible_since for r in run.records.values()} == {at(0)}
    assert run.step(3, down(*range(10))).notifications == []
    grouped = run.step(5, down(*range(10)))
    [notification] = grouped.notifications
    assert (notification.kind, notification.severity, notification.grouped) == ("firing", "critical", True)
    assert notification.key.startswith("grouped:critical:")
    assert [a.title for a in notification.alerts] == [f"api-down on ep{i}" for i in range(10)]
    assert all(r.announced and r.eligible_since is None for r in run.records.values())
    resolved = run.step(20, down(up=range(10)))
    assert sent(resolved) == [("resolved", "critical", [f"api-down on ep{i}" for i in range(10)])]


def test_dependency_suppression_never_swallows_a_resolved() -> None:
    run = Run(make_config(api_for=0))
    rates = {"ep1": 50.0, "ep9": 50.0}

    def samples(*eps_down: int, rates: dict[str, float], db_down: bool = False) -> list[MetricSample]:
        out = down(*eps_down, up=[i for i in range(10) if i not in eps_down])
        out += [MetricSample("endpoint.error_rate", ep, v) for ep, v in rates.items()]
        return [*out, MetricSample("db.unreachable", "", 1.0 if db_down else 0.0)]

    first = run.step(0, samples(0, rates=rates))
    assert run.records[("error-rate", "ep1")].suppressed_by == "api-down"  # same service as ep0
    assert run.records[("error-rate", "ep9")].suppressed_by is None  # another service
    assert sent(first) == [("firing", "critical", ["api-down on ep0", "error-rate on ep9"])]
    cleared = run.step(10, samples(rates=rates))
    assert sent(cleared) == [
        ("resolved", "critical", ["api-down on ep0"]),
        ("firing", "critical", ["error-rate on ep1"]),
    ]
    held = run.step(20, samples(rates=rates, db_down=True))
    assert sent(held) == [("firing", "critical", ["db-unreachable"])]
    assert {run.records[("error-rate", s)].suppressed_by for s in ("ep1", "ep9")} == {"db-unreachable"}
    over = run.step(30, samples(rates={"ep1": 0.0, "ep9": 0.0}, db_down=True))
    assert sent(over) == [("resolved", "critical", ["error-rate on ep1", "error-rate on ep9"])]


def test_a_silence_holds_the_announcement_until_it_ends() -> None:
    run = Run(make_config(api_for=0), (silence("api-down", "ep0", 0, 60),))
    first = run.step(0, down(0, 1))
    assert sent(first) == [("firing", "critical", ["api-down on ep1"])]
    ep0 = run.records[("api-down", "ep0")]
    assert (ep0.silenced, ep0.announced, ep0.eligible_since) == (True, False, None)
    assert run.step(30, down(0, 1)).notifications == []
    later = run.step(60, down(0, 1))
    assert sent(later) == [("firing", "critical", ["api-down on ep0"])]
    assert not run.records[("api-down", "ep0")].silenced


def test_silences_match_rule_and_scope_allow_for_skew_and_can_be_cancelled() -> None:
    assert silence(None, "ep0", 20, 60).active(at(0))  # starts_at by the database clock, 20 s ahead
    assert not silence(None, "ep0", 40, 60).active(at(0))
    assert not silence(None, "ep0", 0, 60).active(at(60))
    assert not silence(None, "ep0", 0, 60, cancelled=10).active(at(20))
    any_rule = silence(None, "ep0", 0, 60)
    assert any_rule.matches("slow", "ep0") and not any_rule.matches("slow", "ep1")
    run = Run(make_config(api_for=0), (silence(None, "ep0", 0, 60, cancelled=0),))
    assert sent(run.step(0, down(0))) == [("firing", "critical", ["api-down on ep0"])]


def test_a_silenced_alert_that_was_announced_still_gets_its_resolved() -> None:
    run = Run(make_config(api_for=0))
    run.step(0, down(0))
    run.silences = (silence("api-down", None, 5, 600),)
    run.step(10, down(0))
    assert run.records[("api-down", "ep0")].silenced
    assert sent(run.step(20, down(up=[0]))) == [("resolved", "critical", ["api-down on ep0"])]


def test_repeats_while_firing_unless_acknowledged() -> None:
    run = Run(make_config(api_for=0, repeat=600))
    run.step(0, down(0))
    run.step(10, down(0, 1))
    run.edit("api-down", "ep1", acknowledged_by="alice", acknowledged_at=at(11))
    assert run.step(599, down(0, 1)).notifications == []
    first = run.step(600, down(0, 1))
    assert sent(first) == [("repeat", "critical", ["api-down on ep0"])]
    assert run.records[("api-down", "ep0")].repeat_count == 1
    assert run.step(1199, down(0, 1)).notifications == []
    second = run.step(1200, down(0, 1))
    assert sent(second) == [("repeat", "critical", ["api-down on ep0"])]
    assert first.notifications[0].key != second.notifications[0].key
    assert run.records[("api-down", "ep1")].repeat_count == 0
    run.step(1220, down(0, up=[1]))
    run.step(1230, down(0, 1))
    assert run.records[("api-down", "ep1")].acknowledged_by is None  # a new episode


def test_flapping_sends_one_flapping_message_then_waits_to_settle() -> None:
    run = Run(make_config(api_for=0))
    plans = [run.step(i * 30, down(0) if i % 2 == 0 else down(up=[0])) for i in range(8)]
    assert [s for p in plans for s in sent(p)] == [
        ("firing", "critical", ["api-down on ep0"]),
        ("resolved", "critical", ["api-down on ep0"]),
        ("firing", "critical", ["api-down on ep0"]),
        ("flapping", "critical", ["api-down on ep0"]),
    ]
    rec = run.records[("api-down", "ep0")]
    assert rec.flapping and rec.announced
    [flapping] = [n for p in plans for n in p.notifications if n.kind == "flapping"]
    assert flapping.flapping_window_s == 600
    assert run.step(400, down(up=[0])).notifications == []
    settled = run.step(900, down(up=[0]))
    assert sent(settled) == [("resolved", "critical", ["api-down on ep0"])]
    assert not run.records[("api-down", "ep0")].flapping


def test_escalation_is_announced_on_the_higher_severity() -> None:
    run = Run(make_config())

    def latency(ms: float) -> list[MetricSample]:
        return [MetricSample("endpoint.latency_ms", "ep0", ms)]

    assert sent(run.step(0, latency(2500))) == [("firing", "warning", ["slow on ep0"])]
    escalated = run.step(10, latency(6000))
    assert sent(escalated) == [("escalated", "critical", ["slow on ep0"])]
    assert escalated.notifications[0].alerts[0].previous_severity == "warning"
    assert run.records[("slow", "ep0")].notified_severity == "critical"
    assert run.step(20, latency(1800)).notifications == []  # hysteresis: still firing
    assert sent(run.step(30, latency(1400))) == [("resolved", "critical", ["slow on ep0"])]


def test_an_alert_of_a_removed_rule_is_resolved_once() -> None:
    run = Run(make_config(api_for=0))
    run.step(0, down(0))
    run.planner = Planner(make_config(rules=[ERROR_RATE | {"depends_on": []}]))
    retired = run.step(10, [])
    assert moved(retired) == [("api-down", "ep0", "firing", "ok")]
    assert sent(retired) == [("resolved", "critical", ["api-down on ep0"])]
    assert retired.notifications[0].alerts[0].description == "rule removed from the configuration"
    assert (run.step(20, []).changed, run.planner.values_for(down(0))) == (set(), {})


def test_an_alert_on_a_removed_endpoint_is_resolved() -> None:
    run = Run(make_config(api_for=0))
    run.step(0, down(0, 1))
    fewer = make_config(api_for=0).model_dump(by_alias=True)
    fewer["endpoints"] = [e for e in fewer["endpoints"] if e["name"] != "ep0"]
    run.planner = Planner(Config.model_validate(fewer))
    gone = run.step(10, down(1))
    assert moved(gone) == [("api-down", "ep0", "firing", "ok")]
    assert sent(gone) == [("resolved", "critical", ["api-down on ep0"])]
    assert run.records[("api-down", "ep1")].state == "firing"
