"""opswatch dlq list|show|retry|abandon|resolve|reopen and opswatch events list|show|retry|resolve.

One set of subcommands per triage kind (``core.triage.SPECS``); the action subcommands come from
the kind's transitions. Exit codes: 0 everything asked for was applied (or shown); 1 some rows
were skipped, failed, or the bulk action was declined or cancelled; 2 bad input (one line on stderr).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from cli.commands.common import UsageError, subparser
from cli.commands.triage_io import (
    SORTS,
    add_action_flags,
    add_filter_flags,
    age,
    build_filter,
    check_target,
    confirm,
    decode_cursor,
    leaf,
    page_footer,
    positive_int,
    print_history,
    print_json,
    print_preview,
    print_result,
    print_table,
    run,
    run_bulk,
    single_id,
)
from core.api import (
    DLQ,
    EVENTS,
    ActionResult,
    Config,
    DlqDetail,
    DlqRow,
    EventDetail,
    EventRow,
    KindSpec,
    TriageService,
    display_text,
)

FlagGroup = argparse._ArgumentGroup


@dataclass(frozen=True)
class CliKind:
    """How the CLI names, filters, lists and shows one kind (the actions come from its spec)."""

    spec: KindSpec[Any, Any, Any]
    summary: str
    description: str
    what: str
    """The row in messages: ``not a dead-letter id``."""
    list_help: str
    show_help: str
    raw_help: str
    kind_flags: Callable[[FlagGroup], None]
    kind_fields: Callable[[argparse.Namespace], dict[str, Any]]
    headers: tuple[str, ...]
    widths: tuple[int, ...]
    cells: Callable[[Any, datetime], list[str]]
    show: Callable[[Any], None]


def _dlq_flags(group: FlagGroup) -> None:
    group.add_argument("--channel", type=positive_int, metavar="ID", help="social channel id")


def _event_flags(group: FlagGroup) -> None:
    group.add_argument("--event", metavar="NAME", help="event name (exact)")


def _dlq_cells(r: DlqRow, now: datetime) -> list[str]:
    channel = f"{r.channel_name} ({r.platform})" if r.platform else r.channel_name
    return [str(r.id), age(r.created_at, now), r.status, str(r.retry_count), r.business_name, channel,
            r.error_first_line]  # fmt: skip


def _event_cells(r: EventRow, now: datetime) -> list[str]:
    return [str(r.id), age(r.created_at, now), r.status, str(r.retry_count), r.business_name, r.event_name,
            r.error_first_line]  # fmt: skip


def _created_line(created_at: datetime, resolved_at: datetime | None) -> str:
    return f"created {created_at.isoformat(timespec='seconds')} ({age(created_at)} ago)" + (
        f"  resolved {resolved_at.isoformat(timespec='seconds')}" if resolved_at else ""
    )


def _payload_heading(name: str, detail: DlqDetail | EventDetail) -> str:
    more = ", truncated: use --raw for all of it)" if detail.payload_truncated else ")"
    return f"{name} ({detail.payload_bytes} bytes{more}:"


def _show_dlq(detail: DlqDetail) -> None:
    r = detail.row
    print(f"dead letter {r.id}  status {r.status}  retries {r.retry_count}  message {r.message_id}")
    print(
        f"business {r.business_name} (#{r.business_id})  channel {r.channel_name} "
        f"({r.platform + ', ' if r.platform else ''}#{r.channel_id})"
    )
    print(_created_line(r.created_at, r.resolved_at))
    print("error:")
    print(detail.error_message)
    print(_payload_heading("payload", detail))
    print(detail.payload_pretty)
    print_history(detail.history)


def _show_event(detail: EventDetail) -> None:
    r = detail.row
    print(f"event failure {r.id}  {r.event_name}  status {r.status}  retries {r.retry_count}")
    print(f"business {r.business_name} (#{r.business_id})")
    print(_created_line(r.created_at, r.resolved_at))
    print("error:")
    print(detail.error_message)
    if detail.error_stack:
        print("stack:")
        print(detail.error_stack)
    print(_payload_heading("event_data", detail))
    print(detail.payload_pretty or "(none)")
    print_history(detail.history)


KINDS = (
    CliKind(
        DLQ,
        "list, inspect and act on dead-lettered messages",
        "Dead-letter queue triage (table dead_letter_messages). Actions are conditional on each row's "
        "current state, so two operators never retry the same row twice; every action is audited.",
        "dead-letter",
        "list dead letters (default: pending, newest first)",
        "one dead letter: full error, payload and history",
        "print only the stored payload, unformatted",
        _dlq_flags,
        lambda args: {"channel_id": args.channel},
        ("ID", "AGE", "STATUS", "TRIES", "BUSINESS", "CHANNEL", "ERROR"),
        (9, 5, 9, 5, 18, 18, 60),
        _dlq_cells,
        _show_dlq,
    ),
    CliKind(
        EVENTS,
        "list, inspect and act on failed system events",
        "Event-failure triage (table event_failures). Actions are conditional on each row's current "
        "state and audited.",
        "event failure",
        "list event failures (default: failed, newest first)",
        "one event failure: error, stack, payload and history",
        "print only the stored event_data, unformatted",
        _event_flags,
        lambda args: {"event_name": args.event or None},
        ("ID", "AGE", "STATUS", "TRIES", "BUSINESS", "EVENT", "ERROR"),
        (9, 5, 9, 5, 18, 22, 60),
        _event_cells,
        _show_event,
    ),
)


def register(subparsers: Any) -> None:
    for kind in KINDS:
        _register_kind(subparsers, kind)


def _register_kind(subparsers: Any, kind: CliKind) -> None:
    name = kind.spec.name
    parser = subparser(subparsers, name, kind.summary, kind.description)
    sub = parser.add_subparsers(dest=f"{name}_command", metavar="ACTION", required=True)

    ls = leaf(sub, "list", help=kind.list_help)
    add_filter_flags(ls, kind.kind_flags)
    ls.add_argument("--sort", choices=list(SORTS), default="newest")
    ls.add_argument("--limit", type=int, default=50, help="rows per page (1-1000)")
    ls.add_argument("--cursor", help="continue from a previous page (printed under the list)")
    ls.add_argument("--json", action="store_true", help="print as JSON")
    ls.set_defaults(handler=lambda args: _list(kind, args))

    show = leaf(sub, "show", help=kind.show_help)
    show.add_argument("id", help=f"{kind.what} id")
    show.add_argument("--raw", action="store_true", help=kind.raw_help)
    show.add_argument("--json", action="store_true", help="print as JSON")
    show.set_defaults(handler=lambda args: _show(kind, args))

    for t in kind.spec.transitions:
        action = leaf(
            sub,
            t.name,
            help=t.help,
            description=t.help + ". Give ids, or --all-matching "
            "with filters (a preview is shown and confirmation asked unless --yes).",
        )
        add_action_flags(action, kind.kind_flags, reason_required=t.reason_required)
        action.set_defaults(handler=lambda args, kind=kind: _action(kind, args), **{f"{name}_action": t.name})


def _filter(kind: CliKind, args: argparse.Namespace, default_status: tuple[str, ...]) -> Any:
    return build_filter(args, kind.spec, default_status, **kind.kind_fields(args))


def _list(kind: CliKind, args: argparse.Namespace) -> int:
    f = _filter(kind, args, kind.spec.default_status)
    cursor = decode_cursor(args.cursor)

    async def body(svc: TriageService, _config: Config) -> int:
        page = await svc.kind(kind.spec.name).list(f, SORTS[args.sort], cursor, args.limit)
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
        print_table(kind.headers, kind.widths, [kind.cells(r, now) for r in page.rows])
        page_footer(page)
        return 0

    return run(args, body)


def _show(kind: CliKind, args: argparse.Namespace) -> int:
    row_id = single_id(args.id, kind.what)

    async def body(svc: TriageService, _config: Config) -> int:
        triage = svc.kind(kind.spec.name)
        if args.raw:
            raw = await triage.raw(row_id, "payload")
            print(display_text(raw, max(len(raw), 1), multiline=True) if sys.stdout.isatty() else raw)
            return 0
        detail = await triage.detail(row_id)
        if detail is None:
            print(f"{kind.spec.singular} {row_id} not found", file=sys.stderr)
            return 1
        if args.json:
            print_json(detail)
            return 0
        kind.show(detail)
        return 0

    return run(args, body)


def _action(kind: CliKind, args: argparse.Namespace) -> int:
    t = kind.spec.transition(getattr(args, f"{kind.spec.name}_action"))
    name, noun = t.name, kind.spec.noun
    ids = check_target(args, kind.what)
    f = None if ids else _filter(kind, args, ())
    if t.reason_required and not (args.reason or "").strip():
        raise UsageError(f"--reason is required to {name}")

    async def body(svc: TriageService, config: Config) -> int:
        triage = svc.kind(kind.spec.name)
        if ids is not None:
            return print_result(await triage.act(name, ids, args.reason), args.json)
        assert f is not None
        preview = await triage.preview(f, action=name)
        stream = sys.stderr if args.json else sys.stdout
        if preview.count == 0:
            print(f"nothing to {name}: no {noun} match", file=stream)
            if args.json:
                print_result(ActionResult(t.action), True)
            return 0
        print_preview(preview, f"{name}:", noun, stream)
        if not confirm(preview.count, name, config, args.yes):
            print("cancelled, nothing changed", file=sys.stderr)
            return 1
        result = await run_bulk(
            lambda cancel, progress: triage.bulk(
                f, name, args.reason, progress=progress, cancel=cancel, rate_limit=args.rate_limit
            )
        )
        return print_result(result, args.json)

    return run(args, body)
