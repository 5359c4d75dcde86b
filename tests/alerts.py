"""One alert as the notifiers receive it, for the channel tests (Slack, email, PagerDuty, webhooks)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from core.notify.base import AlertInfo

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
