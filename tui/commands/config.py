"""opswatch config check FILE"""

from __future__ import annotations

import argparse
from typing import Any

from core.config import render_effective
from tui.commands.common import load_config_for, subparser


def register(subparsers: Any) -> None:
    parser = subparser(subparsers, "config", "validate and show configuration")
    sub = parser.add_subparsers(dest="config_command", metavar="ACTION", required=True)
    check = sub.add_parser(
        "check",
        help="validate a config file and print the effective config (secrets masked)",
        description="Validate FILE (or the config found by the lookup order) and print the effective "
        "configuration with defaults filled in and secrets masked. Exit 0 if valid, 2 if not.",
    )
    check.add_argument("file", nargs="?", help="config file to check")
    check.set_defaults(handler=_check)


def _check(args: argparse.Namespace) -> int:
    if args.file:
        args.config = args.file
    config = load_config_for(args, required=True)
    print(render_effective(config), end="")
    return 0
