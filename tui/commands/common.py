"""What every subcommand shares: --config and friends, config loading, one-line errors."""

from __future__ import annotations

import argparse
import asyncio
import os
from collections.abc import Coroutine
from importlib import metadata
from pathlib import Path
from typing import Any, TypeVar

from core.config import Config, ConfigError, default_config, find_config_path, load_config

T = TypeVar("T")


class UsageError(Exception):
    """Bad input: printed as one line, exit code 2."""


def package_version() -> str:
    try:
        return metadata.version("opswatch")
    except metadata.PackageNotFoundError:  # running from a source tree without install
        return "0+unknown"


def add_common_options(parser: argparse.ArgumentParser, *, top_level: bool = False) -> None:
    """Options accepted both before and after the subcommand."""
    default: Any = None if top_level else argparse.SUPPRESS
    parser.add_argument("--config", metavar="PATH", default=default,
                        help="config file (default: $OPSWATCH_CONFIG, ./opswatch.yaml, "
                             "$XDG_CONFIG_HOME/opswatch/config.yaml)")
    parser.add_argument("--read-only", action="store_true", default=default if not top_level else False,
                        help="refuse every mutating action (retry, abandon, acknowledge, ...)")


def subparser(
    subparsers: Any, name: str, help_text: str, description: str | None = None
) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        name, help=help_text, description=description or help_text
    )
    add_common_options(parser)
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
    from tui.commands.runtime import start_cli_logging  # runtime imports this module

    start_cli_logging(config)
    return config


def require_dsn(config: Config) -> str:
    dsn = config.database.dsn
    if not dsn:
        raise UsageError("database.dsn is not set in the config (try 'opswatch demo' for an embedded one)")
    return dsn


def run_async(coro: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coro)
