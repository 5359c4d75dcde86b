"""TriageService: the one entry point the console, the CLI and scripts use for DLQ/event triage."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from dataclasses import replace
from typing import Any, Literal, TypeVar, overload

import asyncpg
import httpx

import core.sources as sources
from core.audit import AuditEntry, read_audit
from core.config import Config
from core.db import Database
from core.errors import ReadOnlyError
from core.safe_text import display_text, first_line
from core.snapshot import CountBy, DlqSummary, EventSummary
from core.triage.actions import ActionContext, Transition, transition_for
from core.triage.bulk import ProgressCallback, act_on_filter, act_on_ids, narrow_status
from core.triage.doctor import SchemaReport, SchemaStatus, inspect_app_schema, unusable_error
from core.triage.flows import FlowTotals
from core.triage.kind import AnyFilter, DlqKind, EventsKind, TriageKind, spec_named
from core.triage.models import ActionResult, BulkPreview, Cursor, DlqFilter, Kind, Sort
from core.triage.queries import (
    business_by_name_sql,
    count_sql,
    detail_sql,
    fetch_planned,
    page_sql,
    preview_sqls,
    raw_sql,
    rows_by_id_sql,
    same_message_sql,
)
from core.triage.redrive import HttpRedrive, SqlRedrive
from core.triage.rows import display_name
from core.triage.schema import AppTables

MAX_PAGE = 1000
MAX_IDS = 100_000
MAX_REASON = 2000
SAME_MESSAGE_LIMIT = 20
SAME_MESSAGE_TIMEOUT_MS = 250
"""Without an index on message_id (``opswatch db advise``) the lookup scans; past this it is skipped."""
NAMES_LISTED = 5

F = TypeVar("F", bound=AnyFilter)


def _check_ids(ids: Iterable[Any]) -> list[int]:
    out: list[int] = []
    seen: set[int] = set()
    for value in ids:
        if isinstance(value, bool) or not isinstance(value, int):
            try:
                number = int(str(value).strip())
            except ValueError:
                raise ValueError(f"not a row id: {display_text(value, 40)!r}") from None
        else:
            number = value
        if not 0 < number < 2**63:
            raise ValueError(f"not a row id: {number}")
        if number not in seen:
            seen.add(number)
            out.append(number)
    if not out:
        raise ValueError("no ids given")
    if len(out) > MAX_IDS:
        raise ValueError(f"too many ids ({len(out)}); use a filter (--all-matching) instead")
    return out


def _check_reason(reason: str | None, t: Transition) -> str | None:
    text = (reason or "").strip()
    if "\x00" in text:
        raise ValueError("the reason must not contain NUL characters")
    if len(text) > MAX_REASON:
        raise ValueError(f"the reason is longer than {MAX_REASON} characters")
    if t.reason_required and not text:
        raise ValueError(f"a reason is required to {t.name} (what happened, why it is not retried)")
    return text or None


class TriageService:
    """Reads and actions on ``dead_letter_messages`` and ``event_failures``.

    Every mutating method raises :class:`core.errors.ReadOnlyError` when ``read_only`` and
    ``ValueError`` (one line) on bad input; nothing is changed in either case.
    """

    def __init__(
        self,
        db: Database,
        config: Config,
        *,
        actor: str,
        read_only: bool = False,
        http_client: httpx.AsyncClient | None = None,
    ) -> None:
        self.db = db
        self.config = config
        self.actor = actor
        self.read_only = read_only
        self.tables = AppTables.from_config(config)
        self._schema: SchemaReport | None = None
        self.flows = FlowTotals()
        self._http_client = http_client
        self._owns_client = False
        self._sql_redrive = SqlRedrive(self.tables)
        self._kinds: dict[str, TriageKind[Any, Any, Any]] = {}

    async def aclose(self) -> None:
        if self._owns_client and self._http_client is not None:
            await self._http_client.aclose()
            self._http_client = None

    async def __aenter__(self) -> TriageService:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    @overload
    def kind(self, name: Literal["dlq"]) -> DlqKind: ...
    @overload
    def kind(self, name: Literal["events"]) -> EventsKind: ...
    @overload
    def kind(self, name: str) -> TriageKind[Any, Any, Any]: ...
    def kind(self, name: str) -> TriageKind[Any, Any, Any]:
        """The generic API of one kind: ``dlq`` (dead letters) or ``events`` (event failures)."""
        if name not in self._kinds:
            self._kinds[name] = TriageKind(self, spec_named(name))
        return self._kinds[name]

    # -- the app's real schema ----------------------------------------------------------------

    async def schema_report(self, *, refresh: bool = False) -> SchemaReport:
        """The app tables compared with the configured names (introspected once, then cached;
        an unusable result is looked at again next time, so a fixed schema needs no restart);
        reads leave out the optional columns it finds missing."""
        if self._schema is None or refresh or self._schema.status is SchemaStatus.UNUSABLE:
            self._schema = await inspect_app_schema(self.db, self.config)
            self.tables = self._schema.apply(AppTables.from_config(self.config))
            self._sql_redrive = SqlRedrive(self.tables)
        return self._schema

    async def _usable(self, kind: Kind) -> None:
        """Raise AppSchemaError naming the config key when reads of ``kind`` cannot work."""
        error = unusable_error(await self.schema_report(), kind)
        if error is not None:
            raise error

    # -- reads ---------------------------------------------------------------------------------

    async def _page(
        self, kind: Kind, f: AnyFilter, sort: Sort, cursor: Cursor | None, limit: int
    ) -> tuple[list[asyncpg.Record], int, Cursor | None, Cursor | None]:
        await self._usable(kind)
        f = await self.with_business_id(f)
        sort = Sort(sort)
        if not 1 <= limit <= MAX_PAGE:
            raise ValueError(f"limit must be between 1 and {MAX_PAGE}")
        if cursor is not None and cursor.sort != sort:
            raise ValueError("the cursor belongs to another sort order; start from the first page")
        rows_q = page_sql(self.tables, kind, f, sort, cursor, limit + 1)
        count_q = count_sql(self.tables, kind, f)

        async def fetch(q: tuple[str, list[Any]]) -> list[asyncpg.Record]:
            return await fetch_planned(self.db, q[0], q[1])

        rows, counted = await asyncio.gather(fetch(rows_q), fetch(count_q))
        total = int(counted[0][0])
        more = len(rows) > limit
        rows = rows[:limit]
        backward = cursor is not None and cursor.backward
        if backward:
            if not more:  # reached the start: show the first page in full
                return await self._page(kind, f, sort, None, limit)
            rows.reverse()

        def key(r: asyncpg.Record) -> tuple[Any, ...]:
            return (r["k_first"], r["id"])

        if not rows:
            prev = Cursor(sort, cursor.key, True) if cursor is not None else None
            return rows, total, None, prev
        if backward:
            return rows, total, Cursor(sort, key(rows[-1])), Cursor(sort, key(rows[0]), True)
        next_cursor = Cursor(sort, key(rows[-1])) if more else None
        prev_cursor = Cursor(sort, key(rows[0]), True) if cursor is not None else None
        return rows, total, next_cursor, prev_cursor

    async def _detail(self, kind: Kind, id: Any) -> tuple[asyncpg.Record, asyncpg.Record] | None:
        row_id = _check_ids([id])[0]
        await self._usable(kind)
        async with self.db.acquire() as conn:
            rows = await conn.fetch(rows_by_id_sql(self.tables, kind), [row_id])
            if not rows:
                return None
            detail = await conn.fetchrow(detail_sql(self.tables, kind), row_id)
        if detail is None:
            return None
        return rows[0], detail

    async def _same_message(self, message_id: int) -> tuple[tuple[int, ...], int | None]:
        """(ids, total) of the dead letters of ``message_id``; ((), None) if it took too long."""
        try:
            async with self.db.acquire() as conn:  # the pool resets the setting on release
                await conn.execute(f"SET statement_timeout = {SAME_MESSAGE_TIMEOUT_MS}")
                rows = await conn.fetch(same_message_sql(self.tables), message_id, SAME_MESSAGE_LIMIT)
        except asyncpg.QueryCanceledError:
            return (), None
        return tuple(int(r["id"]) for r in rows), int(rows[0]["n"]) if rows else 0

    async def resolve_business(self, name_or_id: str) -> tuple[int, str]:
        """(id, display name) of the business given by id or by name (case-insensitive: an exact
        name first, else a unique part of one). ValueError, one line, when none or several match."""
        text = name_or_id.strip()
        if text.isdigit():
            number = int(text)
            if not 0 < number < 2**63:
                raise ValueError(f"not a business id: {text}")
            row = await self.db.fetchrow(
                f"SELECT {self.tables.businesses.c('name')} AS name FROM {self.tables.businesses.q} "
                f"WHERE {self.tables.businesses.c('id')} = $1",
                number,
            )
            return number, display_name(row["name"] if row else None, number)
        DlqFilter(business_name=text).validate()
        shown = display_text(text, 60)
        for substring in (False, True):
            rows = await self.db.fetch(
                business_by_name_sql(self.tables, substring=substring), text, NAMES_LISTED + 1
            )
            if len(rows) == 1:
                return int(rows[0]["id"]), display_name(rows[0]["name"], rows[0]["id"])
            if len(rows) > 1:
                names = ", ".join(f"#{r['id']} {display_text(r['name'], 40)}" for r in rows[:NAMES_LISTED])
                more = " …" if len(rows) > NAMES_LISTED else ""
                how = "name" if not substring else "part of a name"
                raise ValueError(f"business {how} {shown!r} is ambiguous: {names}{more}; give the id")
        raise ValueError(f"no business named {shown!r}")

    async def with_business_id(self, f: F) -> F:
        """``f`` validated, its business name (if any) replaced by that business's id."""
        f.validate()
        if f.business_name is None:
            return f
        business_id, _ = await self.resolve_business(f.business_name)
        if f.business_id is not None and f.business_id != business_id:
            raise ValueError("conflicting filters: business id and business name name different businesses")
        return replace(f, business_id=business_id, business_name=None)

    async def _raw(self, kind: Kind, id: int, column: str) -> str:
        row_id = _check_ids([id])[0]
        row = await self.db.fetchrow(raw_sql(self.tables, kind, column), row_id)
        if row is None:
            raise ValueError(f"{kind} {row_id} not found")
        value = row["value"]
        return "" if value is None else str(value)

    async def dlq_summary(self) -> DlqSummary:
        """The backlog, with running totals since this service's first summary (``flows``)."""
        await self._usable("dlq")
        summary = await sources.dlq_summary(self.db, self.config, self.tables)
        async with self.db.acquire() as conn:
            await self.flows.update_dlq(conn, self.tables)
        return replace(
            summary, created_total=self.flows.dlq_created, left_pending_total=self.flows.dlq_left_pending
        )

    async def event_summary(self) -> EventSummary:
        await self._usable("event")
        summary = await sources.event_summary(self.db, self.config, self.tables)
        async with self.db.acquire() as conn:
            await self.flows.update_events(conn, self.tables)
        return replace(
            summary, created_total=self.flows.events_created, created_by_event=self.flows.by_event()
        )

    async def audit(
        self, limit: int = 100, before_id: int | None = None, target_kind: str | None = None
    ) -> list[AuditEntry]:
        return await read_audit(self.db, limit=limit, before_id=before_id, target_kind=target_kind)

    async def latest_ids(self) -> tuple[int, int]:
        """(max dlq id, max event id): a cheap 'anything new?' check for polling."""
        d, e = self.tables.dlq, self.tables.events
        row = await self.db.fetchrow(
            f"SELECT (SELECT max({d.c('id')}) FROM {d.q}) AS d, (SELECT max({e.c('id')}) FROM {e.q}) AS e"
        )
        assert row is not None
        return int(row["d"] or 0), int(row["e"] or 0)

    # -- previews ------------------------------------------------------------------------------

    async def _preview(self, kind: Kind, f: AnyFilter, action: str | None) -> BulkPreview:
        await self._usable(kind)
        f = await self.with_business_id(f)
        if action is not None:
            f = narrow_status(f, transition_for(kind, action))
        queries = preview_sqls(self.tables, kind, f)
        async with self.db.acquire() as conn:
            await conn.execute("SET plan_cache_mode = force_custom_plan")
            results = {name: await conn.fetch(sql, *args) for name, (sql, args) in queries.items()}
        totals = results["totals"][0]

        def groups(name: str, label: Any) -> tuple[CountBy, ...]:
            return tuple(CountBy(label(r), int(r["n"])) for r in results.get(name, []))

        return BulkPreview(
            count=int(totals["n"]),
            oldest=totals["oldest"],
            newest=totals["newest"],
            top_errors=groups("errors", lambda r: first_line(r["k"] or "", 120)),
            businesses=groups(
                "businesses",
                lambda r: display_text(f"{r['name'] if r['name'] is not None else '?'} (#{r['k']})", 120),
            ),
            channels=groups(
                "channels",
                lambda r: display_text(
                    f"{r['name'] if r['name'] is not None else '?'} ({r['platform'] or '?'}, #{r['k']})"
                    if r["name"] is not None or r["platform"] is not None
                    else f"#{r['k']}",
                    120,
                ),
            ),
            event_names=groups("event_names", lambda r: display_text(r["k"], 100)),
        )

    # -- actions -------------------------------------------------------------------------------

    def _writable(self, what: str) -> None:
        if self.read_only:
            raise ReadOnlyError(f"read-only mode: {what} is not allowed")

    def _context(self, needs_http: bool) -> ActionContext:
        http = None
        if needs_http and self.config.triage.redrive.mode == "http":
            if self._http_client is None:
                self._http_client = httpx.AsyncClient(follow_redirects=False)
                self._owns_client = True
            http = HttpRedrive(self.config.triage.redrive, self._http_client)
        return ActionContext(self.db, self.tables, self.actor, self._sql_redrive, http)

    async def _act(self, kind: Kind, name: str, ids: Iterable[Any], reason: str | None) -> ActionResult:
        t = transition_for(kind, name)
        self._writable(t.action)
        checked = _check_ids(ids)
        note = _check_reason(reason, t)
        return await act_on_ids(
            self._context(t.redrive),
            t,
            checked,
            reason=note,
            batch_size=self.config.triage.batch_size,
            rate_limit=self.config.triage.rate_limit if t.redrive else None,
        )

    async def _bulk(
        self,
        kind: Kind,
        action: str,
        f: AnyFilter,
        reason: str | None,
        progress: ProgressCallback | None,
        cancel: asyncio.Event | None,
        rate_limit: float | None,
    ) -> ActionResult:
        t = transition_for(kind, action)
        self._writable(f"bulk {t.action}")
        f = await self.with_business_id(f)
        narrow_status(f, t)
        note = _check_reason(reason, t)
        if rate_limit is not None and rate_limit <= 0:
            raise ValueError("rate limit must be greater than zero")
        return await act_on_filter(
            self._context(t.redrive),
            t,
            f,
            reason=note,
            batch_size=self.config.triage.batch_size,
            progress=progress,
            cancel=cancel,
            rate_limit=rate_limit
            if rate_limit is not None
            else (self.config.triage.rate_limit if t.redrive else None),
        )
