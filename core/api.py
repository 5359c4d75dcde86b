"""The public surface of the core: what the faces (tui/, cli/) may import, besides the frozen
snapshot types of :mod:`core.snapshot`. Enforced by the import-linter contract in pyproject.toml."""

from __future__ import annotations

from core.agent import (
    run_until_stopped,
)
from core.alerting import (
    AlertActionResult,
    AlertActions,
)
from core.audit import (
    AuditEntry,
    AuditLog,
    default_actor,
)
from core.check import (
    CheckReport,
    CheckSetupError,
    Overrides,
    run_check,
)
from core.clock import (
    Clock,
    utcnow,
)
from core.config import (
    AlertRule,
    Config,
    ConfigError,
    default_config,
    find_config_path,
    load_config,
    render_effective,
)
from core.db import (
    Database,
    DatabaseUnavailable,
    display_dsn,
)
from core.demo.environment import DemoEnvironment
from core.demo.scenario import DEFAULT_SEED, DEFAULT_SPEED
from core.demo.server import (
    DemoError,
)
from core.durations import (
    format_duration_compact,
    format_duration_human,
    parse_duration,
)
from core.embedded import (
    EmbeddedError,
)
from core.errors import (
    ReadOnlyError,
    UsageError,
)
from core.logging import (
    LogBuffer,
)
from core.migrate import (
    init_app_schema,
    migrate,
)
from core.monitor import (
    SUMMARIES_EVERY_S,
)
from core.nagios import (
    UNKNOWN,
    Range,
    plugin_text,
    status_line,
)
from core.notify.delivery import (
    Deliverer,
)
from core.notify.outbox import (
    STATUSES as OUTBOX_STATUSES,
)
from core.notify.outbox import (
    OutboxEntry,
    entries,
)
from core.notify.registry import (
    notifiers_for,
)
from core.notify_triggers import (
    CHANGES_CHANNEL,
    install,
    install_sql,
    installed,
    uninstall,
)
from core.pg_activity import (
    DbActivity,
    Session,
    collect_activity,
)
from core.redact import (
    redact,
    register_secret,
)
from core.runtime import (
    MonitorRole,
    Services,
    connection,
    database_for,
    package_version,
    running_services,
    start_cli_logging,
    start_observability,
)
from core.safe_text import (
    display_text,
    first_line,
    pretty_json,
)
from core.triage import (
    DLQ,
    EVENTS,
    SPECS,
    ActionResult,
    BulkPreview,
    BulkProgress,
    Cursor,
    DlqDetail,
    DlqRow,
    EventDetail,
    EventRow,
    KindSpec,
    Page,
    Sort,
    Transition,
    TriageKind,
    TriageService,
    past_tense,
)
from core.triage.advise import (
    advise,
    advise_settings,
    apply_advice,
    missing_sql,
)
from core.triage.doctor import (
    SchemaStatus,
    diagnose,
    read_columns,
)
from core.triage.kind import (
    D,
    F,
    R,
)
from core.triage.models import (
    MAX_TEXT_FILTER,
    DlqFilter,
    EventFilter,
)
from core.triage.schema import (
    AppTables,
)

__all__ = [
    "CHANGES_CHANNEL",
    "DEFAULT_SEED",
    "DEFAULT_SPEED",
    "DLQ",
    "EVENTS",
    "MAX_TEXT_FILTER",
    "OUTBOX_STATUSES",
    "SPECS",
    "SUMMARIES_EVERY_S",
    "UNKNOWN",
    "ActionResult",
    "AlertActionResult",
    "AlertActions",
    "AlertRule",
    "AppTables",
    "AuditEntry",
    "AuditLog",
    "BulkPreview",
    "BulkProgress",
    "CheckReport",
    "CheckSetupError",
    "Clock",
    "Config",
    "ConfigError",
    "Cursor",
    "D",
    "Database",
    "DatabaseUnavailable",
    "DbActivity",
    "Deliverer",
    "DemoEnvironment",
    "DemoError",
    "DlqDetail",
    "DlqFilter",
    "DlqRow",
    "EmbeddedError",
    "EventDetail",
    "EventFilter",
    "EventRow",
    "F",
    "KindSpec",
    "LogBuffer",
    "MonitorRole",
    "OutboxEntry",
    "Overrides",
    "Page",
    "R",
    "Range",
    "ReadOnlyError",
    "SchemaStatus",
    "Services",
    "Session",
    "Sort",
    "Transition",
    "TriageKind",
    "TriageService",
    "UsageError",
    "advise",
    "advise_settings",
    "apply_advice",
    "collect_activity",
    "connection",
    "database_for",
    "default_actor",
    "default_config",
    "diagnose",
    "display_dsn",
    "display_text",
    "entries",
    "find_config_path",
    "first_line",
    "format_duration_compact",
    "format_duration_human",
    "init_app_schema",
    "install",
    "install_sql",
    "installed",
    "load_config",
    "migrate",
    "missing_sql",
    "notifiers_for",
    "package_version",
    "parse_duration",
    "past_tense",
    "plugin_text",
    "pretty_json",
    "read_columns",
    "redact",
    "register_secret",
    "render_effective",
    "run_check",
    "run_until_stopped",
    "running_services",
    "start_cli_logging",
    "start_observability",
    "status_line",
    "uninstall",
    "utcnow",
]
