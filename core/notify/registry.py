"""The configured notifiers, keyed by channel: Slack, PagerDuty, email, generic webhooks."""

from __future__ import annotations

from collections.abc import Mapping

import httpx

from core.config import Config
from core.notify.base import Notifier
from core.notify.email import EmailNotifier
from core.notify.pagerduty import PagerDutyNotifier
from core.notify.slack import SlackNotifier
from core.notify.webhook import WebhookNotifier

__all__ = ["build_notifiers", "destinations", "notifiers_for", "send_timeout"]


def build_notifiers(config: Config, http: httpx.AsyncClient | None = None) -> dict[str, Notifier]:
    """Every notifier that is enabled in ``config``; ``http`` is only needed to send."""
    cfg = config.notifications
    notifiers: dict[str, Notifier] = {}
    if cfg.slack.enabled:
        notifiers["slack"] = SlackNotifier(cfg.slack, http)
    if cfg.pagerduty.enabled:
        notifiers["pagerduty"] = PagerDutyNotifier(cfg.pagerduty, http)
    if cfg.email.enabled:
        notifiers["email"] = EmailNotifier(cfg.email)
    if cfg.webhook:
        notifiers["webhook"] = WebhookNotifier(cfg.webhook, http)
    return notifiers


def notifiers_for(
    config: Config | None, given: Mapping[str, Notifier] | None = None, http: httpx.AsyncClient | None = None
) -> dict[str, Notifier]:
    """The notifiers a component works with: ``given`` (shared by its owner, or a test's) if any,
    else those ``config`` enables (none without a configuration)."""
    if given is not None:
        return dict(given)
    return build_notifiers(config, http) if config is not None else {}


def destinations(notifiers: Mapping[str, Notifier]) -> dict[str, str]:
    """Every route these notifiers can send to, with its destination fingerprint."""
    return {route: t for n in notifiers.values() for route, t in n.targets().items()}


def send_timeout(config: Config) -> float:
    """The longest single-delivery timeout of the enabled notifiers."""
    cfg = config.notifications
    timeouts = [cfg.slack.timeout] if cfg.slack.enabled else []
    if cfg.pagerduty.enabled:
        timeouts.append(cfg.pagerduty.timeout)
    if cfg.email.enabled:
        timeouts.append(cfg.email.timeout)
    timeouts.extend(hook.timeout for hook in cfg.webhook)
    return max(timeouts, default=cfg.slack.timeout)
