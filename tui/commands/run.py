"""opswatch run --headless: the agent without a screen (probes, sources, rules, delivery)."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
from typing import Any

from loguru import logger

from core.durations import parse_duration
from core.exporter import MetricsExporter
from core.monitor import Monitor
from tui.commands.common import UsageError, load_config_for, require_dsn, run_async, subparser
from tui.commands.runtime import database_for, start_observability


def register(subparsers: Any) -> None:
    parser = subparser(
        subparsers,
        "run",
        "run probes, rules and Slack delivery without a screen (for systemd)",
        "Run the monitoring agent headless: probe endpoints, read DB metrics, evaluate alert rules "
        "and deliver notifications, logging JSON lines to stderr and logs/. Stops on SIGTERM/Ctrl-C. "
        "Several agents and consoles may share one database: each notification is sent once.",
    )
    parser.add_argument("--headless", action="store_true", required=True,
                        help="required: run without the console")
    parser.add_argument("--duration", default=None, help="stop after this long (e.g. 30s, 5m)")
    add_metrics_options(parser)
    parser.set_defaults(handler=_run)


def add_metrics_options(parser: argparse.ArgumentParser) -> None:
    """--metrics-port / --metrics-host, shared with `opswatch demo`."""
    parser.add_argument("--metrics-port", type=int, default=None, metavar="PORT",
                        help="serve Prometheus metrics on http://HOST:PORT/metrics (e.g. 9464)")
    parser.add_argument("--metrics-host", default="127.0.0.1", metavar="HOST",
                        help="address for --metrics-port (default 127.0.0.1; 0.0.0.0 for every interface)")


def metrics_address(args: argparse.Namespace) -> tuple[str, int] | None:
    port = getattr(args, "metrics_port", None)
    if port is None:
        return None
    if not 1 <= port <= 65535:
        raise UsageError(f"--metrics-port must be between 1 and 65535, got {port}")
    return str(args.metrics_host), int(port)


async def start_exporter(monitor: Monitor, address: tuple[str, int] | None) -> MetricsExporter | None:
    """Serve /metrics for ``monitor``; a port that cannot be bound is a one-line usage error."""
    if address is None:
        return None
    host, port = address
    exporter = MetricsExporter()
    exporter.attach(monitor)
    try:
        await exporter.start(host, port)
    except OSError as exc:
        await exporter.stop()
        raise UsageError(f"cannot serve metrics on {host}:{port}: {exc.strerror or exc}") from None
    return exporter


def _run(args: argparse.Namespace) -> int:
    config = load_config_for(args)
    dsn = require_dsn(config)
    duration = None
    if args.duration:
        try:
            duration = parse_duration(args.duration)
        except ValueError as exc:
            raise UsageError(f"--duration: {exc}") from exc
    metrics = metrics_address(args)
    start_observability(config, console=True)
    return run_async(
        run_headless(config, dsn, duration=duration, read_only=bool(args.read_only), metrics=metrics)
    )


async def run_headless(
    config: Any,
    dsn: str,
    *,
    duration: float | None,
    read_only: bool = False,
    metrics: tuple[str, int] | None = None,
) -> int:
    db = database_for(config, dsn)
    monitor = Monitor(config, db, read_only=read_only)
    try:
        exporter = await start_exporter(monitor, metrics)
    except UsageError:
        await db.close()
        raise
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    logger.bind(endpoints=len(config.endpoints)).info("opswatch agent starting")
    await monitor.start()
    try:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=duration)
    finally:
        await monitor.stop()
        if exporter is not None:
            await exporter.stop()
        await db.close()
        logger.info("opswatch agent stopped")
    return 0
