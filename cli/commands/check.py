"""opswatch check: one look, as a Nagios / Icinga plugin (Monitoring Plugins guidelines).

stdout: ``OPSWATCH <STATE> - <summary> | <perfdata>``, then one line per finding (long output).
Exit 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN; every usage or config problem is UNKNOWN with one
line on stdout, because that line is what Nagios shows.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from dataclasses import asdict
from typing import Any, NoReturn

from cli.commands.common import UsageError, load_config_for, package_version, run_async, subparser
from core.api import (
    UNKNOWN,
    CheckReport,
    CheckSetupError,
    Overrides,
    Range,
    database_for,
    find_config_path,
    format_duration_human,
    plugin_text,
    run_check,
    status_line,
)

SERVICE = "OPSWATCH"
DEFAULT_TIMEOUT = 30.0


class CheckUnknown(Exception):
    """Ends ``check`` as UNKNOWN (exit 3) with this reason as the one line on stdout."""


def unknown(reason: str) -> int:
    print(status_line(SERVICE, UNKNOWN, reason), flush=True)
    return UNKNOWN


def _usage_error(parser: argparse.ArgumentParser, message: str) -> NoReturn:
    """argparse errors of ``check`` are UNKNOWN on stdout, not exit 2 on stderr."""
    print(status_line(SERVICE, UNKNOWN, f"usage: {message} (see '{parser.prog} --help')"), flush=True)
    sys.exit(UNKNOWN)


def _range(text: str) -> Range:
    try:
        return Range.parse(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not 0 < value <= 86400:
        raise argparse.ArgumentTypeError(f"must be between 0 and 86400 seconds, got {text}")
    return value


def _names(text: str) -> list[str]:
    names = [n.strip() for n in text.split(",") if n.strip()]
    if not names:
        raise argparse.ArgumentTypeError("name at least one rule")
    return names


def register(subparsers: Any) -> None:
    parser = subparser(
        subparsers,
        "check",
        "probe and evaluate once as a Nagios/Icinga plugin; exit 0 ok, 1 warning, 2 critical, 3 unknown",
        "Probe the endpoints once, read the database metrics once and judge the alert rules against "
        "their thresholds (ignoring 'for' durations); an endpoint failing now is critical "
        "(built-in check 'endpoint-probe'). Prints 'OPSWATCH <STATE> - <summary> | <perfdata>' and "
        "one line per finding. Exit code: 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN (no config, bad "
        "options, database unusable, a rule that cannot be judged). Nothing is written and no "
        "notification is sent.",
    )
    parser.error = lambda message: _usage_error(parser, message)  # type: ignore[method-assign]
    parser.add_argument(
        "--only",
        type=_names,
        metavar="RULE[,RULE]",
        help="judge only these rules (one Icinga service per rule); 'endpoint-probe' "
        "names the built-in failing-endpoint check",
    )
    parser.add_argument(
        "-w",
        "--warning",
        type=_range,
        metavar="RANGE",
        help="replace the warning threshold of the --only rules, as a plugin range "
        "(10, 10:, ~:10, 10:20, @10:20) in the perfdata unit (seconds, percent, "
        "count, bytes)",
    )
    parser.add_argument(
        "-c",
        "--critical",
        type=_range,
        metavar="RANGE",
        help="replace the critical threshold of the --only rules (same form as -w)",
    )
    parser.add_argument(
        "-t",
        "--timeout",
        type=_seconds,
        default=DEFAULT_TIMEOUT,
        metavar="SECONDS",
        help=f"give up as UNKNOWN after this long (default {DEFAULT_TIMEOUT:g})",
    )
    parser.add_argument("-V", "--version", action="version", version=f"opswatch check {package_version()}")
    parser.add_argument("--json", action="store_true", help="print the findings as JSON")
    parser.set_defaults(handler=_check, usage_error=lambda message: _usage_error(parser, message))


def _check(args: argparse.Namespace) -> int:
    try:
        config = load_config_for(args, required=True)
    except UsageError as exc:
        return unknown(str(exc))
    path = find_config_path(getattr(args, "config", None), os.environ)
    overrides = Overrides(args.warning, args.critical)

    async def go() -> CheckReport:
        db = database_for(config, config.database.dsn) if config.database.dsn else None
        try:
            return await asyncio.wait_for(
                run_check(config, db, only=args.only, overrides=overrides,
                          no_dsn_reason=f"database.dsn is not set in {path}"),
                timeout=args.timeout,
            )  # fmt: skip
        finally:
            if db is not None:
                await db.close()

    try:
        report = run_async(go())
    except CheckSetupError as exc:
        return unknown(str(exc))
    except TimeoutError:
        return unknown(f"check timed out after {format_duration_human(args.timeout)} (-t {args.timeout:g})")
    if args.json:
        print(json.dumps({
            "status": report.status,
            "exit_code": report.exit_code,
            "endpoints_checked": report.endpoints_checked,
            "database_up": report.database_up,
            "findings": [asdict(f) for f in report.findings],
            "not_judged": [asdict(n) for n in report.not_judged],
            "no_data": [asdict(n) for n in report.no_data],
            "perfdata": [str(p) for p in report.perfdata],
        }, indent=2))  # fmt: skip
        return report.exit_code
    print(status_line(SERVICE, report.state, report.summary(), report.perfdata))
    if report.state == UNKNOWN:
        return report.exit_code
    for finding in report.findings:
        print(plugin_text(f"{finding.severity.upper()}: {finding.message}", 1000))
    for skipped in report.not_judged:
        print(plugin_text(f"NOT JUDGED: {skipped.rule} ({skipped.reason})", 1000))
    for missing in report.no_data:
        print(plugin_text(f"NO DATA: {missing.rule} ({missing.reason})", 1000))
    return report.exit_code
