"""opswatch check [--json]: one look, Nagios-style exit code."""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict
from typing import Any

from core.check import CheckReport, run_check
from tui.commands.common import load_config_for, run_async, subparser
from tui.commands.runtime import database_for


def register(subparsers: Any) -> None:
    parser = subparser(
        subparsers,
        "check",
        "probe and evaluate once; exit 0 ok, 1 warning, 2 critical (for cron and CI)",
        "Probe every endpoint once, read the database metrics once and judge every alert rule "
        "against its thresholds (ignoring 'for' durations). Exit code: 0 ok, 1 warning, 2 critical, "
        "as Nagios plugins do. Nothing is written and no notification is sent.",
    )
    parser.add_argument("--json", action="store_true", help="print the findings as JSON")
    parser.set_defaults(handler=_check)


def _check(args: argparse.Namespace) -> int:
    config = load_config_for(args)

    async def go() -> CheckReport:
        db = database_for(config, config.database.dsn) if config.database.dsn else None
        try:
            return await run_check(config, db)
        finally:
            if db is not None:
                await db.close()

    report = run_async(go())
    if args.json:
        print(json.dumps({
            "status": report.status,
            "endpoints_checked": report.endpoints_checked,
            "database_up": report.database_up,
            "findings": [asdict(f) for f in report.findings],
        }, indent=2))
    else:
        print(f"OPSWATCH {report.status.upper()} - {report.endpoints_checked} endpoints, "
              f"{len(report.findings)} findings")
        for finding in report.findings:
            print(f"  {finding.severity.upper():8} {finding.rule}: {finding.message}")
    return report.exit_code
