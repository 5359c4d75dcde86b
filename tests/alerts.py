"""Alerts for the channel tests (Slack, email, PagerDuty, webhooks): one alert as the notifiers
receive it, and the real engine and outbox with a controlled clock."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

from core.alerting import AlertEngine, MetricSample
from core.config import Config
from core.db import Database, PoolSettings
from core.notify.base import AlertInfo
from core.notify.delivery import Deliverer
from tests.waiting import until

T0 = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
RUNBOOK = "Check the POS backend process; GET /test/health must answer 200."
API_DOWN_RULE = {
    "name": "api-down",
    "metric": "endpoint.down_for",
    "critical": 0,
    "for": 0,
    "description": "Endpoint down",
}
"""The rule the outbox tests fire: any endpoint down at all, at once."""


ALERT: dict[str, Any] = dict(
    rule="api-down", severity="critical", metric="endpoint.down_for",
    value=312.0, value_text="5m 12s", threshold_text="> 5m",
    description="Endpoint down for more than 5 minutes", runbook=RUNBOOK,
    started_at=T0, fired_at=T0,
)  # fmt: skip


def alert_info(scope: str = "checkout", **kw: Any) -> AlertInfo:
    """'api-down' firing on `scope` since T0 for 5m 12s (``ALERT``); any field can be overridden."""
    return AlertInfo(**(ALERT | {"scope": scope} | kw))


class Clock:
    """A test clock: ``at(seconds)`` moves it to ``t0`` + seconds; calling it tells the time."""

    def __init__(self) -> None:
        self.now = datetime.now(UTC).replace(microsecond=0)
        self.t0 = self.now

    def __call__(self) -> datetime:
        return self.now

    def at(self, seconds: float) -> datetime:
        self.now = self.t0 + timedelta(seconds=seconds)
        return self.now


class Rig:
    """The real engine and deliverer of one opswatch instance on one database, with a controlled clock."""

    def __init__(self, db: Database, config: Config, name: str = "one") -> None:
        self.t0 = datetime.now(UTC).replace(microsecond=0)
        self.now = self.t0
        self.engine = AlertEngine(db, config, instance_id=name, clock=lambda: self.now)
        self.deliverer = Deliverer(db, config, instance_id=name)

    async def step(self, seconds: float, samples: list[MetricSample]) -> int:
        """Evaluate `samples` at t0 + `seconds`; how many notifications went out."""
        self.now = self.t0 + timedelta(seconds=seconds)
        await self.engine.evaluate(samples, self.now)
        return await self.deliverer.deliver_due()

    async def deliver_until(self, count: int, within: float = 5.0) -> None:
        """Run delivery passes until `count` more notifications went out (retries wait a backoff)."""
        delivered = 0

        async def done() -> bool:
            nonlocal delivered
            delivered += await self.deliverer.deliver_due()
            return delivered >= count

        await until(done, within, what=f"{count} notification(s) delivered")

    async def close(self) -> None:
        await self.deliverer.stop()

    async def __aenter__(self) -> Rig:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()


def mrkdwn_fields(*texts: str) -> list[dict[str, str]]:
    """A Slack section's ``fields``, as the expected side of an exact Block Kit comparison."""
    return [{"type": "mrkdwn", "text": text} for text in texts]


@contextlib.asynccontextmanager
async def instances(
    dsn: str, config: Config, clock: Clock, count: int = 2
) -> AsyncIterator[list[AlertEngine]]:
    """``count`` opswatch instances on one database, each with its own pool and a running deliverer."""
    pools = [Database(dsn, PoolSettings(min_size=1, max_size=4)) for _ in range(count)]
    engines = [AlertEngine(p, config, instance_id=f"i{n}", clock=clock) for n, p in enumerate(pools)]
    deliverers = [Deliverer(p, config, instance_id=f"i{n}") for n, p in enumerate(pools)]
    await asyncio.gather(*(d.start() for d in deliverers))
    try:
        yield engines
    finally:
        await asyncio.gather(*(d.stop() for d in deliverers))
        for pool in pools:
            await pool.close()


async def play(
    engines: list[AlertEngine], clock: Clock, timeline: list[tuple[float, list[MetricSample]]]
) -> None:
    """Every instance evaluates each step of ``timeline`` at the same (test clock) time."""
    for seconds, samples in timeline:
        now = clock.at(seconds)
        await asyncio.gather(*(e.evaluate(samples, now) for e in engines))
        await asyncio.sleep(0.06)  # paced like live ticks: deliveries interleave with evaluations
