"""opswatch configuration: YAML -> a typed, validated, frozen model.

* ``load_config(path)`` reads YAML (safe loader) with ``${VAR}`` / ``${VAR:-default}`` interpolation,
  validates it and raises :class:`ConfigError` (one line: ``file:line: key: message``) on bad input.
* Durations are float seconds (``"500ms"``, ``"30s"``, ``"5m"``, ``"1h"``, ``"1d"`` or a number),
  sizes int bytes (``"5MB"``). Every section is optional; an empty key takes its default and an
  empty string means "not configured" for optional values.
* ``render_effective(config)`` prints the effective config with secrets masked;
  ``mask_url`` / ``mask_dsn`` are reusable for logs and telemetry.
"""

from __future__ import annotations

import functools
import os
import re
import types
import typing
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Annotated, Any, Literal, Union
from urllib.parse import parse_qsl, urlsplit

import pydantic
import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    SerializationInfo,
    model_validator,
)

from core.config_loader import (
    ConfigError,
    LocatedValueError,
    Secret,
    parse_yaml,
    read_yaml,
    suggest,
    validation_error,
)
from core.durations import format_duration, format_size, parse_duration, parse_size
from core.logging import LEVELS, normalise_level
from core.redact import (
    MASK,
    dsn_keyword_password,
    is_secret_header,
    mask_dsn,
    mask_url,
    mask_url_credentials,
    redact,
)

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
    "JsonFieldCheck",
    "LoggingConfig",
    "MetricConfig",
    "NotificationsConfig",
    "OutboxConfig",
    "PagerDutyConfig",
    "ProbesConfig",
    "RedriveConfig",
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
    "is_secret_header",
    "load_config",
    "loads_config",
    "mask_dsn",
    "mask_url",
    "mask_url_credentials",
    "render_effective",
    "secret_values",
]

Severity = Literal["critical", "warning", "info"]
ScreenName = Literal["overview", "endpoints", "dead_letters", "events", "alerts", "database", "audit"]

# --------------------------------------------------------------------------- masked serialisation


def _masking(info: SerializationInfo) -> bool:
    return isinstance(info.context, dict) and bool(info.context.get("mask_secrets"))


def _masked(mask: Callable[[str], str]) -> PlainSerializer:
    def serialize(value: str | None, info: SerializationInfo) -> str | None:
        return mask(value) if value is not None and _masking(info) else value

    return PlainSerializer(serialize)


def _drop_empty_headers(value: dict[str, str]) -> dict[str, str]:
    """A header whose value is empty (e.g. an unset ``${TOKEN:-}``) is not sent."""
    return {k: v for k, v in value.items() if v.strip()}


def _serialize_headers(value: dict[str, str], info: SerializationInfo) -> dict[str, str]:
    if not _masking(info):
        return dict(value)
    return {k: MASK if is_secret_header(k) else v for k, v in value.items()}


# --------------------------------------------------------------------------- field types


def _nonnegative_duration(value: object) -> float:
    seconds = parse_duration(value)
    if seconds < 0:
        raise ValueError(f"must not be negative, got {value!r}")
    return seconds


def _positive_duration(value: object) -> float:
    seconds = parse_duration(value)
    if seconds <= 0:
        raise ValueError(f"must be greater than zero, got {value!r}")
    return seconds


def _positive_size(value: object) -> int:
    size = parse_size(value)
    if size <= 0:
        raise ValueError(f"must be greater than zero, got {value!r}")
    return size


def _shown_url(text: str) -> str:
    """A bad URL as it may appear in an error: credentials and webhook tokens masked."""
    masked = mask_url(text)
    if masked != MASK:
        return masked
    if "://" in text:
        return redact(text)[:120]
    head, slash, _rest = text.partition("/")
    return redact(head + (f"/{MASK}" if slash else ""))[:120]


def _http_url(value: object) -> object:
    if value is None or not isinstance(value, str):
        return value  # None for optional fields; other types get pydantic's type error
    text = value.strip()
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError as exc:
        raise ValueError(f"invalid URL {_shown_url(text)!r}: {exc}") from None
    if parts.scheme not in ("http", "https"):
        raise ValueError(f"invalid URL {_shown_url(text)!r}: must start with http:// or https://")
    if not parts.hostname:
        raise ValueError(f"invalid URL {_shown_url(text)!r}: no host name")
    if any(ch.isspace() for ch in text) or port == 0:
        raise ValueError(f"invalid URL {_shown_url(text)!r}")
    return text


def _postgres_dsn(value: object) -> object:
    if value is None or not isinstance(value, str):
        return value
    text = value.strip()
    if "://" in text:
        parts = urlsplit(text)
        if parts.scheme not in ("postgres", "postgresql"):
            raise ValueError(f"invalid DSN {mask_dsn(text)!r}: must start with postgresql:// or postgres://")
        try:
            parts.port  # noqa: B018 - urlsplit validates the port lazily
        except ValueError as exc:
            raise ValueError(f"invalid DSN {mask_dsn(text)!r}: {exc}") from None
    elif "=" not in text:
        raise ValueError("invalid DSN: use postgresql://user:password@host:5432/dbname")
    return text


def _identifier(value: str) -> str:
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_$]{0,62}", value):
        raise ValueError(f"{value!r} is not a valid SQL identifier (letters, digits, _; at most 63)")
    return value


# C0, DEL, C1 and the bidi controls (marks, embeddings, overrides, isolates): a name reaches
# terminals, chat messages and pager titles, where these would hide or reorder text.
_NAME_CONTROLS = re.compile("[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def _name(value: str) -> str:
    text = value.strip()
    if not text or len(text) > 100 or _NAME_CONTROLS.search(text):
        raise ValueError(
            f"names must be 1-100 printable characters (no control or bidi characters), got {value!r}"
        )
    return text


def _check_url_auth(owner: str, url: str | None, headers: Mapping[str, str], key: str = "url") -> None:
    """HTTP clients refuse a request with both URL credentials and an Authorization header."""
    if url is None or not any(name.strip().lower() == "authorization" for name in headers):
        return
    if "@" in urlsplit(url).netloc:
        raise LocatedValueError(
            (key,),
            f"{owner}has credentials in the URL (user:password@) and an Authorization header; "
            "every request would fail: keep only one of them",
        )


def _log_level(value: object) -> object:
    """The same spellings as ``LOG_LEVEL`` (:func:`core.logging.resolve_level`)."""
    if not isinstance(value, str):
        return value
    level = normalise_level(value)
    if level is None:
        raise ValueError(f"invalid log level {value!r} (one of {', '.join(LEVELS).lower()})")
    return level


def _status_codes(value: object) -> object:
    """``200``, ``"2xx"``, ``"200-204"``, ``"200,301"`` or a list of those -> a frozenset of codes."""
    items: list[object]
    if isinstance(value, str):
        items = [part for part in value.split(",") if part.strip()]
    elif isinstance(value, list | tuple | set | frozenset):
        items = list(value)
    else:
        items = [value]
    codes: set[int] = set()
    for item in items:
        text = str(item).strip().lower()
        if isinstance(item, bool) or not re.fullmatch(r"\d{3}|[1-5]xx|\d{3}\s*-\s*\d{3}", text):
            raise ValueError(f"invalid status {item!r} (use 200, '2xx' or '200-204')")
        if text.endswith("xx"):
            codes.update(range(int(text[0]) * 100, int(text[0]) * 100 + 100))
        elif "-" in text:
            low, high = (int(p) for p in text.split("-"))
            codes.update(range(low, high + 1))
        else:
            codes.add(int(text))
    if not codes or min(codes) < 100 or max(codes) > 599:
        raise ValueError(f"status codes must be within 100-599, got {value!r}")
    return frozenset(codes)


def _compact_status(codes: frozenset[int]) -> list[int | str]:
    out: list[int | str] = []
    ordered = sorted(codes)
    i = 0
    while i < len(ordered):
        j = i
        while j + 1 < len(ordered) and ordered[j + 1] == ordered[j] + 1:
            j += 1
        low, high = ordered[i], ordered[j]
        while low <= high:
            if low % 100 == 0 and low + 99 <= high:
                out.append(f"{low // 100}xx")
                low += 100
            else:
                end = min(high, (low // 100) * 100 + 99) if high - low >= 99 else high
                out.append(low if end == low else f"{low}-{end}")
                low = end + 1
        i = j + 1
    return out


def _method(value: object) -> object:
    return value.strip().upper() if isinstance(value, str) else value


def _json_duration(value: float) -> str:
    return format_duration(value)


_DurationSer = PlainSerializer(_json_duration, return_type=str, when_used="json")
Duration = Annotated[float, BeforeValidator(_nonnegative_duration), _DurationSer]
PositiveDuration = Annotated[float, BeforeValidator(_positive_duration), _DurationSer]
Size = Annotated[int, BeforeValidator(_positive_size), PlainSerializer(format_size, when_used="json")]
# Secret(...) marks what is never echoed in a config error and what secret_values() registers.
HttpUrl = Annotated[str, BeforeValidator(_http_url), _masked(mask_url_credentials), Secret("credentials")]
OptionalHttpUrl = Annotated[
    str | None, BeforeValidator(_http_url), _masked(mask_url_credentials), Secret("credentials")
]
SecretUrl = Annotated[str, BeforeValidator(_http_url), _masked(mask_url), Secret("url")]
OptionalSecretUrl = Annotated[str | None, BeforeValidator(_http_url), _masked(mask_url), Secret("url")]
OptionalSecret = Annotated[str | None, _masked(lambda _: MASK), Secret("value")]
Dsn = Annotated[str | None, BeforeValidator(_postgres_dsn), _masked(mask_dsn), Secret("dsn")]
Headers = Annotated[
    dict[str, str],
    AfterValidator(_drop_empty_headers),
    PlainSerializer(_serialize_headers),
    Secret("headers"),
]
Identifier = Annotated[str, AfterValidator(_identifier)]
Name = Annotated[str, AfterValidator(_name)]
Email = Annotated[str, Field(pattern=r"^[^@\s]+@[^@\s]+$")]
StatusSet = Annotated[frozenset[int], BeforeValidator(_status_codes), PlainSerializer(_compact_status)]
HttpMethod = Annotated[
    Literal["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"], BeforeValidator(_method)
]
LogLevel = Annotated[str, BeforeValidator(_log_level)]
JsonScalar = str | int | float | bool | None


def _allows_none(annotation: Any) -> bool:
    while typing.get_origin(annotation) is Annotated:
        annotation = typing.get_args(annotation)[0]
    if typing.get_origin(annotation) in (Union, types.UnionType):
        return type(None) in typing.get_args(annotation)
    return annotation is None or annotation is type(None)


class _Model(BaseModel):
    """Base: unknown keys rejected, frozen, field docstrings become descriptions."""

    model_config = ConfigDict(
        extra="forbid",
        frozen=True,
        use_attribute_docstrings=True,
        validate_by_name=True,
        validate_by_alias=True,
        coerce_numbers_to_str=True,
    )

    @model_validator(mode="before")
    @classmethod
    def _empty_values(cls, data: Any) -> Any:
        """``key:`` (null) takes the default; ``key: ""`` means "not configured" for optional keys."""
        if not isinstance(data, dict):
            return data
        fields = _field_table(cls)
        out = dict(data)
        for key, value in data.items():
            spec = fields.get(str(key))
            if spec is None:
                continue
            allows_none, required = spec
            if value is None and not allows_none and not required:
                del out[key]
            elif isinstance(value, str) and allows_none and not value.strip():
                out[key] = None
        return out


@functools.cache
def _field_table(cls: type[BaseModel]) -> dict[str, tuple[bool, bool]]:
    table: dict[str, tuple[bool, bool]] = {}
    for name, info in cls.model_fields.items():
        spec = (_allows_none(info.annotation), info.is_required())
        table[name] = spec
        if info.alias:
            table[info.alias] = spec
    return table


# --------------------------------------------------------------------------- database


class TablesConfig(_Model):
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


class DatabaseConfig(_Model):
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


class ProbesConfig(_Model):
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


class JsonFieldCheck(_Model):
    """A probe passes only if the JSON body has ``path`` equal to ``equals``."""

    path: str = Field(min_length=1)
    """Dotted path into the JSON body, e.g. ``status`` or ``checks.db.status`` (digits index lists)."""
    equals: JsonScalar
    """Expected value (string, number, boolean or null)."""


class Endpoint(_Model):
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
        _check_url_auth(f"endpoint {self.name!r} ", self.url, self.headers)
        return self

    def accepts_status(self, status: int) -> bool:
        """True if ``status`` is one of ``expect_status``."""
        return status in self.expect_status


class MetricConfig(_Model):
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


# --------------------------------------------------------------------------- alerts

METRICS: dict[str, str] = {
    "endpoint.up": "1 while the endpoint's last probe succeeded, else 0",
    "endpoint.down_for": "seconds since the endpoint went down (0 while up)",
    "endpoint.latency_ms": "latency of the last probe, ms",
    "endpoint.latency_p50_ms": "median latency over probes.window, ms",
    "endpoint.latency_p95_ms": "95th percentile latency over probes.window, ms",
    "endpoint.latency_p99_ms": "99th percentile latency over probes.window, ms",
    "endpoint.error_rate": "failed probes over probes.window, percent (0-100)",
    "endpoint.uptime_1h": "uptime over the last hour, percent",
    "endpoint.uptime_24h": "uptime over the last 24 hours, percent",
    "db.unreachable": "1 while the monitored database is unreachable, else 0",
    "db.down_for": "seconds since the database became unreachable",
    "db.rtt_ms": "database round-trip time, ms",
    "db.connections_used_pct": "connections in use vs max_connections, percent",
    "db.slowest_mean_ms": "mean time of the slowest statement (pg_stat_statements), ms",
    "db.size_bytes": "database size, bytes",
    "events.failures_last_hour": "event failures created in the last hour",
    "events.failures_last_24h": "event failures created in the last 24 hours",
    "dlq.pending": "dead-letter messages pending",
    "dlq.oldest_pending_age": "age of the oldest pending dead letter, seconds",
    "dlq.inflow_per_hour": "dead letters created in the last hour",
    "outbox.dead": "notifications that gave up delivering (dead-lettered)",
}
"""Built-in metrics a rule can watch (plus ``custom.<name>`` for ``metrics``)."""


class FlappingConfig(_Model):
    """``transitions`` state changes within ``window`` make an alert FLAPPING (notifications throttled)."""

    transitions: int = Field(4, ge=2)
    """State changes that make an alert flapping."""
    window: PositiveDuration = 600.0
    """Time window for counting transitions."""


class AlertRule(_Model):
    """A threshold rule on one metric, with warning and/or critical levels."""

    name: Name
    """Unique rule name (used by depends_on, silences and notifications)."""
    metric: str
    """Metric to watch: see METRICS, or custom.<name> for a SQL metric."""
    op: Literal[">", ">=", "<", "<="] = ">"
    """Comparison: the rule breaches when `value op threshold`."""
    warning: float | None = None
    """Warning threshold."""
    critical: float | None = None
    """Critical threshold."""
    for_: Duration = Field(0.0, alias="for")
    """How long the breach must last before the alert fires ("for" in YAML)."""
    recovery: float | None = None
    """Hysteresis: the value must get back past this threshold to resolve (default: the threshold)."""
    recovery_samples: int = Field(1, ge=1)
    """Consecutive good evaluations needed to resolve."""
    scope: str | None = None
    """Endpoint name, or "*" for every endpoint (default "*" for endpoint.* metrics, else unused)."""
    depends_on: tuple[str, ...] = ()
    """Rules that, while firing, hold this one back (e.g. api-down for error-rate)."""
    runbook: str | None = None
    """Short hint or link for whoever gets the alert."""
    description: str = ""
    """What the rule means, shown in alerts."""

    @model_validator(mode="before")
    @classmethod
    def _default_scope(cls, data: Any) -> Any:
        if (
            isinstance(data, dict)
            and str(data.get("metric", "")).startswith("endpoint.")
            and not data.get("scope")
        ):
            return {**data, "scope": "*"}
        return data

    @model_validator(mode="after")
    def _check(self) -> AlertRule:
        if self.metric not in METRICS and not re.fullmatch(r"custom\.[A-Za-z_][A-Za-z0-9_]*", self.metric):
            raise LocatedValueError(
                ("metric",),
                f"unknown metric {self.metric!r}" + suggest(self.metric, [*METRICS, "custom.<name>"]),
            )
        if self.warning is None and self.critical is None:
            raise LocatedValueError(("warning",), "a rule needs a warning or a critical threshold (or both)")
        above = self.op in (">", ">=")
        if self.warning is not None and self.critical is not None:
            if (above and self.critical < self.warning) or (not above and self.critical > self.warning):
                side = "at or above" if above else "at or below"
                raise LocatedValueError(
                    ("critical",), f"must be {side} warning ({self.warning:g}) for op '{self.op}'"
                )
        if self.recovery is not None:
            thresholds = [t for t in (self.warning, self.critical) if t is not None]
            edge = min(thresholds) if above else max(thresholds)
            if (above and self.recovery > edge) or (not above and self.recovery < edge):
                side = "at or below" if above else "at or above"
                raise LocatedValueError(("recovery",), f"must be {side} the lowest threshold ({edge:g})")
        if self.scope is not None and not self.metric.startswith("endpoint."):
            raise LocatedValueError(("scope",), "scope applies only to endpoint.* metrics")
        if self.name in self.depends_on:
            raise LocatedValueError(("depends_on",), "a rule cannot depend on itself")
        return self


def _rule(name: str, metric: str, description: str, **kw: Any) -> AlertRule:
    return AlertRule.model_validate({"name": name, "metric": metric, "description": description, **kw})


DEFAULT_RULES: tuple[AlertRule, ...] = (
    _rule(
        "api-down", "endpoint.down_for", "Endpoint down for more than 5 minutes", critical=300,
        runbook="Check the POS backend process and host; GET /test/health must answer 200.",
    ),
    _rule(
        "slow-response", "endpoint.latency_ms", "Response time above 2 s (warning) / 5 s (critical)",
        warning=2000, critical=5000, depends_on=["api-down"],
    ),
    _rule(
        "error-rate", "endpoint.error_rate", "Error rate above 5 % (warning) / 10 % (critical)",
        warning=5, critical=10, depends_on=["api-down", "db-unreachable"],
    ),
    _rule(
        "auth-failures", "custom.auth_failure_rate", "Authentication failures above 10 %",
        critical=10, depends_on=["db-unreachable"],
    ),
    _rule(
        "db-unreachable", "db.unreachable", "Database connection failures", critical=0,
        runbook="Check PostgreSQL, the network path and connection limits.",
    ),
    _rule(
        "slow-queries", "db.slowest_mean_ms", "Database query time above 1 s", warning=1000,
        depends_on=["db-unreachable"],
    ),
    _rule(
        "event-failures", "events.failures_last_hour", "More than 5 event failures per hour", warning=5,
        depends_on=["db-unreachable"],
    ),
)  # fmt: skip
"""The seed's alerting plan; used when ``alerts.rules`` is omitted (auth-failures only with its metric)."""


class AlertsConfig(_Model):
    """Rule evaluation, storm control and the rules themselves."""

    evaluation_interval: PositiveDuration = 5.0
    """How often rules are evaluated."""
    group_wait: Duration = 2.0
    """Alerts starting within this time of each other go out as one message."""
    repeat_interval: PositiveDuration = 3600.0
    """Re-notify a firing, unacknowledged alert this often."""
    flapping: FlappingConfig = FlappingConfig()
    """Flapping detection."""
    rules: tuple[AlertRule, ...] = DEFAULT_RULES
    """Alert rules; omitted -> the seed's defaults (DEFAULT_RULES)."""

    @model_validator(mode="after")
    def _check(self) -> AlertsConfig:
        names = [rule.name for rule in self.rules]
        for i, rule in enumerate(self.rules):
            if rule.name in names[:i]:
                raise LocatedValueError(
                    ("rules", i, "name"),
                    f"duplicate rule name {rule.name!r} (also rules[{names.index(rule.name)}])",
                )
            for j, dep in enumerate(rule.depends_on):
                if dep not in names:
                    raise LocatedValueError(
                        ("rules", i, "depends_on", j), f"unknown rule {dep!r}" + suggest(dep, names)
                    )
        graph = {rule.name: rule.depends_on for rule in self.rules}
        for i, rule in enumerate(self.rules):
            stack, seen = list(rule.depends_on), set()
            while stack:
                current = stack.pop()
                if current == rule.name:
                    raise LocatedValueError(("rules", i, "depends_on"), "depends_on forms a cycle")
                if current not in seen:
                    seen.add(current)
                    stack.extend(graph.get(current, ()))
        return self


# --------------------------------------------------------------------------- notifications


class SlackWebhooks(_Model):
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


class SlackConfig(_Model):
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


class OutboxConfig(_Model):
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


class PagerDutyConfig(_Model):
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


class EmailConfig(_Model):
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


class WebhookConfig(_Model):
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
        _check_url_auth(f"webhook {self.name!r} ", self.url, self.headers)
        return self


class NotificationsConfig(_Model):
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


# --------------------------------------------------------------------------- triage, sentry, logging, ui


class RedriveConfig(_Model):
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
        _check_url_auth("", self.replay_url, self.headers, "replay_url")
        if self.mode == "http" and self.replay_url is None:
            raise LocatedValueError(
                ("replay_url",), "required when mode is 'http' (the backend's replay URL)"
            )
        return self


class TriageConfig(_Model):
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


class SentryConfig(_Model):
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


class LoggingConfig(_Model):
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


class WallConfig(_Model):
    """Wall-screen mode (``--wall``)."""

    cycle_interval: PositiveDuration = 15.0
    """Time each screen is shown."""
    screens: tuple[ScreenName, ...] = Field(("overview", "endpoints", "alerts"), min_length=1)
    """Screens cycled through, in order."""


class UiConfig(_Model):
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


class Config(_Model):
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
        if not isinstance(data, dict):
            return data
        out = dict(data)
        probes: dict[str, Any] = data["probes"] if isinstance(data.get("probes"), dict) else {}
        inherited = {}
        for key in ("interval", "timeout"):
            value = probes.get(key)
            try:
                if value is not None and parse_duration(value) > 0:
                    inherited[key] = value
            except ValueError:
                pass  # reported at probes.<key>
        if inherited and isinstance(data.get("endpoints"), list):
            out["endpoints"] = [
                {**item, **{k: v for k, v in inherited.items() if item.get(k) is None}}
                if isinstance(item, dict)
                else item
                for item in data["endpoints"]
            ]
        alerts = data.get("alerts") if data.get("alerts") is not None else {}
        if isinstance(alerts, dict) and "rules" not in alerts:
            metrics: list[Any] = data["metrics"] if isinstance(data.get("metrics"), list) else []
            defined = {m.get("name") for m in metrics if isinstance(m, dict)}
            rules = [
                r for r in DEFAULT_RULES if not r.metric.startswith("custom.") or r.metric[7:] in defined
            ]
            out["alerts"] = {**alerts, "rules": rules}
        return out

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


# --------------------------------------------------------------------------- API


def load_config(path: Path | str, env: Mapping[str, str] | None = None) -> Config:
    """Read and validate a config file; bad input raises :class:`ConfigError`."""
    doc = read_yaml(Path(path), os.environ if env is None else env)
    return _validate(doc.data, doc)


def loads_config(text: str, source: str = "<string>", env: Mapping[str, str] | None = None) -> Config:
    """Like :func:`load_config` for YAML text; ``source`` names it in error messages."""
    doc = parse_yaml(text, source, os.environ if env is None else env)
    return _validate(doc.data, doc)


def _validate(data: Any, doc: Any) -> Config:
    if not isinstance(data, dict):
        found = type(data).__name__ if data is not None else "nothing"
        raise ConfigError(
            doc.file, doc.line_for(()), "", f"expected a mapping of sections at the top, got {found}"
        )
    try:
        return Config.model_validate(data)
    except pydantic.ValidationError as exc:
        raise validation_error(exc, doc, Config) from None


def secret_values(model: BaseModel) -> Iterator[str]:
    """Every secret in ``model`` (a :class:`Config` or a section), found by its ``Secret`` marker.

    What :func:`core.redact.register_secret` should mask: secret values, secret URLs (the
    registry adds their paths, queries and token-like segments), a DSN and its password, the
    password and secret query values of other URLs, and credential header values (with the bare
    token of ``Bearer <token>``).
    """
    for name, info in type(model).model_fields.items():
        value = getattr(model, name)
        marker = next((m for m in info.metadata if isinstance(m, Secret)), None)
        if marker is not None:
            yield from _secrets_of(marker.kind, value)
        elif isinstance(value, BaseModel):
            yield from secret_values(value)
        elif isinstance(value, tuple):
            for item in value:
                if isinstance(item, BaseModel):
                    yield from secret_values(item)


def _secrets_of(kind: str, value: object) -> Iterator[str]:
    if isinstance(value, Mapping):
        for header, text in value.items():
            if kind == "headers" and is_secret_header(str(header)) and text:
                yield str(text)
                token = str(text).split()[-1]
                if token != text:
                    yield token
        return
    if not isinstance(value, str) or not value:
        return
    if kind in ("value", "url"):
        yield value
        return
    if kind == "dsn":
        yield value
        password = dsn_keyword_password(value)
        if password:
            yield password
    try:
        parts = urlsplit(value)
        password = parts.password
    except ValueError:
        return
    if password:
        yield password
    for key, item in parse_qsl(parts.query, keep_blank_values=False):
        if is_secret_header(key):
            yield item


def default_config() -> Config:
    """Everything at its default: no endpoints, embedded database (dsn None), seed alert rules."""
    return Config()


def find_config_path(cli_path: str | None, env: Mapping[str, str] = os.environ) -> Path | None:
    """The config file to use: ``--config``, ``$OPSWATCH_CONFIG``, ``./opswatch.yaml``, then
    ``$XDG_CONFIG_HOME/opswatch/config.yaml`` (default ``~/.config``).

    Explicit choices (the flag, the variable) are returned even if missing so that loading reports
    the missing file; the implicit locations only when they exist. None: no config, use defaults.
    """
    if cli_path:
        return Path(cli_path).expanduser()
    if env.get("OPSWATCH_CONFIG"):
        return Path(env["OPSWATCH_CONFIG"]).expanduser()
    local = Path("opswatch.yaml")
    if local.is_file():
        return local
    xdg = env.get("XDG_CONFIG_HOME", "")
    if not xdg or not Path(xdg).is_absolute():
        home = env.get("HOME") or str(Path.home())
        xdg = str(Path(home) / ".config")
    user = Path(xdg) / "opswatch" / "config.yaml"
    return user if user.is_file() else None


class _EffectiveDumper(yaml.SafeDumper):
    """Block style for multi-line strings (SQL) so the output stays readable."""


def _represent_str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_EffectiveDumper.add_representer(str, _represent_str)


def render_effective(config: Config) -> str:
    """YAML of the effective configuration, secrets masked; it loads back as the same shape."""
    data = config.model_dump(mode="json", by_alias=True, context={"mask_secrets": True})
    body = yaml.dump(data, Dumper=_EffectiveDumper, sort_keys=False, allow_unicode=True, width=100)
    return "# opswatch effective configuration (secrets masked)\n" + body
