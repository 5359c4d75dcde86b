"""The ``opswatch`` command: argparse front door.

Subcommands live in ``cli.commands.*``; each module exposes ``register(subparsers, common)``
and is discovered at start-up, so adding a command never touches this file. Expected
failures (bad config, bad input, unreachable database) end with one line on stderr and
exit code 2, never a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import os
import pkgutil
import sys
from collections.abc import Sequence

from cli.commands import COMMAND_ORDER
from cli.commands.common import UsageError, add_common_options, package_version
from cli.commands.console import add_console_options


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"opswatch: error: {message} (see '{self.prog} --help')\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="opswatch",
        description=(
            "Watch a POS backend: endpoint uptime and latency, error-rate thresholds, event failures "
            "and the dead-letter queue, with Slack alerts. Without a subcommand, opens the console."
        ),
    )
    parser.add_argument("--version", action="version", version=f"opswatch {package_version()}")
    add_common_options(parser, top_level=True)
    add_console_options(parser, top_level=True)
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    import cli.commands as package

    names = [m.name for m in pkgutil.iter_modules(package.__path__)]
    modules = [importlib.import_module(f"cli.commands.{name}") for name in names]
    modules = [m for m in modules if hasattr(m, "register")]
    modules.sort(
        key=lambda m: (
            COMMAND_ORDER.index(m.__name__.rsplit(".", 1)[-1])
            if m.__name__.rsplit(".", 1)[-1] in COMMAND_ORDER
            else len(COMMAND_ORDER)
        )
    )
    for module in modules:
        module.register(subparsers)
    _accept_common_options_everywhere(subparsers)
    return parser


def _accept_common_options_everywhere(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """--config and --read-only work after any (sub-)subcommand, e.g. ``opswatch db migrate --config F``."""
    for child in set(subparsers.choices.values()):
        if "--config" not in child._option_string_actions:
            add_common_options(child)
        for action in child._actions:
            if isinstance(action, argparse._SubParsersAction):
                _accept_common_options_everywhere(action)


SIGPIPE_EXIT = 141
"""128 + SIGPIPE: what a shell reports for a writer whose reader went away (``| head``)."""


def main(argv: Sequence[str] | None = None) -> int:
    try:
        code = _main(argv)
        sys.stdout.flush()
    except BrokenPipeError:
        _stdout_to_devnull()
        return SIGPIPE_EXIT
    return code


def _stdout_to_devnull() -> None:
    """The Python docs' recipe: the reader is gone, so later flushes (at exit) must not fail again."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError):  # stdout without a file descriptor (captured in tests)
        pass


def _main(argv: Sequence[str] | None) -> int:
    parser = build_parser()
    args, extras = parser.parse_known_args(argv)
    if extras:
        message = f"unrecognized arguments: {' '.join(extras)}"
        usage_error = getattr(args, "usage_error", None)
        if usage_error is not None:  # `check` reports as a Nagios plugin (UNKNOWN on stdout)
            usage_error(message)
        parser.error(message)
    handler = getattr(args, "handler", None)
    if handler is None:
        from cli.commands.console import run_console

        handler = run_console
    try:
        return int(handler(args))
    except UsageError as exc:
        print(f"opswatch: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
