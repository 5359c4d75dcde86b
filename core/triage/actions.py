"""State transitions, applied one batch per transaction, conditional on each row's current state.

A batch locks its rows in id order (``SELECT ... ORDER BY id FOR UPDATE``: two operators'
batches wait for each other instead of deadlocking), re-reads their state under the lock,
changes only the rows still in an allowed from-state, redrives them and writes the audit row,
then commits. A row another operator changed first is reported as skipped, with that
operator's name when the audit log knows it.

HTTP redrive talks to the backend, which can take the replay timeout per row, so it does not
hold row locks meanwhile: one short transaction claims the eligible rows in
``opswatch.redrive_claims``, the replay runs without locks, and a second short transaction
applies the successes, releases the claims and writes the audit row. Every action skips rows
another batch has claimed ("being redriven by ..."); a claim left by a crashed opswatch expires.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import asyncpg

from core.audit import outcome_of, write_audit
from core.db import Database
from core.safe_text import display_text
from core.triage.models import Failed, Kind, Skipped
from core.triage.queries import lock_sql, payload_sql, spec_for
from core.triage.redrive import HttpRedrive, Pacer, PayloadLoader, ReplayItem, SqlRedrive
from core.triage.schema import AppTables


@dataclass(frozen=True)
class Transition:
    """One action of a kind: the state change, and how the console and the CLI offer it."""

    kind: Kind
    name: str
    from_states: tuple[str, ...]
    to_state: str
    bump_retry: bool = False
    redrive: bool = False
    resolved_at: Literal["now", "null", "keep"] = "keep"
    key: str = ""
    """Console key for the row under the cursor (or the selection)."""
    shown: bool = False
    """Whether the footer shows the single-row key."""
    bulk_key: str | None = None
    """Console key for every row matching the filter; None: no bulk key."""
    bulk_shown: bool = False
    reason_required: bool = False
    past: str = ""
    """Toast verb: ``Retried #20``."""
    help: str = ""
    """One line for ``opswatch <kind> <action> --help``."""

    @property
    def action(self) -> str:
        return f"{'dlq' if self.kind == 'dlq' else 'events'}.{self.name}"

    @property
    def label(self) -> str:
        """``Retry``: binding description, confirmation and prompt titles."""
        return self.name.capitalize()


TRANSITIONS: dict[tuple[Kind, str], Transition] = {
    ("dlq", "retry"): Transition(
        "dlq", "retry", ("pending",), "retried", True, True, "now",
        key="r", shown=True, bulk_key="R", bulk_shown=True, past="Retried",
        help="retry pending dead letters (pending -> retried, retry_count + 1, redrive)",
    ),
    ("dlq", "abandon"): Transition(
        "dlq", "abandon", ("pending",), "abandoned", resolved_at="now",
        key="a", shown=True, bulk_key="A", reason_required=True, past="Abandoned",
        help="abandon pending dead letters (pending -> abandoned; --reason required)",
    ),
    ("dlq", "resolve"): Transition(
        "dlq", "resolve", ("pending", "retried"), "resolved", resolved_at="now",
        key="u", bulk_key="U", past="Resolved",
        help="mark dead letters resolved (pending or retried -> resolved)",
    ),
    ("dlq", "reopen"): Transition(
        "dlq", "reopen", ("abandoned", "retried"), "pending", resolved_at="null",
        key="o", past="Reopened",
        help="reopen abandoned or retried dead letters (-> pending)",
    ),
    ("event", "retry"): Transition(
        "event", "retry", ("failed",), "retrying", True, True,
        key="r", shown=True, bulk_key="R", bulk_shown=True, past="Retried",
        help="retry failed events (failed -> retrying, retry_count + 1, redrive)",
    ),
    ("event", "resolve"): Transition(
        "event", "resolve", ("failed", "retrying"), "resolved", resolved_at="now",
        key="u", shown=True, bulk_key="U", past="Resolved",
        help="mark event failures resolved (failed or retrying -> resolved)",
    ),
}  # fmt: skip
"""The single source of each kind's actions: the service's checks, the console's keys and the
CLI's subcommands are generated from it. ``resolved_at`` of a dead letter is when it left the
pending queue (retried, resolved or abandoned); a reopen clears it. Outflow per hour counts it."""


def transitions_of(kind: Kind) -> tuple[Transition, ...]:
    return tuple(t for (k, _), t in TRANSITIONS.items() if k == kind)


def past_tense(verb: str) -> str | None:
    """``Retried`` for ``retry`` (any kind); None for a verb no transition has."""
    return next((t.past for t in TRANSITIONS.values() if t.name == verb and t.past), None)


def transition_for(kind: Kind, name: str) -> Transition:
    try:
        return TRANSITIONS[(kind, name)]
    except KeyError:
        allowed = ", ".join(n for k, n in TRANSITIONS if k == kind)
        raise ValueError(f"unknown {kind} action {name!r} (one of: {allowed})") from None


@dataclass
class BatchOutcome:
    applied: list[int] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)
    failed: list[Failed] = field(default_factory=list)
    not_attempted: list[int] = field(default_factory=list)
    lock_held_s: float = 0.0
    duration_s: float = 0.0


@dataclass(frozen=True)
class ActionContext:
    db: Database
    tables: AppTables
    actor: str
    sql_redrive: SqlRedrive
    http_redrive: HttpRedrive | None


def update_sql(tables: AppTables, t: Transition, *, conditional: bool = False) -> str:
    """Set the target state on ids $1 (state $2); ``conditional`` adds ``AND status = $3`` and
    leaves out rows claimed by an HTTP redrive of kind $4."""
    table = spec_for(tables, t.kind).table
    sets = [f"{table.c('status')} = $2"]
    if t.bump_retry:
        sets.append(f"{table.c('retry_count')} = {table.c('retry_count')} + 1")
    if t.resolved_at == "now":
        sets.append(f"{table.c('resolved_at')} = CURRENT_TIMESTAMP")
    elif t.resolved_at == "null":
        sets.append(f"{table.c('resolved_at')} = NULL")
    returning = f"{table.c('id')} AS id, {table.c('retry_count')} AS retry_count"
    if t.kind == "dlq":
        returning += f", {table.c('message_id')} AS message_id"
    condition = (
        f" AND {table.c('status')} = $3 AND NOT EXISTS (SELECT 1 FROM opswatch.redrive_claims c"
        f" WHERE c.kind = $4 AND c.row_id = {table.c('id')} AND c.expires_at > clock_timestamp())"
        if conditional
        else ""
    )
    return (
        f"UPDATE {table.q} SET {', '.join(sets)} WHERE {table.c('id')} = ANY($1::bigint[]){condition} "
        f"RETURNING {returning}"
    )


_WHO_SQL = """
    SELECT x.id, a.actor
    FROM unnest($1::bigint[], $2::text[]) AS x(id, status)
    JOIN LATERAL (
        SELECT a.actor FROM opswatch.audit_log a
        WHERE a.target_kind = $3 AND a.target_ids @> ARRAY[x.id]
          AND a.detail -> 'from' ? x.id::text AND a.detail ->> 'to' = x.status
        ORDER BY a.id DESC LIMIT 1
    ) a ON true
"""


async def who_moved(conn: asyncpg.Connection, kind: Kind, states: Mapping[int, str]) -> dict[int, str]:
    """For rows found in an unexpected state: the actor whose audited action put them there."""
    if not states:
        return {}
    ids = list(states)
    rows = await conn.fetch(_WHO_SQL, ids, [states[i] for i in ids], kind)
    return {r["id"]: display_text(r["actor"], 80) for r in rows}


_CLAIMED_SQL = """
    SELECT row_id, claimed_by FROM opswatch.redrive_claims
    WHERE kind = $1 AND row_id = ANY($2::bigint[]) AND expires_at > clock_timestamp()
"""
_CLAIM_SQL = """
    INSERT INTO opswatch.redrive_claims (kind, row_id, claimed_by, token, expires_at)
    SELECT $1, x, $3, $4, clock_timestamp() + make_interval(secs => $5) FROM unnest($2::bigint[]) AS x
    ON CONFLICT (kind, row_id) DO NOTHING RETURNING row_id
"""
_RELEASE_SQL = "DELETE FROM opswatch.redrive_claims WHERE kind = $1 AND token = $2"


async def claimed(conn: asyncpg.Connection, kind: Kind, ids: Sequence[int]) -> dict[int, str]:
    """Rows among ``ids`` that an HTTP redrive holds, with who runs it."""
    if not ids:
        return {}
    rows = await conn.fetch(_CLAIMED_SQL, kind, list(ids))
    return {r["row_id"]: display_text(r["claimed_by"], 80) for r in rows}


async def _claim(
    conn: asyncpg.Connection, kind: Kind, ids: Sequence[int], actor: str, token: str, ttl_s: float
) -> set[int]:
    """Claim ``ids`` (the caller holds their row locks, so claims never race); returns those taken."""
    await conn.execute(
        "DELETE FROM opswatch.redrive_claims"
        " WHERE kind = $1 AND row_id = ANY($2::bigint[]) AND expires_at <= clock_timestamp()",
        kind,
        list(ids),
    )
    rows = await conn.fetch(_CLAIM_SQL, kind, list(ids), actor, token, ttl_s)
    return {r["row_id"] for r in rows}


async def apply_batch(
    ctx: ActionContext,
    t: Transition,
    ids: Sequence[int],
    *,
    reason: str | None,
    filter: Mapping[str, Any] | None = None,
    bulk_id: str | None = None,
    pacer: Pacer | None = None,
    cancel: asyncio.Event | None = None,
) -> BatchOutcome:
    """One transaction: change the rows of ``ids`` still in a from-state, redrive, audit, commit.

    Retried (as a whole) if PostgreSQL picks it as a deadlock victim.
    """
    for attempt in range(_DEADLOCK_ATTEMPTS):
        try:
            return await _apply_once(ctx, _Batch(t, ids, reason, filter, bulk_id, pacer, cancel))
        except asyncpg.DeadlockDetectedError:
            if attempt == _DEADLOCK_ATTEMPTS - 1:
                raise
            await asyncio.sleep(0.05 * (attempt + 1))
    raise AssertionError("unreachable")


_DEADLOCK_ATTEMPTS = 3


@dataclass(frozen=True)
class _Batch:
    """One batch's request, as apply_batch was given it."""

    t: Transition
    ids: Sequence[int]
    reason: str | None
    filter: Mapping[str, Any] | None
    bulk_id: str | None
    pacer: Pacer | None
    cancel: asyncio.Event | None


def states_sql(tables: AppTables, kind: Kind) -> str:
    table = spec_for(tables, kind).table
    return (
        f"SELECT {table.c('id')} AS id, {table.c('status')} AS status FROM {table.q} "
        f"WHERE {table.c('id')} = ANY($1::bigint[])"
    )


async def _apply_once(ctx: ActionContext, b: _Batch) -> BatchOutcome:
    t, ids = b.t, b.ids
    if t.redrive and ctx.http_redrive is not None:
        return await _apply_http(ctx, b)
    out = BatchOutcome()
    started = time.perf_counter()
    locked_at = started
    from_state: dict[int, str] = {}
    wrong: dict[int, str] = {}
    redrive_detail: dict[str, object] | None = None
    async with ctx.db.transaction() as conn:
        if len(t.from_states) == 1:
            # One conditional UPDATE: under READ COMMITTED a row changed meanwhile by someone else is
            # re-checked after their commit and no longer matches, so it is never changed twice.
            locked_at = time.perf_counter()
            changed = await conn.fetch(
                update_sql(ctx.tables, t, conditional=True), list(ids), t.to_state, t.from_states[0], t.kind
            )
            by_id = {r["id"]: r for r in changed}
            out.applied = [i for i in ids if i in by_id]
            from_state = dict.fromkeys(out.applied, t.from_states[0])
            rest = [i for i in ids if i not in by_id]
            found: dict[int, str] = {}
            if rest:
                found = {r["id"]: r["status"] for r in await conn.fetch(states_sql(ctx.tables, t.kind), rest)}
            holders = await claimed(conn, t.kind, [i for i in rest if found.get(i) == t.from_states[0]])
            for row_id in rest:
                if row_id in holders:
                    out.skipped.append(Skipped(row_id, "being redriven", holders[row_id]))
                elif row_id in found:
                    wrong[row_id] = found[row_id]
                else:
                    out.skipped.append(Skipped(row_id, "not found"))
        else:
            rows = await conn.fetch(lock_sql(ctx.tables, t.kind), list(ids))
            locked_at = time.perf_counter()
            locked = {r["id"]: r for r in rows}
            eligible = _sort_locked(ids, locked, t, out, wrong)
            holders = await claimed(conn, t.kind, eligible)
            out.skipped.extend(Skipped(i, "being redriven", holders[i]) for i in eligible if i in holders)
            to_change = [i for i in eligible if i not in holders]
            changed = await conn.fetch(update_sql(ctx.tables, t), to_change, t.to_state) if to_change else []
            by_id = {r["id"]: r for r in changed}
            out.applied = [i for i in to_change if i in by_id]
            from_state = {i: locked[i]["status"] for i in out.applied}
        if t.redrive and out.applied:
            message_ids = [by_id[i]["message_id"] for i in out.applied] if t.kind == "dlq" else []
            redrive_detail = await ctx.sql_redrive.redrive(conn, t.kind, out.applied, message_ids)
        await _finish(conn, ctx, b, out, wrong, from_state, redrive_detail)
    done = time.perf_counter()
    out.lock_held_s = done - locked_at
    out.duration_s = done - started
    return out


def _sort_locked(
    ids: Sequence[int], locked: Mapping[int, asyncpg.Record], t: Transition, out: BatchOutcome,
    wrong: dict[int, str],
) -> list[int]:  # fmt: skip
    """Ids still in a from-state (in ``ids`` order); the others go to ``out.skipped`` / ``wrong``."""
    eligible: list[int] = []
    for row_id in ids:
        row = locked.get(row_id)
        if row is None:
            out.skipped.append(Skipped(row_id, "not found"))
        elif row["status"] in t.from_states:
            eligible.append(row_id)
        else:
            wrong[row_id] = row["status"]
    return eligible


async def _finish(
    conn: asyncpg.Connection,
    ctx: ActionContext,
    b: _Batch,
    out: BatchOutcome,
    wrong: Mapping[int, str],
    from_state: Mapping[int, str],
    redrive_detail: Mapping[str, object] | None,
) -> None:
    """Name who moved the rows found in another state, then write the batch's audit row."""
    t = b.t
    by = await who_moved(conn, t.kind, wrong)
    out.skipped.extend(Skipped(i, f"already {s}", by.get(i)) for i, s in wrong.items())
    out.skipped.sort(key=lambda s: s.id)
    if not (out.applied or out.failed or out.skipped):
        return
    detail: dict[str, Any] = {"to": t.to_state, "from": {str(i): s for i, s in from_state.items()}}
    if out.skipped:
        detail["skipped"] = {str(s.id): {"reason": s.reason, "by": s.by} for s in out.skipped}
    if out.failed:
        detail["failed"] = {str(f.id): f.error for f in out.failed}
    if redrive_detail is not None:
        detail["redrive"] = dict(redrive_detail)
    if b.bulk_id is not None:
        detail["bulk_id"] = b.bulk_id
    await write_audit(
        conn,
        actor=ctx.actor,
        action=t.action,
        target_kind=t.kind,
        target_ids=sorted({*out.applied, *(f.id for f in out.failed), *(s.id for s in out.skipped)}),
        filter=b.filter,
        reason=b.reason,
        outcome=outcome_of(len(out.applied), len(out.skipped), len(out.failed)),
        detail=detail,
    )


async def _apply_http(ctx: ActionContext, b: _Batch) -> BatchOutcome:
    """Claim (short transaction), replay without locks, apply and audit (short transaction)."""
    t, ids = b.t, b.ids
    assert ctx.http_redrive is not None
    http = ctx.http_redrive
    out = BatchOutcome()
    started = time.perf_counter()
    token = uuid.uuid4().hex
    wrong: dict[int, str] = {}
    async with ctx.db.transaction() as conn:
        rows = await conn.fetch(lock_sql(ctx.tables, t.kind), list(ids))
        locked_at = time.perf_counter()
        locked = {r["id"]: r for r in rows}
        eligible = _sort_locked(ids, locked, t, out, wrong)
        taken = await _claim(
            conn, t.kind, eligible, ctx.actor, token, http.claim_ttl_s(len(eligible), b.pacer)
        )
        busy = [i for i in eligible if i not in taken]
        holders = await claimed(conn, t.kind, busy)
        out.skipped.extend(Skipped(i, "being redriven", holders.get(i)) for i in busy)
        items = [
            ReplayItem(i, locked[i]["retry_count"] + 1, locked[i]["message_id"] if t.kind == "dlq" else None)
            for i in eligible
            if i in taken
        ]
        if not items:
            await _finish(conn, ctx, b, out, wrong, {}, None)
    held = time.perf_counter() - locked_at
    if not items:
        out.lock_held_s, out.duration_s = held, time.perf_counter() - started
        return out
    finished = False
    try:
        replay = await http.replay(
            t.kind, items, _pool_payloads(ctx, t.kind), b.pacer or Pacer(None), b.cancel
        )
        out.failed.extend(Failed(i, replay.failed[i]) for i in sorted(replay.failed))
        out.not_attempted.extend(sorted(replay.not_attempted))
        async with ctx.db.transaction() as conn:
            rows = await conn.fetch(lock_sql(ctx.tables, t.kind), sorted(replay.ok))
            locked_at = time.perf_counter()
            now = {r["id"]: r["status"] for r in rows}
            # claimed rows are left alone by opswatch; the backend itself may have moved one
            to_change = [i for i in replay.ok if now.get(i) in t.from_states]
            for i in replay.ok:
                if i not in to_change:
                    wrong[i] = now.get(i, "gone")
            changed = await conn.fetch(update_sql(ctx.tables, t), to_change, t.to_state) if to_change else []
            out.applied = [i for i in to_change if i in {r["id"] for r in changed}]
            from_state = {i: locked[i]["status"] for i in out.applied}
            await conn.execute(_RELEASE_SQL, t.kind, token)
            await _finish(conn, ctx, b, out, wrong, from_state, {"mode": "http"})
        finished = True
        held = max(held, time.perf_counter() - locked_at)
    finally:
        if not finished:  # failed or cancelled between the two transactions: free the rows now
            with contextlib.suppress(Exception):
                await asyncio.shield(ctx.db.execute(_RELEASE_SQL, t.kind, token))
    out.lock_held_s, out.duration_s = held, time.perf_counter() - started
    return out


def _pool_payloads(ctx: ActionContext, kind: Kind) -> PayloadLoader:
    """Payloads read one at a time when their replay starts (no transaction, no lock)."""
    sql = payload_sql(ctx.tables, kind)

    async def load(row_id: int) -> str | None:
        value: str | None = await ctx.db.fetchval(sql, row_id)
        return value

    return load
