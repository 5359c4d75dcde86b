"""Bulk actions by filter: concurrency between operators, progress, cancellation, rate limit."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import pytest

from core.audit import read_audit
from core.db import Database, PoolSettings
from core.triage import BulkProgress, DlqFilter, EventFilter, TriageService
from tests.test_triage_support import add_dlq, add_events, triage_config


@pytest.fixture
async def second_db(db_dsn: str) -> AsyncIterator[Database]:
    db = Database(db_dsn, PoolSettings(min_size=1, max_size=2))
    yield db
    await db.close()


async def test_two_operators_bulk_retry_same_rows_exactly_once(
    database: Database, second_db: Database, base: dict[str, int]
) -> None:
    async with database.acquire() as conn:
        ids = await add_dlq(conn, 1000, business_id=base["b1"], channel_id=base["c1"])
    cfg = triage_config(batch_size=100)
    alice = TriageService(database, cfg, actor="alice")
    bob = TriageService(second_db, cfg, actor="bob")
    a, b = await asyncio.gather(
        alice.kind("dlq").bulk(DlqFilter(), "retry"), bob.kind("dlq").bulk(DlqFilter(), "retry")
    )
    applied_a, applied_b = set(a.applied), set(b.applied)
    assert not applied_a & applied_b
    assert applied_a | applied_b == set(ids)
    assert not a.failed and not b.failed
    # whatever one skipped, the other applied, and the skip names who
    assert {s.id for s in a.skipped} <= applied_b and {s.id for s in b.skipped} <= applied_a
    assert all(s.by == "bob" for s in a.skipped) and all(s.by == "alice" for s in b.skipped)
    counts = await database.fetch(
        "SELECT status, retry_count, count(*) AS n FROM dead_letter_messages GROUP BY 1, 2"
    )
    assert [(r["status"], r["retry_count"], r["n"]) for r in counts] == [("retried", 1, 1000)]
    reset = await database.fetchval("SELECT count(*) FROM social_messages WHERE status = 'pending'")
    assert reset == 1000
    assert a.max_lock_s < 1.0 and b.max_lock_s < 1.0


async def test_bulk_beyond_a_page_with_progress_and_summary_audit(
    database: Database, base: dict[str, int]
) -> None:
    async with database.acquire() as conn:
        ids = await add_dlq(conn, 250, business_id=base["b1"], channel_id=base["c1"], age_s=600)
        other = await add_dlq(conn, 5, business_id=base["b2"], channel_id=base["c3"], age_s=600)
    svc = TriageService(database, triage_config(batch_size=60), actor="ops")
    seen: list[BulkProgress] = []

    async def progress(p: BulkProgress) -> None:
        seen.append(p)

    result = await svc.kind("dlq").bulk(
        DlqFilter(business_id=base["b1"]), "abandon", reason="campaign cancelled", progress=progress
    )
    assert sorted(result.applied) == ids and result.all_applied and result.batches == 5
    assert seen[0] == BulkProgress(0, 250, 0, 0, 0) and seen[-1] == BulkProgress(250, 250, 250, 0, 0)
    assert [p.done for p in seen] == [0, 60, 120, 180, 240, 250]
    assert (
        await database.fetchval(
            "SELECT count(*) FROM dead_letter_messages WHERE id = ANY($1::int[]) AND status = 'pending'",
            other,
        )
        == 5
    )
    entries = await read_audit(database, target_kind="dlq")
    summary, *batches = entries
    assert summary.action == "dlq.abandon.bulk" and summary.outcome == "applied"
    assert summary.filter == {
        "kind": "dlq",
        "status": ["pending"],
        "business_id": base["b1"],
        "all_matching": True,
    }
    assert summary.detail is not None and summary.detail["applied"] == 250 and summary.detail["batches"] == 5
    assert len(batches) == 5 and all(e.reason == "campaign cancelled" for e in batches)
    assert {e.detail["bulk_id"] for e in batches if e.detail} == {summary.detail["bulk_id"]}
    with pytest.raises(ValueError, match="reason is required"):
        await svc.kind("dlq").bulk(DlqFilter(), "abandon", reason="")


async def test_cancellation_mid_bulk_leaves_consistent_state(
    database: Database, base: dict[str, int]
) -> None:
    async with database.acquire() as conn:
        await add_dlq(conn, 500, business_id=base["b1"], channel_id=base["c1"])
    svc = TriageService(database, triage_config(batch_size=50), actor="ops")
    cancel = asyncio.Event()

    def progress(p: BulkProgress) -> None:
        if p.done >= 150:
            cancel.set()

    result = await svc.kind("dlq").bulk(DlqFilter(), "retry", progress=progress, cancel=cancel)
    assert result.cancelled and len(result.applied) == 150 and result.counts.endswith("(cancelled)")
    rows = await database.fetch(
        "SELECT status, retry_count, count(*) AS n FROM dead_letter_messages GROUP BY 1, 2 ORDER BY 1"
    )
    assert [(r["status"], r["retry_count"], r["n"]) for r in rows] == [
        ("pending", 0, 350),
        ("retried", 1, 150),
    ]
    retried = await database.fetch("SELECT id FROM dead_letter_messages WHERE status = 'retried'")
    assert {r["id"] for r in retried} == set(result.applied)
    messages = await database.fetchval("SELECT count(*) FROM social_messages WHERE status = 'pending'")
    assert messages == 150
    summary = (await read_audit(database, target_kind="dlq"))[0]
    assert summary.detail is not None and summary.detail["cancelled"] is True and summary.outcome == "partial"
    # the rest can be finished later
    rest = await svc.kind("dlq").bulk(DlqFilter(), "retry")
    assert len(rest.applied) == 350 and not rest.cancelled


async def test_rate_limit_paces_redrives_and_cancel_interrupts_the_wait(
    database: Database, base: dict[str, int]
) -> None:
    async with database.acquire() as conn:
        await add_events(conn, 30, business_id=base["b1"])
    svc = TriageService(database, triage_config(batch_size=500), actor="ops")
    started = time.monotonic()
    # batches of 20 rows: at 0 s, 1 s
    result = await svc.kind("events").bulk(EventFilter(), "retry", rate_limit=20.0)
    elapsed = time.monotonic() - started
    assert len(result.applied) == 30 and result.batches == 2
    assert 0.9 <= elapsed < 2.5

    async with database.acquire() as conn:
        await add_events(conn, 30, business_id=base["b1"])
    cancel = asyncio.Event()
    asyncio.get_running_loop().call_later(0.3, cancel.set)
    started = time.monotonic()
    result = await svc.kind("events").bulk(EventFilter(), "retry", rate_limit=10.0, cancel=cancel)
    assert result.cancelled and len(result.applied) == 10
    assert time.monotonic() - started < 0.9
