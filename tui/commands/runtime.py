"""Process-wide set-up shared by the long-running commands: secrets, logs, Sentry, the database."""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from pathlib import Path

from core.config import Config, is_secret_header
from core.db import Database, PoolSettings
from core.logging import LogBuffer, resolve_level, setup_logging
from core.redact import register_secret
from core.telemetry import init_sentry
from tui.commands.common import package_version


def _secrets(config: Config) -> Iterator[str]:
    if config.database.dsn:
        yield config.database.dsn
    hooks = config.notifications.slack.webhooks
    for url in (hooks.critical, hooks.warning, hooks.info, hooks.default):
        if url:
            yield str(url)
    for hook in config.notifications.webhook:
        yield str(hook.url)
        yield from _secret_headers(hook.headers)
    if config.notifications.pagerduty.routing_key:
        yield config.notifications.pagerduty.routing_key
    if config.notifications.email.password:
        yield config.notifications.email.password
    if config.sentry.dsn:
        yield config.sentry.dsn
    for endpoint in config.endpoints:
        yield from _secret_headers(endpoint.headers)
    yield from _secret_headers(config.triage.redrive.headers)


def _secret_headers(headers: Mapping[str, str]) -> Iterator[str]:
    return (value for name, value in headers.items() if value and is_secret_header(name))


def start_observability(config: Config, *, console: bool, log_dir: Path | None = None) -> LogBuffer:
    """Register every configured secret for redaction, then start logging and Sentry."""
    for secret in _secrets(config):
        register_secret(secret)
    cfg = config.logging
    buffer = setup_logging(
        level=resolve_level(cfg.level, os.environ),
        directory=log_dir if log_dir is not None else Path(cfg.directory),
        rotation=cfg.rotation,
        retention=cfg.retention,
        service=cfg.service,
        environment=cfg.environment,
        console=console,
        json_console=console,
    )
    init_sentry(
        dsn=config.sentry.dsn,
        environment=config.sentry.environment,
        release=config.sentry.release or f"opswatch@{package_version()}",
        traces_sample_rate=config.sentry.traces_sample_rate,
    )
    return buffer


def database_for(config: Config, dsn: str) -> Database:
    db = config.database
    return Database(
        dsn,
        PoolSettings(
            min_size=db.pool_min,
            max_size=db.pool_max,
            statement_timeout_s=db.statement_timeout,
            connect_timeout_s=db.connect_timeout,
        ),
    )
