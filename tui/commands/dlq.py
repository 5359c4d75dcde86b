"""opswatch dlq list|show|retry|abandon|resolve|reopen (and the helpers `events` shares).

Exit codes: 0 everything asked for was applied (or shown); 1 some rows were skipped, failed,
or the bulk action was declined or cancelled; 2 bad input (one line on stderr).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import signal
import sys
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import asdict, is_dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

import asyncpg

from core.audit import AuditEntry, default_actor
from core.config import Config
from core.db import Database, DatabaseUnavailable
from core.durations import parse_duration
from core.errors import ReadOnlyError
from core.safe_text import display_text
from core.triage import (
    ActionResult,
    BulkPreview,
    BulkProgress,
    Cursor,
    DlqFilter,
    DlqRow,
    EventFilter,
    EventRow,
    Page,
    Sort,
    TriageService,
)
from tui.commands.common import (
    UsageError,
    load_config_for,
    require_dsn,
    run_async,
    subparser,
)
from tui.commands.runtime import database_for

T = TypeVar("T")
SORTS = {"newest": Sort.NEWEST, "oldest": Sort.OLDEST, "retries": Sort.MOST_RETRIES}
MAX_LISTED = 20


# --------------------------------------------------------------------------- shared plumbing


async def with_service(args: argparse.Namespace, body: Callable[[TriageService, Config], Awaitable[T]]) -> T:
    """Open the database, run ``body`` and turn expected failures into one-line UsageErrors."""
    config = load_config_for(args)
    db: Database = database_for(config, require_dsn(config))
    read_only = bool(getattr(args, "read_only", False)) or config.ui.read_only
    service = TriageService(db, config, actor=default_actor(config.triage.actor), read_only=read_only)
    try:
        return await body(service, config)
    except (ValueError, ReadOnlyError) as exc:
        raise UsageError(str(exc)) from exc
    except DatabaseUnavailable as exc:
        raise UsageError(f"database unavailable: {exc.reason}") from exc
    except asyncpg.UndefinedTableError as exc:
        raise UsageError(
            f"{display_text(str(exc), 200)} (check database.tables in the config; for schema 'opswatch' "
            "run 'opswatch db migrate')"
        ) from exc
    except asyncpg.PostgresError as exc:
        raise UsageError(f"database error: {display_text(str(exc), 300)}") from exc
    finally:
        await service.aclose()
        await db.close()


def leaf(sub: Any, name: str, **kwargs: Any) -> argparse.ArgumentParser:
    """A sub-subcommand (tui.cli gives every one --config and --read-only)."""
    parser: argparse.ArgumentParser = sub.add_parser(name, **kwargs)
    return parser


def run(args: argparse.Namespace, body: Callable[[TriageService, Config], Awaitable[int]]) -> int:
    return run_async(with_service(args, body))


def parse_ids(values: Sequence[str], what: str) -> list[int]:
    out: list[int] = []
    for value in values:
        for part in value.replace(",", " ").split():
            if not part.isdigit() or int(part) <= 0:
                raise UsageError(f"not a {what} id: {display_text(part, 40)!r}")
            out.append(int(part))
    return out


def single_id(value: str, what: str) -> int:
    ids = parse_ids([value], what)
    if len(ids) != 1:
        raise UsageError(f"give exactly one {what} id")
    return ids[0]


def parse_statuses(value: str | None, known: tuple[str, ...], default: tuple[str, ...]) -> tuple[str, ...]:
    if value is None:
        return default
    if value.strip().lower() in ("any", "all", "*"):
        return ()
    parts = tuple(p.strip().lower() for p in value.split(",") if p.strip())
    for part in parts:
        if part not in known:
            raise UsageError(f"unknown status {part!r} (one of: {', '.join(known)}, or 'any')")
    return parts


def parse_age(value: str | None, flag: str) -> float | None:
    if value is None:
        return None
    try:
        seconds = parse_duration(value)
    except ValueError as exc:
        raise UsageError(f"{flag}: {exc}") from exc
    if seconds < 0:
        raise UsageError(f"{flag} must not be negative")
    return seconds


def add_filter_flags(parser: argparse.ArgumentParser, *, events: bool) -> None:
    group = parser.add_argument_group("filters")
    group.add_argument("--status", metavar="S[,S]", help="status(es) to match, comma-separated, or 'any'")
    group.add_argument(
        "--business", type=_business_ref, metavar="ID|NAME", help="business id, or name (case-insensitive)"
    )
    if events:
        group.add_argument("--event", metavar="NAME", help="event name (exact)")
    else:
        group.add_argument("--channel", type=_positive_int, metavar="ID", help="social channel id")
    group.add_argument("--text", metavar="TEXT", help="case-insensitive substring of the error message")
    group.add_argument("--older-than", metavar="DURATION", help="created before this long ago (e.g. 1h, 2d)")
    group.add_argument("--newer-than", metavar="DURATION", help="created within this long (e.g. 30m)")


def _positive_int(value: str) -> int:
    if not value.strip().isdigit() or int(value) <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive integer id, got {value!r}")
    return int(value)


def _business_ref(value: str) -> int | str:
    """An id (digits) or a business name, resolved by the service (ambiguous names are refused)."""
    text = value.strip()
    if text.isdigit():
        return _positive_int(text)
    if not text or len(text) > 200 or "\x00" in text:
        raise argparse.ArgumentTypeError("expected a business id or a name of 1-200 characters")
    return text


def _business(args: argparse.Namespace) -> dict[str, Any]:
    value = args.business
    return {"business_name": value} if isinstance(value, str) else {"business_id": value}


def filter_given(args: argparse.Namespace) -> bool:
    names = ("status", "business", "channel", "event", "text", "older_than", "newer_than")
    return any(getattr(args, n, None) is not None for n in names)


def dlq_filter(args: argparse.Namespace, default_status: tuple[str, ...]) -> DlqFilter:
    from core.triage import DLQ_STATUSES

    return DlqFilter(
        status=parse_statuses(args.status, DLQ_STATUSES, default_status),
        **_business(args),
        channel_id=args.channel,
        text=args.text or None,
        min_age_s=parse_age(args.older_than, "--older-than"),
        max_age_s=parse_age(args.newer_than, "--newer-than"),
    )


def event_filter(args: argparse.Namespace, default_status: tuple[str, ...]) -> EventFilter:
    from core.triage import EVENT_STATUSES

    return EventFilter(
        status=parse_statuses(args.status, EVENT_STATUSES, default_status),
        **_business(args),
        event_name=args.event or None,
        text=args.text or None,
        min_age_s=parse_age(args.older_than, "--older-than"),
        max_age_s=parse_age(args.newer_than, "--newer-than"),
    )


def to_jsonable(value: Any) -> Any:
    if is_dataclass(value) and not isinstance(value, type):
        return {k: to_jsonable(v) for k, v in asdict(value).items()}
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, tuple | list):
        return [to_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    return value


def print_json(value: Any) -> None:
    print(json.dumps(to_jsonable(value), ensure_ascii=False, indent=2))


def age(value: datetime | None, now: datetime | None = None) -> str:
    if value is None:
        return "-"
    seconds = max(0.0, ((now or datetime.now(UTC)) - value).total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{int(seconds // size)}{unit}"
    return f"{int(seconds)}s"


def _cell(text: str, width: int) -> str:
    text = display_text(text, max(width, 2))
    return text.ljust(width)


def print_table(headers: Sequence[str], widths: Sequence[int], rows: Sequence[Sequence[str]]) -> None:
    print("  ".join(_cell(h, w) for h, w in zip(headers, widths, strict=True)).rstrip())
    for row in rows:
        print("  ".join(_cell(c, w) for c, w in zip(row, widths, strict=True)).rstrip())


def page_footer(page: Page[Any]) -> None:
    shown = len(page.rows)
    line = f"{shown} of {page.total} matching"
    if page.next_cursor is not None:
        line += f"; next page: --cursor {page.next_cursor.encode()}"
    if page.prev_cursor is not None:
        line += f"; previous: --cursor {page.prev_cursor.encode()}"
    print(line)


def decode_cursor(token: str | None) -> Cursor | None:
    if token is None:
        return None
    try:
        return Cursor.decode(token)
    except ValueError as exc:
        raise UsageError(str(exc)) from exc


def print_result(result: ActionResult, as_json: bool) -> int:
    if as_json:
        print_json({**to_jsonable(result), "counts": result.counts})
    else:
        print(f"{result.action}: {result.counts}")
        for s in result.skipped[:MAX_LISTED]:
            by = f" by {display_text(s.by, 100)}" if s.by else ""
            print(f"  skipped {s.id}: {display_text(s.reason, 200)}{by}")
        for f in result.failed[:MAX_LISTED]:
            print(f"  failed {f.id}: {display_text(f.error, 300)}")
        hidden = max(0, len(result.skipped) - MAX_LISTED) + max(0, len(result.failed) - MAX_LISTED)
        if hidden:
            print(f"  ... and {hidden} more (use --json for all)")
    return 0 if result.all_applied else 1


def print_history(history: Sequence[AuditEntry]) -> None:
    if not history:
        print("history: none")
        return
    print("history:")
    for h in history:
        frm = f" from {h.from_state}" if h.from_state else ""
        note = f" - {display_text(h.reason, 200)}" if h.reason else ""
        err = (h.detail or {}).get("error")
        extra = f" ({display_text(err, 200)})" if err else ""
        print(f"  {h.at.isoformat(timespec='seconds')}  {h.actor}  {h.action}{frm}: {h.outcome}{extra}{note}")


def print_preview(p: BulkPreview, verb: str, noun: str, stream: Any) -> None:
    def line(text: str) -> None:
        print(text, file=stream)

    line(
        f"{verb} {p.count} {noun}"
        + (
            f" created {p.oldest.isoformat(timespec='seconds')} .. {p.newest.isoformat(timespec='seconds')}"
            if p.oldest and p.newest
            else ""
        )
    )
    for title, groups in (
        ("top errors", p.top_errors),
        ("businesses", p.businesses),
        ("channels", p.channels),
        ("events", p.event_names),
    ):
        if groups:
            line(f"  {title}:")
            for g in groups[:5]:
                line(f"    {g.count:>8}  {display_text(g.key, 100)}")


def confirm(count: int, verb: str, config: Config, assume_yes: bool) -> bool:
    if assume_yes:
        return True
    if not sys.stdin.isatty():
        raise UsageError(
            f"refusing to {verb} {count} rows without confirmation: stdin is not a terminal (add --yes)"
        )
    if count > config.triage.confirm_typed_over:
        answer = input(f"Type {count} to {verb} {count} rows (anything else cancels): ").strip()
        return answer == str(count)
    answer = input(f"{verb.capitalize()} {count} rows? [y/N] ").strip().lower()
    return answer in ("y", "yes")


def progress_printer() -> Callable[[BulkProgress], None] | None:
    if not sys.stderr.isatty():
        return None

    def show(p: BulkProgress) -> None:
        sys.stderr.write(
            f"\r{p.done}/{p.total}  applied {p.applied}  skipped {p.skipped}  failed {p.failed}   "
        )
        sys.stderr.flush()
        if p.done >= p.total:
            sys.stderr.write("\n")

    return show


async def run_bulk(
    run_action: Callable[[asyncio.Event, Callable[[BulkProgress], None] | None], Awaitable[ActionResult]],
) -> ActionResult:
    """Run a bulk action; Ctrl-C cancels between batches (committed batches stay)."""
    cancel = asyncio.Event()
    loop = asyncio.get_running_loop()
    installed = False
    with contextlib.suppress(NotImplementedError, RuntimeError):
        loop.add_signal_handler(signal.SIGINT, cancel.set)
        installed = True
    try:
        return await run_action(cancel, progress_printer())
    finally:
        if installed:
            loop.remove_signal_handler(signal.SIGINT)


def add_action_flags(parser: argparse.ArgumentParser, *, events: bool, reason_required: bool = False) -> None:
    parser.add_argument("ids", nargs="*", metavar="ID", help="row ids (space or comma separated)")
    parser.add_argument(
        "--all-matching",
        action="store_true",
        help="act on every row matching the filters (beyond any page), in batches",
    )
    parser.add_argument("--yes", "-y", action="store_true", help="do not ask for confirmation")
    if reason_required:
        parser.add_argument("--reason", required=False, help="why (required)")
    else:
        parser.add_argument("--note", "--reason", dest="reason", help="note stored in the audit log")
    parser.add_argument(
        "--rate-limit",
        type=float,
        metavar="N",
        help="at most N rows per second (default: triage.rate_limit for retries)",
    )
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    add_filter_flags(parser, events=events)


def check_target(args: argparse.Namespace, what: str) -> list[int] | None:
    """Explicit ids, or None for --all-matching; UsageError for both or neither."""
    ids = parse_ids(args.ids, what)
    if ids and args.all_matching:
        raise UsageError("give ids or --all-matching, not both")
    if ids and filter_given(args):
        raise UsageError("filters apply to --all-matching only; with explicit ids leave them out")
    if not ids and not args.all_matching:
        raise UsageError(f"which rows? give {what} ids or --all-matching with filters")
    if args.rate_limit is not None and args.rate_limit <= 0:
        raise UsageError("--rate-limit must be greater than zero")
    return ids or None


# --------------------------------------------------------------------------- dlq


def register(subparsers: Any) -> None:
    parser = subparser(
        subparsers,
        "dlq",
        "list, inspect and act on dead-lettered messages",
        "Dead-letter queue triage (table dead_letter_messages). Actions are conditional on each row's "
        "current state, so two operators never retry the same row twice; every action is audited.",
    )
    sub = parser.add_subparsers(dest="dlq_command", metavar="ACTION", required=True)

    ls = leaf(sub, "list", help="list dead letters (default: pending, newest first)")
    add_filter_flags(ls, events=False)
    ls.add_argument("--sort", choices=list(SORTS), default="newest")
    ls.add_argument("--limit", type=int, default=50, help="rows per page (1-1000)")
    ls.add_argument("--cursor", help="continue from a previous page (printed under the list)")
    ls.add_argument("--json", action="store_true", help="print as JSON")
    ls.set_defaults(handler=_list)

    show = leaf(sub, "show", help="one dead letter: full error, payload and history")
    show.add_argument("id", help="dead-letter id")
    show.add_argument("--raw", action="store_true", help="print only the stored payload, unformatted")
    show.add_argument("--json", action="store_true", help="print as JSON")
    show.set_defaults(handler=_show)

    helps = {
        "retry": "retry pending dead letters (pending -> retried, retry_count + 1, redrive)",
        "abandon": "abandon pending dead letters (pending -> abandoned; --reason required)",
        "resolve": "mark dead letters resolved (pending or retried -> resolved)",
        "reopen": "reopen abandoned or retried dead letters (-> pending)",
    }
    for name, text in helps.items():
        action = leaf(
            sub,
            name,
            help=text,
            description=text + ". Give ids, or --all-matching "
            "with filters (a preview is shown and confirmation asked unless --yes).",
        )
        add_action_flags(action, events=False, reason_required=(name == "abandon"))
        action.set_defaults(handler=_action, dlq_action=name)


def _list(args: argparse.Namespace) -> int:
    f = dlq_filter(args, ("pending",))
    cursor = decode_cursor(args.cursor)

    async def body(svc: TriageService, _config: Config) -> int:
        page = await svc.list_dlq(f, SORTS[args.sort], cursor, args.limit)
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
            ["ID", "AGE", "STATUS", "TRIES", "BUSINESS", "CHANNEL", "ERROR"],
            [9, 5, 9, 5, 18, 18, 60],
            [_dlq_cells(r, now) for r in page.rows],
        )
        page_footer(page)
        return 0

    return run(args, body)


def _dlq_cells(r: DlqRow, now: datetime) -> list[str]:
    channel = f"{r.channel_name} ({r.platform})" if r.platform else r.channel_name
    return [
        str(r.id),
        age(r.created_at, now),
        r.status,
        str(r.retry_count),
        r.business_name,
        channel,
        r.error_first_line,
    ]


def _show(args: argparse.Namespace) -> int:
    row_id = single_id(args.id, "dead-letter")

    async def body(svc: TriageService, _config: Config) -> int:
        if args.raw:
            raw = await svc.raw_payload("dlq", row_id)
            print(display_text(raw, max(len(raw), 1), multiline=True) if sys.stdout.isatty() else raw)
            return 0
        detail = await svc.dlq_detail(row_id)
        if detail is None:
            print(f"dead letter {row_id} not found", file=sys.stderr)
            return 1
        if args.json:
            print_json(detail)
            return 0
        r = detail.row
        print(f"dead letter {r.id}  status {r.status}  retries {r.retry_count}  message {r.message_id}")
        print(
            f"business {r.business_name} (#{r.business_id})  channel {r.channel_name} "
            f"({r.platform + ', ' if r.platform else ''}#{r.channel_id})"
        )
        print(
            f"created {r.created_at.isoformat(timespec='seconds')} ({age(r.created_at)} ago)"
            + (f"  resolved {r.resolved_at.isoformat(timespec='seconds')}" if r.resolved_at else "")
        )
        print("error:")
        print(detail.error_message)
        print(
            f"payload ({detail.payload_bytes} bytes"
            + (", truncated: use --raw for all of it)" if detail.payload_truncated else ")")
            + ":"
        )
        print(detail.payload_pretty)
        print_history(detail.history)
        return 0

    return run(args, body)


def _action(args: argparse.Namespace) -> int:
    name: str = args.dlq_action
    ids = check_target(args, "dead-letter")
    f = None if ids else dlq_filter(args, ())
    if name == "abandon" and not (args.reason or "").strip():
        raise UsageError("--reason is required to abandon")

    async def body(svc: TriageService, config: Config) -> int:
        if ids is not None:
            method = {
                "retry": svc.retry_dlq,
                "abandon": svc.abandon_dlq,
                "resolve": svc.resolve_dlq,
                "reopen": svc.reopen_dlq,
            }[name]
            result = await method(ids, args.reason)
            return print_result(result, args.json)
        assert f is not None
        preview = await svc.preview_dlq(f, action=name)
        stream = sys.stderr if args.json else sys.stdout
        if preview.count == 0:
            print(f"nothing to {name}: no dead letters match", file=stream)
            if args.json:
                print_result(ActionResult(f"dlq.{name}"), True)
            return 0
        print_preview(preview, f"{name}:", "dead letters", stream)
        if not confirm(preview.count, name, config, args.yes):
            print("cancelled, nothing changed", file=sys.stderr)
            return 1
        result = await run_bulk(
            lambda cancel, progress: svc.bulk_dlq(
                name, f, reason=args.reason, progress=progress, cancel=cancel, rate_limit=args.rate_limit
            )
        )
        return print_result(result, args.json)

    return run(args, body)


def event_cells(r: EventRow, now: datetime) -> list[str]:
    return [
        str(r.id),
        age(r.created_at, now),
        r.status,
        str(r.retry_count),
        r.business_name,
        r.event_name,
        r.error_first_line,
    ]
