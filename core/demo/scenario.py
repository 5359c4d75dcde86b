"""The demo's deterministic incident timeline: what each fake endpoint does at a given moment.

Scenario time runs ``speed`` times faster than real time (``t_scenario = t_real * speed``),
so a "5 minute" outage lasts 10 real seconds at the default speed of 30. Phase *durations*
compress; *latencies* do not: a 2.5 s slow response really takes 2.5 s.

One cycle is 5 scenario hours (10 real minutes at speed 30) and then repeats: a few incidents
that each last long enough to be worth a message, then quiet, so the Slack channel reads like
a real on-call day (about a dozen messages a cycle), not a stream operators learn to ignore:

=======================================  ==================  ================  =======================
incident                                 scenario time       real, speed 30    alert it is built to fire
=======================================  ==================  ================  =======================
/api/v1/worker/steps down (503 +         0:15 - 7:00         0.5 s - 14 s      api-down (down > 5 min)
dropped connections)
/api/v1/sales slow (2.2 - 2.9 s)         0:30 - 4:30         1 s - 9 s         slow-response (> 2 s)
/api/v1/products 1 in 13 -> 500          1:00 - 40:00        2 s - 80 s        error-rate warning (> 5 %)
/api/v1/products 1 in 4 -> 500           40:00 - 55:00       80 s - 110 s      error-rate critical (> 10 %)
/api/v1/sales slow for 1.5 min in every  2:30:00 - 2:48:00   300 s - 336 s     slow-response FLAPPING
3 (latency flapping around 2 s)
=======================================  ==================  ================  =======================

At speed 30 the critical "down" alert fires about 11 s after start and resolves at 14 s; the
error-rate warning needs 20 (scenario) minutes above 5 % and fires at about 55 s.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Literal, NamedTuple

DEFAULT_SPEED = 30.0
"""Compression that makes every built-in alert fire within 30 s of start."""
DEFAULT_SEED = 1
CYCLE_S = 18000.0
"""Length of one scenario cycle, in scenario seconds."""
DROP = 0
"""Status meaning "close the connection without answering"."""

Kind = Literal["outage", "slow", "errors"]

HEALTH = "/test/health"
SALES = "/api/v1/sales"
WORKER_STEPS = "/api/v1/worker/steps"
PRODUCTS = "/api/v1/products"
AUTH_LOGIN = "/api/v1/auth/login"
AUTH_ME = "/api/v1/auth/me"
BUSINESSES = "/api/v1/businesses"

# Normal latency per endpoint, real seconds: (floor, mean of the exponential noise on top).
_BASE_LATENCY: dict[str, tuple[float, float]] = {
    HEALTH: (0.003, 0.004),
    SALES: (0.035, 0.030),
    WORKER_STEPS: (0.025, 0.025),
    PRODUCTS: (0.020, 0.020),
    AUTH_LOGIN: (0.060, 0.040),
    AUTH_ME: (0.010, 0.008),
    BUSINESSES: (0.015, 0.010),
}
_DEFAULT_LATENCY = (0.010, 0.010)


@dataclass(frozen=True)
class Incident:
    """One scripted incident on one endpoint during ``[start, end)`` scenario seconds of a cycle."""

    endpoint: str
    kind: Kind
    start: float
    end: float
    label: str
    error_every: int = 0
    """errors: every n-th request answers 500."""
    slow_range: tuple[float, float] = (0.0, 0.0)
    """slow: real response time range, seconds."""
    drop_share: float = 0.0
    """outage: share of requests whose connection is dropped instead of answered 503."""
    pulse: tuple[float, float] | None = None
    """(on, off) scenario seconds: the incident comes and goes within ``[start, end)`` (flapping)."""

    def active(self, t_cycle: float) -> bool:
        if not self.start <= t_cycle < self.end:
            return False
        if self.pulse is None:
            return True
        on, off = self.pulse
        return (t_cycle - self.start) % (on + off) < on


TIMELINE: tuple[Incident, ...] = (
    Incident(WORKER_STEPS, "outage", 15.0, 420.0, "worker steps down (503, dropped connections)",
             drop_share=0.25),
    Incident(SALES, "slow", 30.0, 270.0, "sales slow (2.2-2.9 s)", slow_range=(2.2, 2.9)),
    Incident(PRODUCTS, "errors", 60.0, 2400.0, "products errors ~8 %", error_every=13),
    Incident(PRODUCTS, "errors", 2400.0, 3300.0, "products errors 25 %", error_every=4),
    Incident(SALES, "slow", 9000.0, 10080.0, "sales latency flapping around 2 s", slow_range=(2.2, 2.9),
             pulse=(90.0, 90.0)),
)  # fmt: skip


class Response(NamedTuple):
    status: int
    """HTTP status, or :data:`DROP` to close the connection without a response."""
    delay_s: float
    """Real seconds to wait before answering."""


class Scenario:
    """``Scenario(seed, speed).behaviour(endpoint, t_real)`` -> what the fake backend answers.

    ``t_real`` is real seconds since the demo started. Everything is a pure function of
    ``(seed, speed, endpoint, t_real, seq)``: the same inputs always give the same answer.
    """

    def __init__(
        self,
        seed: int = DEFAULT_SEED,
        speed: float = DEFAULT_SPEED,
        timeline: tuple[Incident, ...] = TIMELINE,
    ) -> None:
        if not speed > 0:
            raise ValueError(f"speed must be greater than zero, got {speed!r}")
        self.seed = int(seed)
        self.speed = float(speed)
        self.timeline = timeline

    def scenario_time(self, t_real: float) -> float:
        return max(0.0, t_real) * self.speed

    def real_time(self, t_scenario: float) -> float:
        return t_scenario / self.speed

    @property
    def cycle_real_s(self) -> float:
        return CYCLE_S / self.speed

    def incidents_at(self, t_real: float, endpoint: str | None = None) -> tuple[Incident, ...]:
        t_cycle = self.scenario_time(t_real) % CYCLE_S
        path = _normalise(endpoint) if endpoint is not None else None
        return tuple(
            inc for inc in self.timeline if inc.active(t_cycle) and (path is None or inc.endpoint == path)
        )

    def outage_at(self, t_real: float) -> bool:
        return any(inc.kind == "outage" for inc in self.incidents_at(t_real))

    def phase_at(self, t_real: float) -> str:
        """``"normal"`` or the active incidents, e.g. ``"worker steps down (503...); sales slow (...)"``."""
        labels = [inc.label for inc in self.incidents_at(t_real)]
        return "; ".join(labels) if labels else "normal"

    def behaviour(self, endpoint: str, t_real: float, seq: int | None = None) -> Response:
        """Status and real delay for a request to ``endpoint`` at ``t_real``.

        ``seq`` is the request's number for this endpoint (0, 1, 2 ...); when given, error
        bursts fail exactly every n-th request, so a probe-measured error rate is steady.
        """
        path = _normalise(endpoint)
        rng = random.Random(f"{self.seed}|{path}|{round(t_real * 1000)}|{seq}")
        floor, noise = _BASE_LATENCY.get(path, _DEFAULT_LATENCY)
        delay = floor + rng.expovariate(1.0 / noise)
        status = 200
        for incident in self.incidents_at(t_real, path):
            if incident.kind == "outage":
                status = DROP if rng.random() < incident.drop_share else 503
                delay = 0.002 + rng.random() * 0.01
            elif incident.kind == "slow":
                low, high = incident.slow_range
                delay = low + rng.random() * (high - low)
            elif incident.kind == "errors" and incident.error_every > 0:
                if seq is not None:
                    failing = seq % incident.error_every == incident.error_every - 1
                else:
                    failing = rng.random() < 1.0 / incident.error_every
                if failing:
                    status = 500
        return Response(status, round(delay, 4))

    def describe(self) -> str:
        """The timeline in real seconds at this speed, one incident a line."""
        lines = [f"scenario seed {self.seed}, speed {self.speed:g}x, cycle {self.cycle_real_s:g} s real"]
        for inc in self.timeline:
            pulse = ""
            if inc.pulse is not None:
                on, off = (self.real_time(p) for p in inc.pulse)
                pulse = f" ({on:g} s on, {off:g} s off)"
            lines.append(
                f"  {self.real_time(inc.start):6.1f} s - {self.real_time(inc.end):6.1f} s  "
                f"{inc.endpoint}: {inc.label}{pulse}"
            )
        return "\n".join(lines)


def _normalise(endpoint: str) -> str:
    path = endpoint.split("?", 1)[0]
    return path.rstrip("/") or "/"
