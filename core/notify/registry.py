"""The configured notifiers, keyed by channel. Add PagerDuty, email, webhooks here."""

from __future__ import annotations

import httpx

from core.config import Config
from core.notify.base import Notifier
from core.notify.slack import SlackNotifier

__all__ = ["build_notifiers"]


def build_notifiers(config: Config, http: httpx.AsyncClient | None = None) -> dict[str, Notifier]:
    """Every notifier that is enabled in ``config``; ``http`` is only needed to send."""
    notifiers: dict[str, Notifier] = {}
    if config.notifications.slack.enabled:
        notifiers["slack"] = SlackNotifier(config.notifications.slack, http)
    return notifiers


def send_timeout(config: Config) -> float:
    """The longest single-delivery timeout of the enabled notifiers."""
    timeouts = [config.notifications.slack.timeout]
    return max(timeouts)
