"""opswatch audit: who did what, newest first."""

from __future__ import annotations

import argparse
from typing import Any

from cli.commands.common import UsageError, subparser
from cli.commands.triage_io import print_json, run
from core.api import AuditLog, Config, TriageService, display_text


def register(subparsers: Any) -> None:
    parser = subparser(
        subparsers,
        "audit",
        "show the audit log (triage actions, acknowledgements, silences)",
        "Every action taken through opswatch (retry, abandon, resolve, reopen, alert acknowledgements, "
        "silences, ...) with actor, time, targets, reason and outcome, newest first.",
    )
    parser.add_argument("--limit", type=int, default=50, help="entries to show (default 50)")
    parser.add_argument("--before", type=int, metavar="ID", help="entries older than this audit id (paging)")
    parser.add_argument(
        "--kind", metavar="KIND", help="only this target kind (dlq, event, alert, silence, ...)"
    )
    parser.add_argument("--actor", help="only this actor")
    parser.add_argument(
        "--id", type=int, dest="target_id", metavar="ROW", help="only entries touching this row id"
    )
    parser.add_argument("--json", action="store_true", help="print as JSON")
    parser.set_defaults(handler=_audit)


def _ids(ids: tuple[int, ...]) -> str:
    if len(ids) <= 5:
        return ",".join(map(str, ids))
    return ",".join(map(str, ids[:5])) + f",… ({len(ids)} rows)"


def _audit(args: argparse.Namespace) -> int:
    if not 1 <= args.limit <= 10_000:
        raise UsageError("--limit must be between 1 and 10000")

    async def body(svc: TriageService, _config: Config) -> int:
        entries = await AuditLog(svc.db).read(
            limit=args.limit,
            before_id=args.before,
            target_kind=args.kind,
            actor=args.actor,
            target_id=args.target_id,
        )
        if args.json:
            print_json(entries)
            return 0
        if not entries:
            print("no audit entries match")
            return 0
        rows = [
            (str(e.id), e.at.isoformat(timespec="seconds"), e.actor, e.action,
             f"{e.target_kind} {_ids(e.target_ids) or (e.target_key or '')}".strip(), e.outcome,
             display_text(e.reason, 200) if e.reason else "")
            for e in entries
        ]  # fmt: skip
        header = ("ID", "AT", "ACTOR", "ACTION", "TARGET", "OUTCOME", "REASON")
        widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header) - 1)]
        for row in [header, *rows]:
            rest = [c.ljust(w) for c, w in zip(row[1:-1], widths[1:], strict=True)]
            cells = [row[0].rjust(widths[0]), *rest]
            print("  ".join([*cells, row[-1]]).rstrip())
        if entries and len(entries) == args.limit:
            print(f"older entries: --before {entries[-1].id}")
        return 0

    return run(args, body)
