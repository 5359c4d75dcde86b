"""opswatch (no subcommand) / opswatch console: the interactive Textual console.

An unreachable database or a wrong DSN never stops the console: the Database pool is
created lazily and the UI shows the outage banner while it retries.
"""

from __future__ import annotations

import argparse
import asyncio
from typing import Any

from cli.commands.common import load_config_for, require_dsn, subparser
from core.api import Config, LogBuffer, MonitorRole, running_services, start_observability

THEME_CHOICES = ("dark", "light", "high-contrast", "ansi")


def add_console_options(parser: argparse.ArgumentParser, *, top_level: bool = False) -> None:
    """--wall and --theme; cli.main adds them to the top-level parser too (``opswatch --wall``)."""
    default: Any = None if top_level else argparse.SUPPRESS
    parser.add_argument(
        "--wall",
        action="store_true",
        default=False if top_level else argparse.SUPPRESS,
        help="wall-screen mode: read-only, large tiles, cycles overview/endpoints/alerts",
    )
    parser.add_argument(
        "--theme",
        choices=THEME_CHOICES,
        default=default,
        help="colour theme (default: ui.theme; high-contrast on the wall)",
    )


def register(subparsers: Any) -> None:
    parser = subparser(subparsers, "console", "open the interactive console (the default command)")
    add_console_options(parser)
    parser.set_defaults(handler=run_console)


def run_console(args: argparse.Namespace) -> int:
    config = load_config_for(args)
    dsn = require_dsn(config)
    wall = bool(getattr(args, "wall", False))
    read_only = bool(getattr(args, "read_only", False)) or wall
    return asyncio.run(
        run_app(config, dsn, read_only=read_only, wall=wall, theme=getattr(args, "theme", None))
    )


async def run_app(
    config: Config,
    dsn: str,
    *,
    read_only: bool = False,
    wall: bool = False,
    theme: str | None = None,
    log_buffer: LogBuffer | None = None,
    metrics: tuple[str, int] | None = None,
    duration: float | None = None,
) -> int:
    """Run the console on services built from ``config`` until the operator quits (or ``duration``)."""
    from tui.app import OpsWatchApp

    if log_buffer is None:
        log_buffer = start_observability(config, console=False)
    role = MonitorRole.WALL if wall else MonitorRole.CONSOLE
    async with running_services(
        config, dsn, role=role, read_only=read_only, log_buffer=log_buffer, metrics=metrics
    ) as services:
        app = OpsWatchApp(services, wall=wall, theme=theme)
        runner = asyncio.ensure_future(app.run_async())
        done, _ = await asyncio.wait({runner}, timeout=duration)
        if not done:
            app.exit()
        await runner
    return 0
