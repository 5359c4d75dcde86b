"""The headless agent (``opswatch run``): the Monitor without a screen until SIGINT/SIGTERM."""

from __future__ import annotations

import asyncio
import contextlib
import signal

from loguru import logger

from core.config import Config
from core.db import DatabaseUnavailable
from core.logging import LogBuffer
from core.monitor import MonitorRole
from core.runtime import running_services
from core.triage import TriageService
from core.triage.doctor import log_report


async def report_app_schema(triage: TriageService) -> None:
    """Log, once at start-up, where the app's tables differ from the configured names."""
    try:
        report = await triage.schema_report()
    except DatabaseUnavailable:
        return  # the first summary once the database is back introspects (and degrades) anyway
    log_report(report)


async def run_until_stopped(
    config: Config,
    dsn: str,
    *,
    duration: float | None,
    read_only: bool = False,
    log_buffer: LogBuffer | None = None,
    metrics: tuple[str, int] | None = None,
) -> int:
    """Run the agent's Monitor until SIGINT/SIGTERM or ``duration`` seconds."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    async with running_services(
        config, dsn, role=MonitorRole.AGENT, read_only=read_only, log_buffer=log_buffer, metrics=metrics
    ) as services:
        logger.bind(endpoints=len(config.endpoints)).info("opswatch agent starting")
        await services.monitor.start()
        await report_app_schema(services.triage)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=duration)
    logger.info("opswatch agent stopped")
    return 0
