"""opswatch run --headless: the agent without a screen (probes, sources, rules, delivery)."""

from __future__ import annotations

import argparse
from typing import Any

from cli.commands.common import (
    UsageError,
    duration_option,
    load_config_for,
    require_dsn,
    run_async,
    subparser,
)
from core.api import run_until_stopped, start_observability


def register(subparsers: Any) -> None:
    parser = subparser(
        subparsers,
        "run",
        "run probes, rules and Slack delivery without a screen (for systemd)",
        "Run the monitoring agent headless: probe endpoints, read DB metrics, evaluate alert rules "
        "and deliver notifications, logging JSON lines to stderr and logs/. Stops on SIGTERM/Ctrl-C. "
        "Several agents and consoles may share one database: each notification is sent once.",
    )
    parser.add_argument(
        "--headless", action="store_true", required=True, help="required: run without the console"
    )
    parser.add_argument("--duration", default=None, help="stop after this long (e.g. 30s, 5m)")
    add_metrics_options(parser)
    parser.set_defaults(handler=_run)


def add_metrics_options(parser: argparse.ArgumentParser) -> None:
    """--metrics-port / --metrics-host, shared with `opswatch demo`."""
    parser.add_argument(
        "--metrics-port",
        type=int,
        default=None,
        metavar="PORT",
        help="serve Prometheus metrics on http://HOST:PORT/metrics (e.g. 9464)",
    )
    parser.add_argument(
        "--metrics-host",
        default="127.0.0.1",
        metavar="HOST",
        help="address for --metrics-port (default 127.0.0.1; 0.0.0.0 for every interface)",
    )


def metrics_address(args: argparse.Namespace) -> tuple[str, int] | None:
    port = getattr(args, "metrics_port", None)
    if port is None:
        return None
    if not 1 <= port <= 65535:
        raise UsageError(f"--metrics-port must be between 1 and 65535, got {port}")
    return str(args.metrics_host), int(port)


def _run(args: argparse.Namespace) -> int:
    config = load_config_for(args)
    dsn = require_dsn(config)
    duration = duration_option(args.duration, "--duration")
    metrics = metrics_address(args)
    start_observability(config, console=True)
    return run_async(
        run_until_stopped(config, dsn, duration=duration, read_only=bool(args.read_only), metrics=metrics)
    )
