"""opswatch events list|show|retry|resolve (table event_failures). Exit codes as for `dlq`."""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime
from typing import Any

from core.config import Config
from core.safe_text import display_text
from core.triage import ActionResult, TriageService
from tui.commands.common import subparser
from tui.commands.dlq import (
    SORTS,
    add_action_flags,
    add_filter_flags,
    age,
    check_target,
    confirm,
    decode_cursor,
    event_cells,
    event_filter,
    leaf,
    page_footer,
    print_history,
    print_json,
    print_preview,
    print_result,
    print_table,
    run,
    run_bulk,
    single_id,
)


def register(subparsers: Any) -> None:
    parser = subparser(
        subparsers,
        "events",
        "list, inspect and act on failed system events",
        "Event-failure triage (table event_failures). Actions are conditional on each row's current "
        "state and audited.",
    )
    sub = parser.add_subparsers(dest="events_command", metavar="ACTION", required=True)

    ls = leaf(sub, "list", help="list event failures (default: failed, newest first)")
    add_filter_flags(ls, events=True)
    ls.add_argument("--sort", choices=list(SORTS), default="newest")
    ls.add_argument("--limit", type=int, default=50, help="rows per page (1-1000)")
    ls.add_argument("--cursor", help="continue from a previous page (printed under the list)")
    ls.add_argument("--json", action="store_true", help="print as JSON")
    ls.set_defaults(handler=_list)

    show = leaf(sub, "show", help="one event failure: error, stack, payload and history")
    show.add_argument("id", help="event failure id")
    show.add_argument("--raw", action="store_true", help="print only the stored event_data, unformatted")
    show.add_argument("--json", action="store_true", help="print as JSON")
    show.set_defaults(handler=_show)

    helps = {
        "retry": "retry failed events (failed -> retrying, retry_count + 1, redrive)",
        "resolve": "mark event failures resolved (failed or retrying -> resolved)",
    }
    for name, text in helps.items():
        action = leaf(
            sub,
            name,
            help=text,
            description=text + ". Give ids, or --all-matching "
            "with filters (a preview is shown and confirmation asked unless --yes).",
        )
        add_action_flags(action, events=True)
        action.set_defaults(handler=_action, events_action=name)


def _list(args: argparse.Namespace) -> int:
    f = event_filter(args, ("failed",))
    cursor = decode_cursor(args.cursor)

    async def body(svc: TriageService, _config: Config) -> int:
        page = await svc.list_events(f, SORTS[args.sort], cursor, args.limit)
        if args.json:
            print_json(
                {
                    "rows": page.rows,
                    "total": page.total,
                    "next_cursor": page.next_cursor.encode() if page.next_cursor else None,
                    "prev_cursor": page.prev_cursor.encode() if page.prev_cursor else None,
                }
            )
            return 0
        now = datetime.now(UTC)
        print_table(
            ["ID", "AGE", "STATUS", "TRIES", "BUSINESS", "EVENT", "ERROR"],
            [9, 5, 9, 5, 18, 22, 60],
            [event_cells(r, now) for r in page.rows],
        )
        page_footer(page)
        return 0

    return run(args, body)


def _show(args: argparse.Namespace) -> int:
    row_id = single_id(args.id, "event failure")

    async def body(svc: TriageService, _config: Config) -> int:
        if args.raw:
            raw = await svc.raw_payload("event", row_id)
            print(display_text(raw, max(len(raw), 1), multiline=True) if sys.stdout.isatty() else raw)
            return 0
        detail = await svc.event_detail(row_id)
        if detail is None:
            print(f"event failure {row_id} not found", file=sys.stderr)
            return 1
        if args.json:
            print_json(detail)
            return 0
        r = detail.row
        print(f"event failure {r.id}  {r.event_name}  status {r.status}  retries {r.retry_count}")
        print(f"business {r.business_name} (#{r.business_id})")
        print(
            f"created {r.created_at.isoformat(timespec='seconds')} ({age(r.created_at)} ago)"
            + (f"  resolved {r.resolved_at.isoformat(timespec='seconds')}" if r.resolved_at else "")
        )
        print("error:")
        print(detail.error_message)
        if detail.error_stack:
            print("stack:")
            print(detail.error_stack)
        print(
            f"event_data ({detail.payload_bytes} bytes"
            + (", truncated: use --raw for all of it)" if detail.payload_truncated else ")")
            + ":"
        )
        print(detail.payload_pretty or "(none)")
        print_history(detail.history)
        return 0

    return run(args, body)


def _action(args: argparse.Namespace) -> int:
    name: str = args.events_action
    ids = check_target(args, "event failure")
    f = None if ids else event_filter(args, ())

    async def body(svc: TriageService, config: Config) -> int:
        if ids is not None:
            method = {"retry": svc.retry_events, "resolve": svc.resolve_events}[name]
            return print_result(await method(ids, args.reason), args.json)
        assert f is not None
        preview = await svc.preview_events(f, action=name)
        stream = sys.stderr if args.json else sys.stdout
        if preview.count == 0:
            print(f"nothing to {name}: no event failures match", file=stream)
            if args.json:
                print_result(ActionResult(f"events.{name}"), True)
            return 0
        print_preview(preview, f"{name}:", "event failures", stream)
        if not confirm(preview.count, name, config, args.yes):
            print("cancelled, nothing changed", file=sys.stderr)
            return 1
        result = await run_bulk(
            lambda cancel, progress: svc.bulk_events(
                name, f, reason=args.reason, progress=progress, cancel=cancel, rate_limit=args.rate_limit
            )
        )
        return print_result(result, args.json)

    return run(args, body)
