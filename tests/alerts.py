"""Alerts for the channel tests (Slack, email, PagerDuty, webhooks): one alert as the notifiers
receive it, and the real engine and outbox with a controlled clock."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from core.alerting import AlertEngine, MetricSample
from core.config import Config
from core.db import Database
from core.notify.base import AlertInfo
from core.notify.delivery import Deliverer
from tests.waiting import until

T0 = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
RUNBOOK = "Check the POS backend process; GET /test/health must answer 200."


def alert_info(scope: str = "checkout", **kw: Any) -> AlertInfo:
    """'api-down' firing on `scope` since T0 for 5m 12s; any field can be overridden."""
    base: dict[str, Any] = dict(
        rule="api-down",
        scope=scope,
        severity="critical",
        metric="endpoint.down_for",
        value=312.0,
        value_text="5m 12s",
        threshold_text="> 5m",
        description="Endpoint down for more than 5 minutes",
        runbook=RUNBOOK,
        started_at=T0,
        fired_at=T0,
    )
    return AlertInfo(**(base | kw))


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
