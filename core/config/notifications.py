"""Notification sections: Slack, PagerDuty, email, generic webhooks and the shared outbox."""

from __future__ import annotations

from typing import Any

from pydantic import Field, model_validator

from core.config.errors import LocatedValueError
from core.config.types import (
    Email,
    Headers,
    HttpUrl,
    Name,
    OptionalSecret,
    OptionalSecretUrl,
    PositiveDuration,
    SecretUrl,
    Section,
    Severity,
    check_url_auth,
)
from core.durations import format_duration

__all__ = [
    "EmailConfig",
    "NotificationsConfig",
    "OutboxConfig",
    "PagerDutyConfig",
    "SlackConfig",
    "SlackWebhooks",
    "WebhookConfig",
]


class SlackWebhooks(Section):
    """Incoming-webhook URL per severity; a severity without one uses ``default``."""

    critical: OptionalSecretUrl = None
    """Webhook for critical alerts."""
    warning: OptionalSecretUrl = None
    """Webhook for warning alerts."""
    info: OptionalSecretUrl = None
    """Webhook for info messages (tests, resolved notices if routed here)."""
    default: OptionalSecretUrl = None
    """Fallback webhook for any severity without its own."""

    def for_severity(self, severity: str) -> str | None:
        """The webhook for ``severity``, falling back to ``default``."""
        url: str | None = (
            getattr(self, severity, None) if severity in ("critical", "warning", "info") else None
        )
        return url or self.default


class SlackConfig(Section):
    """Slack incoming webhooks."""

    enabled: bool = False
    """Send to Slack (default: true when any webhook is set)."""
    webhooks: SlackWebhooks = SlackWebhooks()
    """Routing per severity."""
    username: str = "opswatch"
    """Sender name shown in Slack."""
    timeout: PositiveDuration = 5.0
    """HTTP timeout of one delivery."""

    @model_validator(mode="before")
    @classmethod
    def _default_enabled(cls, data: Any) -> Any:
        if isinstance(data, dict) and data.get("enabled") is None:
            hooks = data.get("webhooks")
            configured = isinstance(hooks, dict) and any(
                isinstance(v, str) and v.strip() for v in hooks.values()
            )
            return {**data, "enabled": configured}
        return data

    @model_validator(mode="after")
    def _check(self) -> SlackConfig:
        hooks = self.webhooks
        if self.enabled and not any((hooks.critical, hooks.warning, hooks.info, hooks.default)):
            raise LocatedValueError(("enabled",), "Slack is enabled but no webhook URL is set under webhooks")
        return self


class OutboxConfig(Section):
    """Persistent notification outbox: retries with exponential backoff, then dead-letter."""

    max_attempts: int = Field(8, ge=1)
    """Delivery attempts before a notification is dead-lettered."""
    backoff_initial: PositiveDuration = 2.0
    """Delay before the first retry (doubles each time, with jitter)."""
    backoff_max: PositiveDuration = 300.0
    """Upper bound of the retry delay."""
    poll_interval: PositiveDuration = 1.0
    """How often the outbox is checked for due deliveries."""
    lease: PositiveDuration = 10.0
    """How long an instance owns a delivery before another may take it over (keep it near
    two evaluation intervals so a dead sender's deliveries are taken over quickly)."""

    @model_validator(mode="after")
    def _check(self) -> OutboxConfig:
        if self.backoff_max < self.backoff_initial:
            raise LocatedValueError(
                ("backoff_max",),
                f"must be at least backoff_initial ({format_duration(self.backoff_initial)})",
            )
        return self


class PagerDutyConfig(Section):
    """PagerDuty Events API v2 (enabled when routing_key is set)."""

    routing_key: OptionalSecret = None
    """Integration (routing) key; a secret."""
    url: HttpUrl = "https://events.pagerduty.com/v2/enqueue"
    """Events API endpoint."""
    severities: tuple[Severity, ...] = ("critical",)
    """Severities sent to PagerDuty."""
    timeout: PositiveDuration = 10.0
    """HTTP timeout of one delivery."""

    @property
    def enabled(self) -> bool:
        """True when a routing key is configured."""
        return self.routing_key is not None


class EmailConfig(Section):
    """Email over SMTP (enabled when smtp_host is set)."""

    smtp_host: str | None = None
    """SMTP server host name."""
    smtp_port: int = Field(587, ge=1, le=65535)
    """SMTP port."""
    starttls: bool = True
    """Upgrade the connection with STARTTLS."""
    username: str | None = None
    """SMTP login user."""
    password: OptionalSecret = None
    """SMTP password; a secret."""
    sender: Email | None = None
    """From address."""
    recipients: tuple[Email, ...] = ()
    """To addresses."""
    severities: tuple[Severity, ...] = ("warning", "critical")
    """Severities sent by email."""
    timeout: PositiveDuration = 10.0
    """SMTP timeout."""

    @model_validator(mode="after")
    def _check(self) -> EmailConfig:
        if self.smtp_host is not None:
            if self.sender is None:
                raise LocatedValueError(("sender",), "required when smtp_host is set")
            if not self.recipients:
                raise LocatedValueError(
                    ("recipients",), "at least one recipient is required when smtp_host is set"
                )
        return self

    @property
    def enabled(self) -> bool:
        """True when an SMTP host is configured."""
        return self.smtp_host is not None


class WebhookConfig(Section):
    """A generic JSON webhook notifier."""

    name: Name
    """Unique name."""
    url: SecretUrl
    """Where the JSON is POSTed (masked in `config check`)."""
    severities: tuple[Severity, ...] = ("warning", "critical")
    """Severities sent to this webhook."""
    headers: Headers = Field(default_factory=dict)
    """Extra request headers (e.g. Authorization: Bearer ${TOKEN})."""
    timeout: PositiveDuration = 10.0
    """HTTP timeout of one delivery."""

    @model_validator(mode="after")
    def _check(self) -> WebhookConfig:
        check_url_auth(f"webhook {self.name!r} ", self.url, self.headers)
        return self


class NotificationsConfig(Section):
    """Where alerts go."""

    slack: SlackConfig = SlackConfig()
    """Slack incoming webhooks."""
    outbox: OutboxConfig = OutboxConfig()
    """Delivery retries (shared by every notifier)."""
    pagerduty: PagerDutyConfig = PagerDutyConfig()
    """PagerDuty Events API v2."""
    email: EmailConfig = EmailConfig()
    """Email over SMTP."""
    webhook: tuple[WebhookConfig, ...] = ()
    """Generic JSON webhooks."""

    @model_validator(mode="after")
    def _check(self) -> NotificationsConfig:
        names = [hook.name for hook in self.webhook]
        for i, name in enumerate(names):
            if name in names[:i]:
                raise LocatedValueError(("webhook", i, "name"), f"duplicate webhook name {name!r}")
        return self
