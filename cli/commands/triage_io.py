"""The plumbing of ``opswatch dlq|events ...`` (cli.commands.triage): service, parsing, printing.

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

from cli.commands.common import (
    UsageError,
    load_config_for,
    require_dsn,
    run_async,
)
from core.api import (
    ActionResult,
    AuditEntry,
    BulkPreview,
    BulkProgress,
    Config,
    Cursor,
    Database,
    DatabaseUnavailable,
    KindSpec,
    Page,
    ReadOnlyError,
    Sort,
    TriageService,
    database_for,
    default_actor,
    display_text,
    parse_duration,
)

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
    """A sub-subcommand (cli.main gives every one --config and --read-only)."""
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


def add_filter_flags(
    parser: argparse.ArgumentParser, kind_flags: Callable[[argparse._ArgumentGroup], None]
) -> None:
    group = parser.add_argument_group("filters")
    group.add_argument("--status", metavar="S[,S]", help="status(es) to match, comma-separated, or 'any'")
    group.add_argument(
        "--business", type=_business_ref, metavar="ID|NAME", help="business id, or name (case-insensitive)"
    )
    kind_flags(group)
    group.add_argument("--text", metavar="TEXT", help="case-insensitive substring of the error message")
    group.add_argument("--older-than", metavar="DURATION", help="created before this long ago (e.g. 1h, 2d)")
    group.add_argument("--newer-than", metavar="DURATION", help="created within this long (e.g. 30m)")


def positive_int(value: str) -> int:
    if not value.strip().isdigit() or int(value) <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive integer id, got {value!r}")
    return int(value)


def _business_ref(value: str) -> int | str:
    """An id (digits) or a business name, resolved by the service (ambiguous names are refused)."""
    text = value.strip()
    if text.isdigit():
        return positive_int(text)
    if not text or len(text) > 200 or "\x00" in text:
        raise argparse.ArgumentTypeError("expected a business id or a name of 1-200 characters")
    return text


def _business(args: argparse.Namespace) -> dict[str, Any]:
    value = args.business
    return {"business_name": value} if isinstance(value, str) else {"business_id": value}


def filter_given(args: argparse.Namespace) -> bool:
    names = ("status", "business", "channel", "event", "text", "older_than", "newer_than")
    return any(getattr(args, n, None) is not None for n in names)


def build_filter(
    args: argparse.Namespace,
    spec: KindSpec[Any, Any, Any],
    default_status: tuple[str, ...],
    **kind_fields: Any,
) -> Any:
    """The kind's filter from the common flags and ``kind_fields`` (its own flags)."""
    return spec.filter_type(
        status=parse_statuses(args.status, spec.statuses, default_status),
        **_business(args),
        **kind_fields,
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
    for title, groups in p.groups():
        if groups:
            line(f"  {'top errors' if title == 'errors' else title}:")
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


def add_action_flags(
    parser: argparse.ArgumentParser,
    kind_flags: Callable[[argparse._ArgumentGroup], None],
    *,
    reason_required: bool = False,
) -> None:
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
    add_filter_flags(parser, kind_flags)


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
