"""The demo teaches operators to trust Slack: few, long incidents, and flapping detection engages.

The scenario and the generated demo config are replayed in simulated time (probes answered from
``Scenario.behaviour``, the alert planner deciding every evaluation interval), so nine real
minutes of the demo take a fraction of a second.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit

from core.alerting import Notification, Planner
from core.config import Config
from core.demo.environment import DemoEnvironment
from core.demo.scenario import DEFAULT_SPEED, DROP, Scenario
from core.metrics import endpoint_metrics
from core.probes import Outcome, ProbeSample
from core.rules import AlertRecord
from core.windows import EndpointWindow

START = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)


@dataclass
class Replay:
    notifications: list[Notification] = field(default_factory=list)
    flapping: set[tuple[str, str]] = field(default_factory=set)
    fired: Counter[tuple[str, str]] = field(default_factory=Counter)


def replay(config: Config, scenario: Scenario, real_seconds: float) -> Replay:
    """Probe every endpoint at its interval and evaluate the rules every evaluation interval."""
    now = START
    clock = lambda: now  # noqa: E731
    windows = {
        e.name: EndpointWindow(config.probes.window, down_after=config.probes.down_after, clock=clock)
        for e in config.endpoints
    }
    paths = {e.name: urlsplit(e.url).path for e in config.endpoints}
    intervals = {e.name: e.interval or config.probes.interval for e in config.endpoints}
    next_probe = dict.fromkeys(windows, 0.0)
    seq = Counter[str]()
    wanted = sorted({r.metric for r in config.alerts.rules if r.metric.startswith("endpoint.")})
    planner = Planner(config)
    records: dict[tuple[str, str], AlertRecord] = {}
    out = Replay()
    step = 0.05
    next_eval = 0.0
    t = 0.0
    while t < real_seconds:
        now = START + timedelta(seconds=t)
        for name, due in next_probe.items():
            if t + 1e-9 < due:
                continue
            status, delay = scenario.behaviour(paths[name], t, seq[name])
            seq[name] += 1
            if status == DROP:
                outcome, code = Outcome.OTHER, None
            elif status >= 400:
                outcome, code = Outcome.HTTP_STATUS, status
            else:
                outcome, code = Outcome.OK, status
            windows[name].add(ProbeSample(name, now, delay * 1000, code, outcome))
            next_probe[name] = due + intervals[name]
        if t + 1e-9 >= next_eval:
            samples = [m for n, w in windows.items() for m in endpoint_metrics(n, w, now, wanted)]
            plan = planner.plan(records, (), planner.values_for(samples), now)
            records = plan.records
            out.notifications.extend(plan.notifications)
            for tr in plan.transitions:
                if tr.to_state == "firing":
                    out.fired[(tr.rule, tr.scope)] += 1
            out.flapping.update(k for k, r in records.items() if r.flapping)
            next_eval += config.alerts.evaluation_interval
        t += step
    return out


def demo_config(tmp_path: Path) -> tuple[Config, Scenario]:
    env = DemoEnvironment(tmp_path, traffic=False)
    return env.config(), env.scenario


def test_nine_minutes_of_demo_send_few_messages_and_flapping_engages(tmp_path: Path) -> None:
    """Today's demo sent ~90 Slack messages in 9 minutes and never flagged anything as flapping."""
    config, scenario = demo_config(tmp_path)
    assert scenario.speed == DEFAULT_SPEED
    result = replay(config, scenario, 9 * 60)
    kinds = Counter(n.kind for n in result.notifications)
    assert len(result.notifications) <= 20, kinds
    # the incidents still happen, and each one is told once rather than every minute
    assert result.fired[("api-down", "worker-steps")] == 1
    assert result.fired[("error-rate", "products")] == 1
    assert ("error-rate", "worker-steps") not in result.fired  # an outage's errors are not a second page
    assert ("slow-response", "sales") in result.flapping
    assert kinds["flapping"] == 1
    flapped = next(n for n in result.notifications if n.kind == "flapping")
    # once flapping, the alert's further flips send nothing until it has calmed down
    later = [n for n in result.notifications if n.created_at > flapped.created_at]
    assert all(a.rule == "slow-response" for n in later for a in n.alerts)
    assert len(later) <= 1 and all(n.kind == "resolved" for n in later)
