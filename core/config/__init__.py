"""opswatch configuration: YAML -> a typed, validated, frozen model.

* ``load_config(path)`` reads YAML (safe loader) with ``${VAR}`` / ``${VAR:-default}`` interpolation,
  validates it and raises :class:`ConfigError` (one line: ``file:line: key: message``) on bad input.
* Durations are float seconds (``"500ms"``, ``"30s"``, ``"5m"``, ``"1h"``, ``"1d"`` or a number),
  sizes int bytes (``"5MB"``). Every section is optional; an empty key takes its default and an
  empty string means "not configured" for optional values.
* ``render_effective(config)`` prints the effective config with secrets masked;
  ``secret_values(config)`` lists every value typed ``Secret`` for the redaction registry.

Modules: ``types`` (field types, ``Secret``), ``sections``/``alerts``/``notifications`` (the
models), ``catalogue`` (metrics and default rules), ``source`` (YAML reading), ``explain``
(validation errors), ``load``, ``render``, ``secrets``. The masking helpers live in
:mod:`core.redact` and are re-exported here for existing imports.
"""

from core.config.alerts import DEFAULT_RULES, AlertRule, AlertsConfig, FlappingConfig
from core.config.catalogue import METRICS
from core.config.errors import ConfigError, LocatedValueError, format_key, iter_errors
from core.config.load import default_config, find_config_path, load_config, loads_config
from core.config.notifications import (
    EmailConfig,
    NotificationsConfig,
    OutboxConfig,
    PagerDutyConfig,
    SlackConfig,
    SlackWebhooks,
    WebhookConfig,
)
from core.config.render import render_effective
from core.config.secrets import header_secrets, register_secrets, secret_values
from core.config.sections import (
    Config,
    DatabaseConfig,
    Endpoint,
    JsonFieldCheck,
    LoggingConfig,
    MetricConfig,
    ProbesConfig,
    RedriveConfig,
    SentryConfig,
    TablesConfig,
    TriageConfig,
    UiConfig,
    WallConfig,
)
from core.config.types import Secret, Severity
from core.redact import is_secret_header, mask_dsn, mask_url, mask_url_credentials

__all__ = [
    "DEFAULT_RULES",
    "METRICS",
    "AlertRule",
    "AlertsConfig",
    "Config",
    "ConfigError",
    "DatabaseConfig",
    "EmailConfig",
    "Endpoint",
    "FlappingConfig",
    "JsonFieldCheck",
    "LocatedValueError",
    "LoggingConfig",
    "MetricConfig",
    "NotificationsConfig",
    "OutboxConfig",
    "PagerDutyConfig",
    "ProbesConfig",
    "RedriveConfig",
    "Secret",
    "SentryConfig",
    "Severity",
    "SlackConfig",
    "SlackWebhooks",
    "TablesConfig",
    "TriageConfig",
    "UiConfig",
    "WallConfig",
    "WebhookConfig",
    "default_config",
    "find_config_path",
    "format_key",
    "header_secrets",
    "is_secret_header",
    "iter_errors",
    "load_config",
    "loads_config",
    "mask_dsn",
    "mask_url",
    "mask_url_credentials",
    "register_secrets",
    "render_effective",
    "secret_values",
]
