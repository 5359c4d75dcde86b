"""The config sections (database, endpoints, probes, metrics, triage, sentry, logging, ui) and
:class:`Config`, the root that holds them with the alert and notification sections."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field, model_validator

from core.config.alerts import DEFAULT_RULES, AlertsConfig
from core.config.errors import LocatedValueError, suggest
from core.config.notifications import NotificationsConfig
from core.config.types import (
    Dsn,
    Headers,
    HttpMethod,
    HttpUrl,
    Identifier,
    JsonScalar,
    LogLevel,
    Name,
    OptionalHttpUrl,
    OptionalSecretUrl,
    PositiveDuration,
    ScreenName,
    Section,
    Size,
    StatusSet,
    check_url_auth,
)
from core.durations import parse_duration

__all__ = [
    "Config",
    "DatabaseConfig",
    "Endpoint",
    "JsonFieldCheck",
    "LoggingConfig",
    "MetricConfig",
    "ProbesConfig",
    "RedriveConfig",
    "SentryConfig",
    "TablesConfig",
    "TriageConfig",
    "UiConfig",
    "WallConfig",
]

# --------------------------------------------------------------------------- database


class TablesConfig(Section):
    """Real names of the monitored app's tables (logical name -> table in ``app_schema``)."""

    businesses: Identifier = "businesses"
    """Businesses (tenants) table."""
    social_channels: Identifier = "social_channels"
    """Messaging channels (WhatsApp, Instagram, ...) per business."""
    social_messages: Identifier = "social_messages"
    """Outbound messages; a redrive sets a row back to pending."""
    event_failures: Identifier = "event_failures"
    """Failed system events (seed DDL)."""
    dead_letter_messages: Identifier = "dead_letter_messages"
    """Dead-letter queue of messages that exhausted their retries (seed DDL)."""


class DatabaseConfig(Section):
    """The monitored PostgreSQL (opswatch keeps its own tables in schema ``opswatch`` there too)."""

    dsn: Dsn = None
    """postgresql:// URL; None means an embedded PostgreSQL (demo and tests)."""
    pool_min: int = Field(1, ge=0)
    """Connections kept open in the pool."""
    pool_max: int = Field(5, ge=1)
    """Upper bound of pool connections."""
    statement_timeout: PositiveDuration = 5.0
    """Server-side statement timeout for every opswatch query."""
    connect_timeout: PositiveDuration = 5.0
    """Timeout for establishing one connection."""
    app_schema: Identifier = "public"
    """Schema holding the app's tables."""
    tables: TablesConfig = TablesConfig()
    """Logical table name -> real table name."""
    columns: dict[str, dict[str, Identifier]] = Field(default_factory=dict)
    """Per-table column overrides: {logical table: {logical column: real column}}."""

    @model_validator(mode="after")
    def _check(self) -> DatabaseConfig:
        if self.pool_min > self.pool_max:
            raise LocatedValueError(("pool_min",), f"must not exceed pool_max ({self.pool_max})")
        known = list(TablesConfig.model_fields)
        for table in self.columns:
            if table not in known:
                raise LocatedValueError(
                    ("columns", table), f"unknown table {table!r}" + suggest(table, known)
                )
        return self

    def table(self, logical: str) -> str:
        """The real name of a logical table (e.g. ``"dead_letter_messages"``)."""
        return str(getattr(self.tables, logical))

    def column(self, table: str, logical: str) -> str:
        """The real name of a column: the override from ``columns`` or the logical name."""
        return self.columns.get(table, {}).get(logical, logical)


# --------------------------------------------------------------------------- endpoints and probes


class ProbesConfig(Section):
    """Probe scheduler defaults and history."""

    interval: PositiveDuration = 30.0
    """Default time between two probes of one endpoint."""
    timeout: PositiveDuration = 5.0
    """Default per-request timeout."""
    max_concurrency: int = Field(200, ge=1)
    """Probes in flight at once, over all endpoints."""
    window: PositiveDuration = 300.0
    """Rolling window for error rate and latency quantiles."""
    down_after: int = Field(2, ge=1)
    """Failed probes in a row before an endpoint shows DOWN (one failure shows FAILING); down-since
    and `endpoint.down_for` still count from the first failure."""
    retention: PositiveDuration = 7 * 86400.0
    """How long probe samples are kept in opswatch.probe_samples."""
    flush_interval: PositiveDuration = 5.0
    """How often buffered samples are written to the database."""


class JsonFieldCheck(Section):
    """A probe passes only if the JSON body has ``path`` equal to ``equals``."""

    path: str = Field(min_length=1)
    """Dotted path into the JSON body, e.g. ``status`` or ``checks.db.status`` (digits index lists)."""
    equals: JsonScalar
    """Expected value (string, number, boolean or null)."""


class Endpoint(Section):
    """One HTTP endpoint of the POS backend to probe."""

    name: Name
    """Unique name, shown in the UI and used in rule scopes."""
    url: HttpUrl
    """http:// or https:// URL to request."""
    method: HttpMethod = "GET"
    """HTTP method."""
    headers: Headers = Field(default_factory=dict)
    """Request headers; use ${VAR} for secrets (masked in `config check`; empty values are not sent)."""
    interval: PositiveDuration = 30.0
    """Time between probes (default: probes.interval)."""
    timeout: PositiveDuration = 5.0
    """Request timeout (default: probes.timeout)."""
    expect_status: StatusSet = frozenset(range(200, 300))
    """Accepted status codes: 200, "2xx", "200-204" or a list of them (default 2xx)."""
    body_contains: str | None = None
    """Substring the response body must contain."""
    json_field: JsonFieldCheck | None = None
    """JSON field check, e.g. {path: status, equals: ok}."""
    verify_tls: bool = True
    """Verify TLS certificates."""
    follow_redirects: bool = False
    """Follow 3xx redirects instead of judging the redirect response."""
    service: Name = "api"
    """Service group, for dependency suppression between alerts."""

    @model_validator(mode="after")
    def _check(self) -> Endpoint:
        check_url_auth(f"endpoint {self.name!r} ", self.url, self.headers)
        return self

    def accepts_status(self, status: int) -> bool:
        """True if ``status`` is one of ``expect_status``."""
        return status in self.expect_status


class MetricConfig(Section):
    """A user-defined SQL metric: one numeric value, run read-only with the statement timeout."""

    name: Annotated[str, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")]
    """Unique name; rules refer to it as ``custom.<name>``."""
    sql: str = Field(min_length=1)
    """SELECT returning one row with one numeric column."""
    interval: PositiveDuration = 60.0
    """How often the query runs."""
    unit: str = ""
    """Unit shown next to the value (e.g. "%")."""
    description: str = ""
    """What the value means."""


# --------------------------------------------------------------------------- triage, sentry, logging, ui


class RedriveConfig(Section):
    """How a retried dead letter or event is sent again."""

    mode: Literal["sql", "http"] = "sql"
    """sql: reset the social_messages row and pg_notify; http: POST the payload to replay_url."""
    replay_url: OptionalHttpUrl = None
    """Backend replay endpoint (required for mode http)."""
    timeout: PositiveDuration = 10.0
    """HTTP timeout of one replay."""
    headers: Headers = Field(default_factory=dict)
    """Headers for replay requests (e.g. Authorization)."""

    @model_validator(mode="after")
    def _check(self) -> RedriveConfig:
        check_url_auth("", self.replay_url, self.headers, "replay_url")
        if self.mode == "http" and self.replay_url is None:
            raise LocatedValueError(
                ("replay_url",), "required when mode is 'http' (the backend's replay URL)"
            )
        return self


class TriageConfig(Section):
    """Dead-letter and event-failure actions."""

    actor: str | None = None
    """Name recorded in the audit log (default: OS user@host)."""
    redrive: RedriveConfig = RedriveConfig()
    """Redrive settings."""
    batch_size: int = Field(500, ge=1)
    """Rows per transaction in bulk actions."""
    rate_limit: float | None = Field(None, gt=0)
    """Maximum redrives per second (None: unlimited)."""
    confirm_typed_over: int = Field(1000, ge=0)
    """Bulk actions over this many rows ask the operator to type the count."""


class SentryConfig(Section):
    """Error tracking of opswatch itself (enabled when dsn is set)."""

    dsn: OptionalSecretUrl = None
    """Sentry DSN; a secret."""
    environment: str = "production"
    """Sentry environment tag."""
    traces_sample_rate: float = Field(0.1, ge=0, le=1)
    """Share of transactions traced (0..1)."""
    release: str | None = None
    """Release name (default: the opswatch package version)."""

    @property
    def enabled(self) -> bool:
        """True when a DSN is configured."""
        return self.dsn is not None


class LoggingConfig(Section):
    """JSON-lines log files (combined.log and error.log)."""

    level: LogLevel = "INFO"
    """Minimum level; the LOG_LEVEL environment variable overrides it."""
    directory: str = "logs"
    """Directory of the log files (relative to the working directory)."""
    rotation: Size = 5 * 1024 * 1024
    """Rotate a file when it reaches this size."""
    retention: int = Field(5, ge=1)
    """Rotated files kept per log."""
    service: str = "opswatch"
    """`service` field of every record."""
    environment: str = "production"
    """`environment` field of every record."""


class WallConfig(Section):
    """Wall-screen mode (``--wall``)."""

    cycle_interval: PositiveDuration = 15.0
    """Time each screen is shown."""
    screens: tuple[ScreenName, ...] = Field(("overview", "endpoints", "alerts"), min_length=1)
    """Screens cycled through, in order."""


class UiConfig(Section):
    """The Textual console."""

    refresh_interval: PositiveDuration = 1.0
    """How often the screens refresh."""
    theme: Literal["dark", "light", "high-contrast"] = "dark"
    """Colour theme."""
    read_only: bool = False
    """Hide and refuse every mutating action."""
    wall: WallConfig = WallConfig()
    """Wall-screen mode."""
    keymap: dict[str, str] = Field(default_factory=dict)
    """Key remapping: binding id -> keys (comma-separated)."""


# --------------------------------------------------------------------------- root


class Config(Section):
    """The whole opswatch configuration."""

    database: DatabaseConfig = DatabaseConfig()
    """The monitored PostgreSQL."""
    endpoints: tuple[Endpoint, ...] = ()
    """HTTP endpoints to probe."""
    probes: ProbesConfig = ProbesConfig()
    """Probe defaults."""
    metrics: tuple[MetricConfig, ...] = ()
    """Custom SQL metrics."""
    alerts: AlertsConfig = AlertsConfig()
    """Alert rules and evaluation."""
    notifications: NotificationsConfig = NotificationsConfig()
    """Notification channels."""
    triage: TriageConfig = TriageConfig()
    """DLQ and event-failure triage."""
    sentry: SentryConfig = SentryConfig()
    """Sentry error tracking."""
    logging: LoggingConfig = LoggingConfig()
    """Log files."""
    ui: UiConfig = UiConfig()
    """The console."""

    @model_validator(mode="before")
    @classmethod
    def _inherit_defaults(cls, data: Any) -> Any:
        """Endpoints inherit probes.interval/timeout; omitted rules become DEFAULT_RULES."""
        return _with_default_rules(_with_probe_timing(data)) if isinstance(data, dict) else data

    @model_validator(mode="after")
    def _check(self) -> Config:
        names = [endpoint.name for endpoint in self.endpoints]
        for i, name in enumerate(names):
            if name in names[:i]:
                raise LocatedValueError(
                    ("endpoints", i, "name"),
                    f"duplicate endpoint name {name!r} (also endpoints[{names.index(name)}])",
                )
        metric_names = [metric.name for metric in self.metrics]
        for i, name in enumerate(metric_names):
            if name in metric_names[:i]:
                raise LocatedValueError(("metrics", i, "name"), f"duplicate metric name {name!r}")
        for i, rule in enumerate(self.alerts.rules):
            if rule.scope not in (None, "*") and rule.scope not in names:
                raise LocatedValueError(
                    ("alerts", "rules", i, "scope"),
                    f"unknown endpoint {rule.scope!r}" + suggest(rule.scope, names),
                )
            if rule.metric.startswith("custom.") and rule.metric[7:] not in metric_names:
                raise LocatedValueError(
                    ("alerts", "rules", i, "metric"),
                    f"no custom metric named {rule.metric[7:]!r} under metrics"
                    + suggest(rule.metric[7:], metric_names),
                )
        return self

    def endpoint(self, name: str) -> Endpoint:
        """The endpoint called ``name`` (KeyError if none)."""
        for endpoint in self.endpoints:
            if endpoint.name == name:
                return endpoint
        raise KeyError(name)


def _with_probe_timing(data: dict[str, Any]) -> dict[str, Any]:
    """Endpoints without their own interval/timeout take those of ``probes``."""
    probes = data.get("probes")
    inherited = {
        key: probes[key]
        for key in ("interval", "timeout")
        if isinstance(probes, dict) and _is_positive_duration(probes.get(key))
    }
    endpoints = data.get("endpoints")
    if not inherited or not isinstance(endpoints, list):
        return data
    return {
        **data,
        "endpoints": [
            {**item, **{k: v for k, v in inherited.items() if item.get(k) is None}}
            if isinstance(item, dict)
            else item
            for item in endpoints
        ],
    }


def _is_positive_duration(value: Any) -> bool:
    try:
        return value is not None and parse_duration(value) > 0
    except ValueError:
        return False  # reported at probes.<key>


def _with_default_rules(data: dict[str, Any]) -> dict[str, Any]:
    """Omitted ``alerts.rules``: the seed's rules, custom-metric ones only when that metric is defined."""
    alerts = data.get("alerts") if data.get("alerts") is not None else {}
    if not isinstance(alerts, dict) or "rules" in alerts:
        return data
    metrics: list[Any] = data["metrics"] if isinstance(data.get("metrics"), list) else []
    defined = {m.get("name") for m in metrics if isinstance(m, dict)}
    rules = [r for r in DEFAULT_RULES if not r.metric.startswith("custom.") or r.metric[7:] in defined]
    return {**data, "alerts": {**alerts, "rules": rules}}
