"""Process-wide set-up shared by the long-running commands: secrets, logs, Sentry, the database."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

from loguru import logger

from core.config import Config, secret_values
from core.db import Database, DatabaseUnavailable, PoolSettings
from core.exporter import MetricsExporter
from core.logging import LogBuffer, resolve_level, setup_logging
from core.monitor import Monitor
from core.redact import register_secret
from core.telemetry import init_sentry
from core.triage.doctor import log_report
from tui.commands.common import UsageError, package_version


def _secrets(config: Config) -> Iterator[str]:
    """Every secret of the config, found through its types (the ``Secret`` markers)."""
    return secret_values(config)


def start_cli_logging(config: Config) -> None:
    """Short commands (dlq, events, audit, alert, check): secrets registered, warnings on stderr, no files."""
    for secret in _secrets(config):
        register_secret(secret)
    setup_logging(
        level=resolve_level("WARNING", os.environ),
        directory=None,
        service=config.logging.service,
        environment=config.logging.environment,
        console=True,
    )


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


async def start_exporter(monitor: Monitor, address: tuple[str, int] | None) -> MetricsExporter | None:
    """Serve /metrics for ``monitor``; a port that cannot be bound is a one-line usage error."""
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


async def report_app_schema(monitor: Monitor) -> None:
    """Log, once at start-up, where the app's tables differ from the configured names."""
    try:
        report = await monitor.triage.schema_report()
    except DatabaseUnavailable:
        return  # the first summary once the database is back introspects (and degrades) anyway
    log_report(report)


@contextlib.asynccontextmanager
async def monitored(
    config: Config,
    dsn: str,
    *,
    read_only: bool = False,
    log_buffer: LogBuffer | None = None,
    metrics: tuple[str, int] | None = None,
    agent: bool = False,
) -> AsyncIterator[Monitor]:
    """A Monitor on its own pool (not started: the console starts it inside its app), plus /metrics."""
    db = database_for(config, dsn)
    monitor = Monitor(config, db, read_only=read_only, log_buffer=log_buffer, agent=agent)
    try:
        exporter = await start_exporter(monitor, metrics)
        try:
            yield monitor
        finally:
            await monitor.stop()
            if exporter is not None:
                await exporter.stop()
    finally:
        await db.close()


async def run_until_stopped(
    config: Config,
    dsn: str,
    *,
    duration: float | None,
    read_only: bool = False,
    log_buffer: LogBuffer | None = None,
    metrics: tuple[str, int] | None = None,
) -> int:
    """The headless agent: run the Monitor until SIGINT/SIGTERM or ``duration`` seconds."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    async with monitored(
        config, dsn, read_only=read_only, log_buffer=log_buffer, metrics=metrics, agent=True
    ) as monitor:
        logger.bind(endpoints=len(config.endpoints)).info("opswatch agent starting")
        await monitor.start()
        await report_app_schema(monitor)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=duration)
    logger.info("opswatch agent stopped")
    return 0
