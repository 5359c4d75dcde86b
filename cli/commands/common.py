"""What every subcommand shares: --config and friends, config loading, one-line errors."""

from __future__ import annotations

import argparse
import asyncio
import os
from collections.abc import Awaitable, Callable, Coroutine
from pathlib import Path
from typing import Any, TypeVar

from core.api import (
    Config,
    ConfigError,
    connection,
    default_config,
    find_config_path,
    load_config,
    parse_duration,
    start_cli_logging,
)
from core.api import UsageError as UsageError  # commands import it from here
from core.api import package_version as package_version

T = TypeVar("T")


def add_common_options(parser: argparse.ArgumentParser, *, top_level: bool = False) -> None:
    """Options accepted both before and after the subcommand."""
    default: Any = None if top_level else argparse.SUPPRESS
    parser.add_argument(
        "--config",
        metavar="PATH",
        default=default,
        help="config file (default: $OPSWATCH_CONFIG, ./opswatch.yaml, "
        "$XDG_CONFIG_HOME/opswatch/config.yaml)",
    )
    parser.add_argument(
        "--read-only",
        action="store_true",
        default=default if not top_level else False,
        help="refuse every mutating action (retry, abandon, acknowledge, ...)",
    )


def subparser(
    subparsers: Any, name: str, help_text: str, description: str | None = None
) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        name, help=help_text, description=description or help_text
    )
    add_common_options(parser)
    return parser


def command_group(subparsers: Any, name: str, help_text: str) -> Any:
    """``opswatch NAME ACTION ...``: the parser of NAME's actions (one is required)."""
    parser = subparser(subparsers, name, help_text)
    return parser.add_subparsers(dest=f"{name}_command", metavar="ACTION", required=True)


def action(
    sub: Any, name: str, help_text: str, handler: Callable[[argparse.Namespace], int], description: str = ""
) -> argparse.ArgumentParser:
    """One ACTION of a command group, run by ``handler``."""
    parser: argparse.ArgumentParser = sub.add_parser(name, help=help_text, description=description or None)
    parser.set_defaults(handler=handler)
    return parser


def load_config_for(args: argparse.Namespace, *, required: bool = False) -> Config:
    """Load the config named by --config or the lookup order; ConfigError -> UsageError."""
    path = find_config_path(getattr(args, "config", None), os.environ)
    try:
        if path is None:
            if required:
                raise UsageError("no config file found: pass --config PATH or set OPSWATCH_CONFIG")
            config = default_config()
        else:
            config = load_config(Path(path))
    except ConfigError as exc:
        raise UsageError(str(exc)) from exc
    start_cli_logging(config)
    return config


def run_on_connection(
    args: argparse.Namespace, job: Callable[[Config, Any], Awaitable[int]], config: Config | None = None
) -> int:
    """Run ``job`` on one connection to database.dsn (outside any pool); the config is loaded unless given."""
    config = config or load_config_for(args)
    dsn = require_dsn(config)

    async def go() -> int:
        async with connection(dsn) as conn:
            return await job(config, conn)

    return run_async(go())


def duration_option(value: str | None, option: str) -> float | None:
    """The seconds of ``option``'s value (30s, 5m, ...); None when it was not given."""
    if not value:
        return None
    try:
        return parse_duration(value)
    except ValueError as exc:
        raise UsageError(f"{option}: {exc}") from exc


def require_dsn(config: Config) -> str:
    dsn = config.database.dsn
    if not dsn:
        raise UsageError("database.dsn is not set in the config (try 'opswatch demo' for an embedded one)")
    return dsn


def run_async(coro: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coro)
