"""The composition root: config -> database -> services, plus the process-wide set-up around them.

Every face (console, wall, headless agent, CLI, benchmarks) builds what it runs on here, so the
services exist once per process and are handed to the faces as one :class:`Services` value.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import AsyncIterator
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

import asyncpg
from loguru import logger

from core.alerting import AlertActions, AlertEngine
from core.audit import AuditLog, default_actor
from core.clock import Clock, utcnow
from core.config import Config, register_secrets
from core.db import Database, PoolSettings, describe_error
from core.errors import UsageError
from core.exporter import MetricsExporter
from core.logging import LogBuffer, resolve_level, setup_logging
from core.monitor import Monitor, MonitorRole, instance_name
from core.spool import default_spool_dir
from core.telemetry import init_sentry
from core.triage import TriageService

__all__ = [
    "MonitorRole",
    "Services",
    "build_services",
    "connection",
    "database_for",
    "package_version",
    "running_services",
    "start_cli_logging",
    "start_exporter",
    "start_observability",
]

CONNECT_TIMEOUT_S = 10.0
"""How long a one-off connection (``opswatch db ...``) waits for the server."""


@dataclass(frozen=True, slots=True)
class Services:
    """What the faces act and read through; built once by :func:`build_services`."""

    config: Config
    db: Database
    monitor: Monitor
    triage: TriageService
    alerts: AlertActions
    audit: AuditLog


def package_version() -> str:
    try:
        return metadata.version("opswatch")
    except metadata.PackageNotFoundError:  # running from a source tree without install
        return "0+unknown"


# -- observability ---------------------------------------------------------------------------------


def start_cli_logging(config: Config) -> None:
    """Short commands (dlq, events, audit, alert, check): secrets registered, warnings on stderr, no files."""
    register_secrets(config)
    setup_logging(
        level=resolve_level("WARNING", os.environ),
        directory=None,
        service=config.logging.service,
        environment=config.logging.environment,
        console=True,
    )


def start_observability(config: Config, *, console: bool, log_dir: Path | None = None) -> LogBuffer:
    """Register every configured secret for redaction, then start logging and Sentry."""
    register_secrets(config)
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


async def start_exporter(monitor: Monitor, address: tuple[str, int] | None) -> MetricsExporter | None:
    """Serve /metrics for ``monitor``; a port that cannot be bound is a one-line :class:`UsageError`."""
    if address is None:
        return None
    host, port = address
    exporter = MetricsExporter(custom_metrics=monitor.config.metrics)
    exporter.attach(monitor)
    try:
        await exporter.start(host, port)
    except OSError as exc:
        await exporter.stop()
        raise UsageError(f"cannot serve metrics on {host}:{port}: {exc.strerror or exc}") from None
    logger.info("Prometheus metrics on http://{}:{}/metrics", host, exporter.port)
    return exporter


# -- database and services -------------------------------------------------------------------------


def database_for(config: Config, dsn: str) -> Database:
    """The pool every service of this process shares (created lazily: an outage never stops a start)."""
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


@contextlib.asynccontextmanager
async def connection(dsn: str) -> AsyncIterator[asyncpg.Connection]:
    """One connection outside the pool (schema changes); a server that refuses is a :class:`UsageError`."""
    try:
        conn = await asyncpg.connect(dsn, timeout=CONNECT_TIMEOUT_S)
    except Exception as exc:  # any connect failure is reported as one line
        raise UsageError(f"cannot connect to the database: {describe_error(exc)}") from exc
    try:
        yield conn
    finally:
        await conn.close()


def build_services(
    config: Config,
    db: Database,
    *,
    role: MonitorRole = MonitorRole.CONSOLE,
    read_only: bool = False,
    actor: str | None = None,
    log_buffer: LogBuffer | None = None,
    clock: Clock = utcnow,
    spool_dir: Path | None = None,
) -> Services:
    """The services on ``db`` and the (not yet started) Monitor that reads through them.

    Read-only when asked, on the wall or by ``ui.read_only``; a read-only agent announces nothing.
    ``spool_dir``: where alert decisions made during a database outage are recorded (default:
    shared by this host's instances of this database, see :mod:`core.spool`).
    """
    read_only = read_only or role is MonitorRole.WALL or config.ui.read_only
    who = default_actor(actor or config.triage.actor)
    triage = TriageService(db, config, actor=who, read_only=read_only)
    alerts = AlertActions(db, config, actor=who, read_only=read_only)
    engine = AlertEngine(
        db,
        config,
        instance_id=instance_name(),
        clock=clock,
        announce_unreachable_at_start=role.announces_unreachable_at_start and not read_only,
        spool_dir=spool_dir or default_spool_dir(db.dsn),
    )
    monitor = Monitor(
        config,
        db,
        triage=triage,
        alerts=alerts,
        engine=engine,
        role=role,
        read_only=read_only,
        log_buffer=log_buffer,
        clock=clock,
    )
    return Services(config, db, monitor, triage, alerts, AuditLog(db))


@contextlib.asynccontextmanager
async def running_services(
    config: Config,
    dsn: str,
    *,
    role: MonitorRole = MonitorRole.CONSOLE,
    read_only: bool = False,
    log_buffer: LogBuffer | None = None,
    metrics: tuple[str, int] | None = None,
) -> AsyncIterator[Services]:
    """Services on their own pool, plus /metrics; the Monitor is not started (the console starts it
    inside its app), but it is stopped and the pool closed on the way out."""
    db = database_for(config, dsn)
    services = build_services(config, db, role=role, read_only=read_only, log_buffer=log_buffer)
    try:
        exporter = await start_exporter(services.monitor, metrics)
        try:
            yield services
        finally:
            await services.monitor.stop()
            if exporter is not None:
                await exporter.stop()
    finally:
        await db.close()
