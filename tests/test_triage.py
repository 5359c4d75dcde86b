"""Triage core against real PostgreSQL: reads, every transition and its audit row, bad input, read-only."""

from __future__ import annotations

import json

import pytest

from core.audit import read_audit
from core.db import Database
from core.errors import ReadOnlyError
from core.triage import Cursor, DlqFilter, EventFilter, Sort, TriageService
from tests.test_triage_support import add_dlq, add_events, triage_config

ACTOR = "alice@test"


@pytest.fixture
def svc(database: Database) -> TriageService:
    return TriageService(database, triage_config(), actor=ACTOR)


async def _status(db: Database, table: str, row_id: int) -> tuple[str, int]:
    row = await db.fetchrow(f"SELECT status, retry_count FROM {table} WHERE id = $1", row_id)
    assert row is not None
    return row["status"], row["retry_count"]


# --------------------------------------------------------------------------- transitions


async def test_dlq_retry_changes_row_resets_message_and_audits(
    database: Database, base: dict[str, int], svc: TriageService
) -> None:
    async with database.acquire() as conn:
        ids = await add_dlq(conn, 2, business_id=base["b1"], channel_id=base["c1"])
    result = await svc.kind("dlq").act("retry", [ids[0]], reason="customer asked")
    assert result.applied == (ids[0],) and result.skipped == () and result.failed == ()
    assert result.counts == "1 applied, 0 skipped, 0 failed"
    row = await database.fetchrow(
        "SELECT d.status, d.retry_count, d.resolved_at, m.status AS m_status, m.error_message AS m_error "
        "FROM dead_letter_messages d JOIN social_messages m ON m.id = d.message_id WHERE d.id = $1",
        ids[0],
    )
    assert row is not None
    assert (row["status"], row["retry_count"]) == ("retried", 1)
    assert row["resolved_at"] is not None
    assert (row["m_status"], row["m_error"]) == ("pending", None)
    assert await _status(database, "dead_letter_messages", ids[1]) == ("pending", 0)
    [entry] = await read_audit(database, target_kind="dlq")
    assert (entry.actor, entry.action, entry.target_ids, entry.reason, entry.outcome) == (
        ACTOR,
        "dlq.retry",
        (ids[0],),
        "customer asked",
        "applied",
    )
    assert entry.detail is not None
    assert entry.detail["from"] == {str(ids[0]): "pending"} and entry.detail["to"] == "retried"
    assert entry.detail["redrive"]["mode"] == "sql"


async def test_every_dlq_transition_and_its_audit(
    database: Database, base: dict[str, int], svc: TriageService
) -> None:
    async with database.acquire() as conn:
        a, b, c = await add_dlq(conn, 3, business_id=base["b1"], channel_id=base["c1"])
    assert (await svc.kind("dlq").act("abandon", [a], reason="number is invalid")).applied == (a,)
    assert await _status(database, "dead_letter_messages", a) == ("abandoned", 0)
    assert (await svc.kind("dlq").act("resolve", [b], reason="sent by hand")).applied == (b,)
    assert await _status(database, "dead_letter_messages", b) == ("resolved", 0)
    assert (await svc.kind("dlq").act("reopen", [a], reason="try again")).applied == (a,)
    row = await database.fetchrow("SELECT status, resolved_at FROM dead_letter_messages WHERE id = $1", a)
    assert row is not None and (row["status"], row["resolved_at"]) == ("pending", None)
    await svc.kind("dlq").act("retry", [c])
    assert (await svc.kind("dlq").act("resolve", [c])).applied == (c,)  # retried -> resolved
    entries = await read_audit(database, target_kind="dlq")
    seen = [(e.action, e.target_ids, e.reason, (e.detail or {}).get("from")) for e in reversed(entries)]
    assert seen == [
        ("dlq.abandon", (a,), "number is invalid", {str(a): "pending"}),
        ("dlq.resolve", (b,), "sent by hand", {str(b): "pending"}),
        ("dlq.reopen", (a,), "try again", {str(a): "abandoned"}),
        ("dlq.retry", (c,), None, {str(c): "pending"}),
        ("dlq.resolve", (c,), None, {str(c): "retried"}),
    ]
    assert all(e.actor == ACTOR for e in entries)


async def test_event_transitions_and_audit(
    database: Database, base: dict[str, int], svc: TriageService
) -> None:
    async with database.acquire() as conn:
        a, b = await add_events(conn, 2, business_id=base["b1"])
    result = await svc.kind("events").act("retry", [a, b])
    assert result.applied == (a, b)
    assert await _status(database, "event_failures", a) == ("retrying", 1)
    assert (await svc.kind("events").act("resolve", [a], reason="fixed")).applied == (a,)
    row = await database.fetchrow("SELECT status, resolved_at FROM event_failures WHERE id = $1", a)
    assert row is not None and row["status"] == "resolved" and row["resolved_at"] is not None
    again = await svc.kind("events").act("retry", [a])
    assert again.applied == () and [(s.id, s.reason, s.by) for s in again.skipped] == [
        (a, "already resolved", ACTOR)
    ]
    entries = await read_audit(database, target_kind="event")
    assert [(e.action, e.outcome, e.target_ids) for e in entries] == [
        ("events.retry", "skipped", (a,)),  # the ids considered are recorded, also when skipped
        ("events.resolve", "applied", (a,)),
        ("events.retry", "applied", (a, b)),
    ]
    assert entries[0].detail is not None
    assert entries[0].detail["skipped"] == {str(a): {"reason": "already resolved", "by": ACTOR}}


async def test_skipped_says_who_handled_it(database: Database, base: dict[str, int]) -> None:
    async with database.acquire() as conn:
        [row_id] = await add_dlq(conn, 1, business_id=base["b1"], channel_id=base["c1"])
    bob = TriageService(database, triage_config(), actor="bob@desk")
    carol = TriageService(database, triage_config(), actor="carol@desk")
    assert (await bob.kind("dlq").act("retry", [row_id])).applied == (row_id,)
    second = await carol.kind("dlq").act("retry", [row_id, 999_999])
    assert second.applied == ()
    assert [(s.id, s.reason, s.by) for s in second.skipped] == [
        (row_id, "already retried", "bob@desk"),
        (999_999, "not found", None),
    ]
    assert second.counts == "0 applied, 2 skipped, 0 failed"
    assert await _status(database, "dead_letter_messages", row_id) == ("retried", 1)
    # a change made outside opswatch has no audited author
    await database.execute("UPDATE dead_letter_messages SET status = 'resolved' WHERE id = $1", row_id)
    third = await carol.kind("dlq").act("reopen", [row_id])
    assert [(s.reason, s.by) for s in third.skipped] == [("already resolved", None)]


async def test_bad_input_changes_nothing(
    database: Database, base: dict[str, int], svc: TriageService
) -> None:
    async with database.acquire() as conn:
        [row_id] = await add_dlq(conn, 1, business_id=base["b1"], channel_id=base["c1"])
    with pytest.raises(ValueError, match="reason is required"):
        await svc.kind("dlq").act("abandon", [row_id], reason="   ")
    with pytest.raises(ValueError, match="not a row id"):
        await svc.kind("dlq").act("retry", ["12a"])  # type: ignore[list-item]
    with pytest.raises(ValueError, match="not a row id"):
        await svc.kind("dlq").act("retry", [-3])
    with pytest.raises(ValueError, match="no ids"):
        await svc.kind("dlq").act("retry", [])
    with pytest.raises(ValueError, match="conflicting filters"):
        await svc.kind("dlq").bulk(DlqFilter(status=("abandoned",)), "retry")
    with pytest.raises(ValueError, match="conflicting filters"):
        await svc.kind("dlq").list(DlqFilter(min_age_s=7200, max_age_s=3600))
    with pytest.raises(ValueError, match="unknown DLQ status"):
        await svc.kind("dlq").list(DlqFilter(status=("pendng",)))
    with pytest.raises(ValueError, match="unknown dlq action"):
        await svc.kind("dlq").bulk(DlqFilter(), "explode")
    assert await _status(database, "dead_letter_messages", row_id) == ("pending", 0)
    assert await read_audit(database) == []


async def test_read_only_refuses_every_mutation(database: Database, base: dict[str, int]) -> None:
    async with database.acquire() as conn:
        [row_id] = await add_dlq(conn, 1, business_id=base["b1"], channel_id=base["c1"])
        [event_id] = await add_events(conn, 1, business_id=base["b1"])
    ro = TriageService(database, triage_config(), actor=ACTOR, read_only=True)
    calls = [
        ro.kind("dlq").act("retry", [row_id]),
        ro.kind("dlq").act("abandon", [row_id], "x"),
        ro.kind("dlq").act("resolve", [row_id]),
        ro.kind("dlq").act("reopen", [row_id]),
        ro.kind("events").act("retry", [event_id]),
        ro.kind("events").act("resolve", [event_id]),
        ro.kind("dlq").bulk(DlqFilter(), "retry"),
        ro.kind("events").bulk(EventFilter(), "resolve"),
    ]
    for call in calls:
        with pytest.raises(ReadOnlyError, match="read-only mode"):
            await call
    assert await _status(database, "dead_letter_messages", row_id) == ("pending", 0)
    assert await _status(database, "event_failures", event_id) == ("failed", 0)
    assert await read_audit(database) == []
    # reads still work
    assert (await ro.kind("dlq").list(DlqFilter())).total == 1
    assert (await ro.kind("dlq").detail(row_id)) is not None


# --------------------------------------------------------------------------- reads


async def test_keyset_pages_forward_and_back(
    database: Database, base: dict[str, int], svc: TriageService
) -> None:
    async with database.acquire() as conn:
        ids = []
        for i in range(7):
            ids += await add_dlq(conn, 1, business_id=base["b1"], channel_id=base["c1"], age_s=1000 - i * 10)
    newest_first = list(reversed(ids))
    p1 = await svc.kind("dlq").list(DlqFilter(), limit=3)
    assert [r.id for r in p1.rows] == newest_first[:3] and p1.total == 7
    assert p1.prev_cursor is None and p1.next_cursor is not None
    p2 = await svc.kind("dlq").list(DlqFilter(), cursor=p1.next_cursor, limit=3)
    assert [r.id for r in p2.rows] == newest_first[3:6]
    p3 = await svc.kind("dlq").list(DlqFilter(), cursor=p2.next_cursor, limit=3)
    assert [r.id for r in p3.rows] == newest_first[6:] and p3.next_cursor is None
    assert p3.prev_cursor is not None
    back = await svc.kind("dlq").list(DlqFilter(), cursor=p3.prev_cursor, limit=3)
    assert [r.id for r in back.rows] == newest_first[3:6]
    assert back.prev_cursor is not None
    first = await svc.kind("dlq").list(DlqFilter(), cursor=back.prev_cursor, limit=3)
    assert [r.id for r in first.rows] == newest_first[:3] and first.prev_cursor is None
    # cursors survive an encode/decode round trip (CLI --cursor)
    token = p1.next_cursor.encode()
    assert Cursor.decode(token) == p1.next_cursor
    with pytest.raises(ValueError, match="invalid cursor"):
        Cursor.decode("garbage!")
    oldest = await svc.kind("dlq").list(DlqFilter(), Sort.OLDEST, limit=2)
    assert [r.id for r in oldest.rows] == ids[:2]
    with pytest.raises(ValueError, match="another sort"):
        await svc.kind("dlq").list(DlqFilter(), Sort.NEWEST, cursor=oldest.next_cursor)


async def test_filters_and_sorts(database: Database, base: dict[str, int], svc: TriageService) -> None:
    async with database.acquire() as conn:
        old = await add_dlq(conn, 2, business_id=base["b1"], channel_id=base["c1"], age_s=7200)
        rate = await add_dlq(
            conn,
            3,
            business_id=base["b2"],
            channel_id=base["c3"],
            age_s=60,
            error="(#130429) Rate limit hit 100%_done",
            retry_count=2,
        )
        ig = await add_dlq(conn, 1, business_id=base["b1"], channel_id=base["c2"], status="abandoned")
    assert (await svc.kind("dlq").list(DlqFilter(business_id=base["b2"]))).total == 3
    assert (await svc.kind("dlq").list(DlqFilter(channel_id=base["c1"]))).total == 2
    assert (await svc.kind("dlq").list(DlqFilter(text="RATE LIMIT"))).total == 3
    assert (await svc.kind("dlq").list(DlqFilter(text="100%_d"))).total == 3  # % and _ are literal
    assert (await svc.kind("dlq").list(DlqFilter(text="10%"))).total == 0
    assert (await svc.kind("dlq").list(DlqFilter(min_age_s=3600))).total == 2
    assert (await svc.kind("dlq").list(DlqFilter(max_age_s=3600))).total == 3
    assert (await svc.kind("dlq").list(DlqFilter(status=()))).total == 6
    assert [r.id for r in (await svc.kind("dlq").list(DlqFilter(status=("abandoned",)))).rows] == ig
    by_retries = await svc.kind("dlq").list(DlqFilter(), Sort.MOST_RETRIES, limit=3)
    assert [r.id for r in by_retries.rows] == sorted(rate, reverse=True)
    page2 = await svc.kind("dlq").list(DlqFilter(), Sort.MOST_RETRIES, cursor=by_retries.next_cursor, limit=3)
    assert [r.id for r in page2.rows] == sorted(old, reverse=True)
    row = by_retries.rows[0]
    assert (
        row.business_name == "[red]Shop B[/red]" and row.channel_name == "WA B" and row.platform == "whatsapp"
    )
    assert row.retry_count == 2 and row.error_first_line.startswith("(#130429)")
    assert row.created_at.tzinfo is not None
    events = await svc.kind("events").list(EventFilter())
    assert events.total == 0


async def test_hostile_data_is_stored_as_is_and_read_safely(
    database: Database, base: dict[str, int], svc: TriageService
) -> None:
    hostile_error = "\x1b[2J\x1b]0;owned\x07[red]boom[/red] \x9b31m\u202eevil\nsecond line"
    huge = json.dumps({"blob": "x" * (10 * 1024 * 1024)})
    async with database.acquire() as conn:
        [big] = await add_dlq(conn, 1, business_id=base["b1"], channel_id=base["c1"], data=huge)
        [not_json] = await add_dlq(
            conn,
            1,
            business_id=base["b1"],
            channel_id=base["c1"],
            data=json.dumps('{"broken": '),
            error=hostile_error,
        )
        [nested] = await add_dlq(
            conn,
            1,
            business_id=base["b1"],
            channel_id=base["c1"],
            data=json.dumps(json.dumps({"to": "\x1b[31m+49"})),
        )
        # PostgreSQL itself refuses NUL in text/jsonb and invalid UTF-8: nothing to store
        with pytest.raises(Exception, match=r"(?i)unicode|0x00|invalid"):
            await conn.execute("SELECT $1::jsonb", '"a\\u0000b"')
        stored = await conn.fetchval("SELECT error_message FROM dead_letter_messages WHERE id = $1", not_json)
    assert stored == hostile_error  # as-is in the database

    page = await svc.kind("dlq").list(DlqFilter(), limit=10)
    row = next(r for r in page.rows if r.id == not_json)
    assert "\x1b" not in row.error_first_line and "\x9b" not in row.error_first_line
    assert "\u202e" not in row.error_first_line and "second line" not in row.error_first_line
    assert "[red]boom[/red]" in row.error_first_line  # markup stays literal text (UI renders it as Text)

    detail = await svc.kind("dlq").detail(not_json)
    assert detail is not None
    assert "second line" in detail.error_message and "\x1b" not in detail.error_message
    assert detail.payload_pretty.startswith("(not valid JSON)") and '{"broken": ' in detail.payload_pretty
    assert not detail.payload_truncated

    d_nested = await svc.kind("dlq").detail(nested)
    assert d_nested is not None and "JSON text stored as a JSON string" in d_nested.payload_pretty
    assert "\x1b" not in d_nested.payload_pretty and '"to"' in d_nested.payload_pretty

    d_big = await svc.kind("dlq").detail(big)
    assert d_big is not None and d_big.payload_truncated
    assert len(d_big.payload_pretty) <= 50_000 and d_big.payload_bytes > 10 * 1024 * 1024
    raw = await svc.kind("dlq").raw(big, "payload")
    assert json.loads(raw) == json.loads(huge)
    assert await svc.kind("dlq").raw(not_json, "error") == hostile_error
    # the preview's error classes drop CSI sequences before folding digits ("\x1b[2J" is not "NJ")
    preview_keys = [c.key for c in (await svc.kind("dlq").preview(DlqFilter(status=()))).top_errors]
    assert any(k.startswith("[red]boom[/red] ") and "m" not in k[15:17] for k in preview_keys), preview_keys
    with pytest.raises(ValueError, match="not found"):
        await svc.kind("dlq").raw(987654, "payload")
    assert await svc.kind("dlq").detail(987654) is None


async def test_detail_includes_history(database: Database, base: dict[str, int], svc: TriageService) -> None:
    async with database.acquire() as conn:
        ids = await add_dlq(conn, 3, business_id=base["b1"], channel_id=base["c1"])
        [event_id] = await add_events(conn, 1, business_id=base["b1"])
    await svc.kind("dlq").act("retry", ids, reason="batch")
    await svc.kind("dlq").act("reopen", [ids[1]], reason="still failing")
    detail = await svc.kind("dlq").detail(ids[1])
    assert detail is not None
    history = [(h.action, h.actor, h.from_state, h.reason, h.outcome, h.target_ids) for h in detail.history]
    assert history == [
        ("dlq.reopen", ACTOR, "retried", "still failing", "applied", (ids[1],)),
        ("dlq.retry", ACTOR, "pending", "batch", "applied", (ids[1],)),
    ]
    assert detail.history[1].detail is not None and detail.history[1].detail["batch_rows"] == 3
    await svc.kind("events").act("resolve", [event_id])
    ev = await svc.kind("events").detail(event_id)
    assert ev is not None and [h.action for h in ev.history] == ["events.resolve"]
    assert ev.error_stack.startswith("TypeError") and "events.js" in ev.error_stack
    assert '"saleId": 1' in ev.payload_pretty


async def test_summaries_preview_and_latest_ids(
    database: Database, base: dict[str, int], svc: TriageService
) -> None:
    async with database.acquire() as conn:
        p = await add_dlq(conn, 4, business_id=base["b1"], channel_id=base["c1"], age_s=5000)
        await add_dlq(
            conn,
            2,
            business_id=base["b2"],
            channel_id=base["c3"],
            age_s=120,
            error="Error validating access token: Session has expired 2024",
        )
        await add_dlq(conn, 1, business_id=base["b2"], channel_id=base["c3"], status="abandoned", age_s=7200)
        await add_events(conn, 3, business_id=base["b1"], age_s=600)
        await add_events(
            conn,
            2,
            business_id=base["b1"],
            event_name="stock.updated",
            status="retrying",
            age_s=5 * 3600 + 60,
        )
        last_event = (await add_events(conn, 1, business_id=base["b1"], age_s=30 * 3600))[0]
    await svc.kind("dlq").act("resolve", [p[0]])
    s = await svc.dlq_summary()
    assert s.pending == 5 and s.inflow_per_hour == 2 and s.outflow_per_hour == 1
    assert s.oldest_pending_age_s is not None and 4990 < s.oldest_pending_age_s < 5100
    assert [(c.key, c.count) for c in s.by_channel] == [("WA main (whatsapp)", 3), ("WA B (whatsapp)", 2)]
    assert [(b.key, b.count) for b in s.by_business] == [("Shop A", 3), ("[red]Shop B[/red]", 2)]
    e = await svc.event_summary()
    assert e.last_hour == 3 and e.last_24h == 5
    assert [(t.event_name, t.status, t.last_hour, t.last_24h) for t in e.tallies] == [
        ("sale.completed", "failed", 3, 3),
        ("stock.updated", "retrying", 0, 2),
    ]
    assert len(e.hourly) == 24 and e.hourly[23] == 3 and e.hourly[18] == 2 and sum(e.hourly) == 5
    assert e.max_id == last_event
    d_max, e_max = await svc.latest_ids()
    assert d_max == s.max_id and e_max == last_event

    preview = await svc.kind("dlq").preview(DlqFilter())
    assert preview.count == 5 and preview.oldest is not None and preview.newest is not None
    assert preview.oldest < preview.newest
    assert preview.top_errors[0].count == 3
    assert any("Session has expired N" in c.key for c in preview.top_errors)  # digits folded into classes
    assert [c.count for c in preview.businesses] == [3, 2] and "Shop A" in preview.businesses[0].key
    assert len(preview.channels) == 2
    # any -> its from-states
    reopenable = await svc.kind("dlq").preview(DlqFilter(status=()), action="reopen")
    assert reopenable.count == 1
    with pytest.raises(ValueError, match="conflicting filters"):
        await svc.kind("dlq").preview(DlqFilter(status=("resolved",)), action="retry")
    ev_preview = await svc.kind("events").preview(EventFilter(status=()))
    assert ev_preview.count == 6 and [c.key for c in ev_preview.event_names] == [
        "sale.completed",
        "stock.updated",
    ]
