"""Actions on explicit ids or on every row matching a filter, batch by batch.

Filter mode walks the matching rows oldest first with a keyset on (created_at, id) per status
(each step is an index range scan, whatever the table size), reads a batch of candidate ids
without locking, then hands them to :func:`core.triage.actions.apply_batch`, which locks,
re-checks and commits that batch alone. Locks are therefore held for one batch at most;
cancelling stops between batches (or between replays in http mode) and leaves every committed
batch in place and every other row untouched.
"""

from __future__ import annotations

import asyncio
import inspect
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from core.audit import outcome_of, write_audit
from core.triage.actions import ActionContext, BatchOutcome, Transition, apply_batch
from core.triage.models import ActionResult, BulkProgress, DlqFilter, EventFilter, Failed, Skipped
from core.triage.queries import candidates_sql, count_sql, fetch_planned
from core.triage.redrive import Pacer

ProgressCallback = Callable[[BulkProgress], Awaitable[None] | None]
DEAD_BATCHES_STOP = 3
"""A replay target that fails every row of this many batches in a row stops the bulk action."""
Filter = DlqFilter | EventFilter


@dataclass
class Totals:
    applied: list[int] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)
    failed: list[Failed] = field(default_factory=list)
    done: int = 0
    batches: int = 0
    max_lock_s: float = 0.0
    max_batch_s: float = 0.0
    cancelled: bool = False
    stopped: str | None = None
    dead_batches: int = 0

    @property
    def halted(self) -> bool:
        return self.cancelled or self.stopped is not None

    def add(self, out: BatchOutcome, attempted: int) -> None:
        self.applied.extend(out.applied)
        self.skipped.extend(out.skipped)
        self.failed.extend(out.failed)
        self.done += attempted - len(out.not_attempted)
        self.batches += 1
        self.max_lock_s = max(self.max_lock_s, out.lock_held_s)
        self.max_batch_s = max(self.max_batch_s, out.duration_s)
        if out.not_attempted:
            self.cancelled = True
        if out.failed and not out.applied and not out.skipped:
            self.dead_batches += 1
            if self.dead_batches >= DEAD_BATCHES_STOP:
                self.stopped = (
                    f"stopped after {self.dead_batches} batches in a row failed to redrive "
                    f"(last error: {out.failed[-1].error})"
                )
        else:
            self.dead_batches = 0

    def result(self, action: str) -> ActionResult:
        return ActionResult(
            action=action,
            applied=tuple(self.applied),
            skipped=tuple(self.skipped),
            failed=tuple(self.failed),
            cancelled=self.cancelled,
            stopped=self.stopped,
            batches=self.batches,
            max_lock_s=self.max_lock_s,
            max_batch_s=self.max_batch_s,
        )


async def _report(progress: ProgressCallback | None, totals: Totals, total: int) -> None:
    if progress is None:
        return
    value = progress(
        BulkProgress(
            done=totals.done,
            total=max(total, totals.done),
            applied=len(totals.applied),
            skipped=len(totals.skipped),
            failed=len(totals.failed),
        )
    )
    if inspect.isawaitable(value):
        await value


def effective_batch(batch_size: int, rate_limit: float | None, http: bool) -> int:
    """Rows per transaction: with a rate limit (or http replays) at most ~1 s of work per batch."""
    size = batch_size
    if rate_limit is not None:
        size = min(size, max(1, int(rate_limit)))
    if http:
        size = min(size, 50)
    return max(1, size)


async def act_on_ids(
    ctx: ActionContext,
    t: Transition,
    ids: Sequence[int],
    *,
    reason: str | None,
    batch_size: int,
    rate_limit: float | None = None,
    cancel: asyncio.Event | None = None,
) -> ActionResult:
    totals = Totals()
    pacer = Pacer(rate_limit)
    http = t.redrive and ctx.http_redrive is not None
    size = effective_batch(batch_size, rate_limit, http)
    for start in range(0, len(ids), size):
        chunk = ids[start : start + size]
        if totals.stopped:
            break
        if cancel is not None and cancel.is_set():
            totals.cancelled = True
            break
        if not http and not await pacer.take(len(chunk), cancel):
            totals.cancelled = True
            break
        out = await apply_batch(ctx, t, chunk, reason=reason, pacer=pacer, cancel=cancel)
        totals.add(out, len(chunk))
    return totals.result(t.action)


def narrow_status(f: Filter, t: Transition) -> Filter:
    """The filter restricted to the action's from-states; ValueError if nothing can match."""
    if not f.status:
        return replace(f, status=t.from_states)
    allowed = tuple(s for s in f.status if s in t.from_states)
    if not allowed:
        raise ValueError(
            f"conflicting filters: {t.name} applies to {' or '.join(t.from_states)} rows, "
            f"the filter selects {', '.join(f.status)}"
        )
    return replace(f, status=allowed)


async def act_on_filter(
    ctx: ActionContext,
    t: Transition,
    f: Filter,
    *,
    reason: str | None,
    batch_size: int,
    progress: ProgressCallback | None = None,
    cancel: asyncio.Event | None = None,
    rate_limit: float | None = None,
) -> ActionResult:
    narrowed = narrow_status(f, t)
    sql, args = count_sql(ctx.tables, t.kind, narrowed)
    total = int((await fetch_planned(ctx.db, sql, args))[0][0])
    filter_record: dict[str, Any] = {"kind": t.kind, **f.as_dict(), "all_matching": True}
    bulk_id = uuid.uuid4().hex
    totals = Totals()
    pacer = Pacer(rate_limit)
    http = t.redrive and ctx.http_redrive is not None
    size = effective_batch(batch_size, rate_limit, http)
    await _report(progress, totals, total)
    for status in narrowed.status:
        one = replace(narrowed, status=(status,))
        after: tuple[Any, int] | None = None
        while not totals.halted:
            if cancel is not None and cancel.is_set():
                totals.cancelled = True
                break
            sql, args = candidates_sql(ctx.tables, t.kind, one, after, size)
            rows = await fetch_planned(ctx.db, sql, args)
            if not rows:
                break
            after = (rows[-1]["k_created"], rows[-1]["id"])
            ids = [r["id"] for r in rows]
            if not http and not await pacer.take(len(ids), cancel):
                totals.cancelled = True
                break
            out = await apply_batch(
                ctx, t, ids, reason=reason, filter=filter_record, bulk_id=bulk_id, pacer=pacer, cancel=cancel
            )
            totals.add(out, len(ids))
            await _report(progress, totals, total)
        if totals.halted:
            break
    await _write_summary(ctx, t, filter_record, reason, bulk_id, totals, total)
    return totals.result(t.action)


async def _write_summary(
    ctx: ActionContext,
    t: Transition,
    filter_record: dict[str, Any],
    reason: str | None,
    bulk_id: str,
    totals: Totals,
    total: int,
) -> None:
    async with ctx.db.transaction() as conn:
        await write_audit(
            conn,
            actor=ctx.actor,
            action=f"{t.action}.bulk",
            target_kind=t.kind,
            filter=filter_record,
            reason=reason,
            outcome=(
                "partial"
                if totals.halted and totals.applied
                else outcome_of(len(totals.applied), len(totals.skipped), len(totals.failed))
            ),
            detail={
                "bulk_id": bulk_id,
                "matched": total,
                "processed": totals.done,
                "applied": len(totals.applied),
                "skipped": len(totals.skipped),
                "failed": len(totals.failed),
                "batches": totals.batches,
                "cancelled": totals.cancelled,
                "stopped": totals.stopped,
            },
        )
