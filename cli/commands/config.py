"""opswatch config check FILE"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

from cli.commands.common import action, command_group, load_config_for
from core.api import Config, find_config_path, render_effective


def register(subparsers: Any) -> None:
    sub = command_group(subparsers, "config", "validate and show configuration")
    check = action(
        sub,
        "check",
        "validate a config file and print the effective config (secrets masked)",
        _check,
        "Validate FILE (or the config found by the lookup order) and print the effective "
        "configuration with defaults filled in and secrets masked. Exit 0 if valid, 2 if not. "
        "A valid config that cannot do its job (no database DSN, no endpoint, no notification route) "
        "gets one warning line each on stderr (still exit 0).",
    )
    check.add_argument("file", nargs="?", help="config file to check")


def _check(args: argparse.Namespace) -> int:
    if args.file:
        args.config = args.file
    config = load_config_for(args, required=True)
    path = find_config_path(getattr(args, "config", None), os.environ)
    for warning in config_warnings(config):
        print(f"opswatch: warning: {path}: {warning}", file=sys.stderr)
    print(render_effective(config), end="")
    return 0


def config_warnings(config: Config) -> list[str]:
    """What a valid config still lacks to watch anything or tell anyone."""
    out: list[str] = []
    if not config.database.dsn:
        out.append("database.dsn is not set: nothing reads the app's database (dead letters, events)")
    if not config.endpoints:
        out.append("no endpoints: no HTTP endpoint is probed")
    n = config.notifications
    if not (n.slack.enabled or n.pagerduty.enabled or n.email.enabled or n.webhook):
        out.append(
            "no notification route (notifications.slack, .pagerduty, .email or .webhook): alerts reach nobody"
        )
    return out
