"""The persistent outbox and the Deliverer: retries, Retry-After, dead letters, leases, once-only."""

from __future__ import annotations

import asyncio
import json
import re
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import pytest

from core.alerting import AlertActions
from core.config import Config
from core.db import Database
from core.errors import ReadOnlyError
from core.notify.base import Notification, target_id
from core.notify.delivery import Deliverer, retry_delay
from core.notify.outbox import (
    OutboxItem,
    claim,
    enqueue,
    entries,
    items_for,
    list_outbox,
    outbox_summary,
    prune_delivered,
)
from core.notify.registry import build_notifiers
from tests.servers import Received, ScriptedReply, WebhookSink
from tests.waiting import until


def make_config(sink: WebhookSink, *, max_attempts: int = 3, timeout: float = 0.3, **outbox: Any) -> Config:
    return Config.model_validate(
        {
            "notifications": {
                "slack": {
                    "webhooks": {"critical": sink.url("crit"), "warning": sink.url("warn")},
                    "timeout": timeout,
                },
                "outbox": {
                    "max_attempts": max_attempts,
                    "backoff_initial": 0.05,
                    "backoff_max": 0.1,
                    "poll_interval": 0.05,
                    "lease": 0.5,
                }
                | outbox,
            }
        }
    )


def item(key: str, route: str = "slack:critical", kind: str = "firing") -> OutboxItem:
    severity = route.split(":")[1]
    return OutboxItem(
        key, "slack", route, severity, kind, {"text": key, "blocks": []}, f"summary {key}", ("r/s",)
    )


async def put(db: Database, *items: OutboxItem) -> list[int]:
    async with db.transaction() as conn:
        return await enqueue(conn, items)


async def wait_status(db: Database, row_id: int, status: str, within: float = 5.0) -> None:
    async def reached() -> bool:
        return (await entries(db, [row_id]))[row_id].status == status

    await until(reached, within, what=f"row {row_id} {status}")


def test_retry_delay_grows_and_is_capped() -> None:
    class Fixed:
        def random(self) -> float:
            return 1.0

    delays = [retry_delay(n, 2.0, 30.0, Fixed()) for n in range(1, 7)]  # type: ignore[arg-type]
    assert delays == [2.0, 4.0, 8.0, 16.0, 30.0, 30.0]
    jittered = [retry_delay(3, 2.0, 30.0) for _ in range(50)]
    assert all(4.0 <= d <= 8.0 for d in jittered) and len(set(jittered)) > 1


async def test_enqueue_is_idempotent_by_dedup_key(db: Database) -> None:
    first = await put(db, item("a"), item("b"))
    again = await put(db, item("a"), item("c"))
    assert len(first) == 2 and len(again) == 1
    rows = await list_outbox(db)
    assert sorted(r.summary for r in rows) == ["summary a", "summary b", "summary c"]
    assert {r.status for r in rows} == {"pending"}


async def test_delivers_once_and_records_it(db: Database, sink: WebhookSink) -> None:
    config = make_config(sink)
    [row_id] = await put(db, item("a"))
    deliverer = Deliverer(db, config, instance_id="d1")
    try:
        assert await deliverer.deliver_due() == 1
        assert await deliverer.deliver_due() == 0
    finally:
        await deliverer.stop()
    [got] = sink.delivered
    assert got.path == "/crit" and got.body == {"text": "a", "blocks": []}
    entry = (await entries(db, [row_id]))[row_id]
    assert (entry.status, entry.attempts, entry.last_status, entry.last_error) == ("delivered", 1, 200, None)
    summary = await deliverer.summary()
    assert summary.delivered_total == 1  # counted by this deliverer, for the exporter's counter
    assert await outbox_summary(db) == replace(summary, delivered_total=0)
    assert (await outbox_summary(db)).delivered_last_hour == 1


async def test_500_then_success(db: Database, sink: WebhookSink) -> None:
    sink.script("crit", ScriptedReply(500, body="boom"), ScriptedReply(502, body="bad gateway"))
    [row_id] = await put(db, item("a"))
    deliverer = Deliverer(db, make_config(sink), instance_id="d1")
    await deliverer.start()
    try:
        await sink.wait_for(1)
        await wait_status(db, row_id, "delivered")
    finally:
        await deliverer.stop()
    assert [r.path for r in sink.received] == ["/crit"] * 3
    entry = (await entries(db, [row_id]))[row_id]
    assert entry.attempts == 3 and entry.last_error is None


async def test_429_retry_after_is_honoured(db: Database, sink: WebhookSink) -> None:
    sink.script("crit", ScriptedReply(429, {"Retry-After": "1"}, body="rate_limited"))
    [row_id] = await put(db, item("a"))
    deliverer = Deliverer(db, make_config(sink), instance_id="d1")
    await deliverer.start()
    try:
        await wait_status(db, row_id, "delivered")
    finally:
        await deliverer.stop()
    first, second = sink.received
    assert second.at - first.at >= 0.95  # backoff alone would have retried after ~0.05 s
    entry = (await entries(db, [row_id]))[row_id]
    assert entry.status == "delivered" and entry.attempts == 2


async def test_timeout_from_the_sink_is_retried(db: Database, sink: WebhookSink) -> None:
    sink.script("crit", ScriptedReply(200, delay_s=1.0))
    [row_id] = await put(db, item("a"))
    deliverer = Deliverer(db, make_config(sink, timeout=0.3), instance_id="d1")
    try:
        assert await deliverer.deliver_due() == 0
        entry = (await entries(db, [row_id]))[row_id]
        assert (entry.status, entry.attempts, entry.last_error) == ("pending", 1, "timed out after 0.3 s")
        await asyncio.sleep(0.15)  # time under test: the retry is due once its backoff has passed
        assert await deliverer.deliver_due() == 1
    finally:
        await deliverer.stop()
    assert (await entries(db, [row_id]))[row_id].status == "delivered"


async def test_dead_after_max_attempts_then_resend(db: Database, sink: WebhookSink) -> None:
    sink.script("crit", *[ScriptedReply(500, body="down")] * 3)
    config = make_config(sink, max_attempts=3)
    [row_id] = await put(db, item("a"))
    deliverer = Deliverer(db, config, instance_id="d1")
    await deliverer.start()
    try:
        await wait_status(db, row_id, "dead")
        entry = (await entries(db, [row_id]))[row_id]
        assert (entry.attempts, entry.last_error, entry.last_status) == (3, "HTTP 500: down", 500)
        assert (await outbox_summary(db)).dead == 1
        assert [e.id for e in await list_outbox(db, "dead")] == [row_id]

        with pytest.raises(ReadOnlyError):
            await AlertActions(db, config, actor="wall", read_only=True).resend(row_id)
        actions = AlertActions(db, config, actor="alice")
        result = await actions.resend(row_id)
        assert result.outcome == "applied"
        deliverer.wake()
        await wait_status(db, row_id, "delivered")
        assert (await actions.resend(row_id)).outcome == "skipped"
        with pytest.raises(ValueError, match="no notification #999"):
            await actions.resend(999)
    finally:
        await deliverer.stop()
    audit = await db.fetch(
        "SELECT actor, action, target_kind, target_ids, outcome FROM opswatch.audit_log ORDER BY id"
    )
    assert [tuple(r) for r in audit] == [
        ("alice", "notification.resend", "notification", [row_id], "applied"),
        ("alice", "notification.resend", "notification", [row_id], "skipped"),
    ]


async def test_permanent_error_is_dead_at_once(db: Database, sink: WebhookSink) -> None:
    sink.script("crit", ScriptedReply(404, body="no_service"))
    [row_id] = await put(db, item("a"))
    deliverer = Deliverer(db, make_config(sink, max_attempts=5), instance_id="d1")
    try:
        await deliverer.deliver_due()
    finally:
        await deliverer.stop()
    entry = (await entries(db, [row_id]))[row_id]
    assert (entry.status, entry.attempts, entry.last_error) == ("dead", 1, "HTTP 404: no_service")


async def test_restart_resumes_pending_and_takes_over_expired_leases(db: Database, sink: WebhookSink) -> None:
    config = make_config(sink, timeout=0.2, lease=0.5)
    ids = await put(db, item("a"), item("b", "slack:warning"))
    # A crashed instance had claimed both rows (lease max(0.5, 0.2 + 1) = 1.2 s) and never reported back.
    claimed = await claim(db, instance_id="crashed", lease_s=1.2, targets=None)
    assert sorted(r.id for r in claimed) == ids
    survivor = Deliverer(db, config, instance_id="survivor")
    assert survivor.lease_s == pytest.approx(1.2)
    try:
        assert await survivor.deliver_due() == 0  # still leased by the crashed instance
        assert sink.received == []
        await asyncio.sleep(1.3)  # time under test: the crashed instance's 1.2 s lease runs out
        assert await survivor.deliver_due() == 2
    finally:
        await survivor.stop()
    assert sorted(r.path for r in sink.delivered) == ["/crit", "/warn"]


async def test_firing_and_resolved_keep_their_order_per_route(db: Database, sink: WebhookSink) -> None:
    sink.script("crit", ScriptedReply(500))
    await put(db, item("firing", kind="firing"))
    await put(db, item("other-route", "slack:warning"))
    await put(db, item("resolved", kind="resolved"))
    deliverer = Deliverer(db, make_config(sink), instance_id="d1")
    try:
        assert await deliverer.deliver_due() == 1  # warning route is independent; critical waits for "firing"
        assert [r.body["text"] for r in sink.delivered] == ["other-route"]
        await asyncio.sleep(0.12)  # time under test: the held "firing" row's backoff passes
        assert await deliverer.deliver_due() == 2
    finally:
        await deliverer.stop()
    assert [r.body["text"] for r in sink.delivered if r.path == "/crit"] == ["firing", "resolved"]


async def test_two_deliverers_send_each_notification_once(db: Database, sink: WebhookSink) -> None:
    config = make_config(sink)
    routes = ["slack:critical", "slack:warning"]
    keys = [f"n{i}" for i in range(30)]
    await put(db, *(item(k, routes[i % 2]) for i, k in enumerate(keys)))
    one = Deliverer(db, config, instance_id="one")
    two = Deliverer(db, config, instance_id="two")
    await asyncio.gather(one.start(), two.start())
    try:
        await sink.wait_for(30)
        await asyncio.sleep(0.3)  # time under test: would catch a late duplicate
    finally:
        await asyncio.gather(one.stop(), two.stop())
    texts = [r.body["text"] for r in sink.received]
    assert sorted(texts) == sorted(keys) and len(texts) == 30
    for path, route_keys in (("/crit", keys[0::2]), ("/warn", keys[1::2])):
        assert [r.body["text"] for r in sink.received if r.path == path] == route_keys
    stored = await db.fetch("SELECT payload FROM opswatch.notification_outbox")
    assert all("127.0.0.1" not in json.dumps(r["payload"]) for r in stored)


async def test_old_delivered_rows_are_pruned(db: Database, sink: WebhookSink) -> None:
    ids = await put(db, item("old"), item("new"), item("dead"))
    await db.execute(
        "UPDATE opswatch.notification_outbox"
        " SET status = 'delivered', delivered_at = now() - interval '40 days' WHERE id = $1",
        ids[0],
    )
    await db.execute("UPDATE opswatch.notification_outbox SET status = 'dead' WHERE id = $1", ids[2])
    assert await prune_delivered(db, 30 * 86400) == 1
    assert sorted(e.id for e in await list_outbox(db)) == ids[1:]


# --------------------------------------------------------------------------- instances with different configs

OUTBOX = {"max_attempts": 3, "backoff_initial": 0.05, "backoff_max": 0.1, "poll_interval": 0.05, "lease": 0.5}


def instance_config(
    slack: dict[str, str], *, webhook: list[dict[str, Any]] | None = None, **more: Any
) -> Config:
    notifications = {"slack": {"webhooks": slack, "timeout": 2}, "outbox": OUTBOX} | more
    if webhook is not None:
        notifications["webhook"] = webhook
    return Config.model_validate({"notifications": notifications})


def queued(config: Config, key: str) -> list[OutboxItem]:
    """What ``config``'s engine would queue for one critical notification ``key``."""
    n = Notification("test", "critical", (), key, datetime.now(UTC), note=key)
    return items_for(n, build_notifiers(config))


def key_of(r: Received) -> str:
    return str(r.body.get("key") or r.body["text"].rsplit(" — ", 1)[-1])


def keys_at(sink: WebhookSink, path: str) -> list[str]:
    return [key_of(r) for r in sink.received if r.path == path]


async def test_each_row_goes_out_once_from_an_instance_that_has_its_target(
    db: Database, sink: WebhookSink
) -> None:
    a_config = instance_config({"critical": sink.url("a-crit"), "warning": sink.url("a-warn")})
    b_config = instance_config(
        {"critical": sink.url("b-crit")},
        webhook=[{"name": "ops", "url": sink.url("hook"), "severities": ["critical"]}],
    )
    c_config = instance_config({"critical": sink.url("c-crit")})  # not running at first
    a_keys, b_keys = [f"a{i}" for i in range(8)], [f"b{i}" for i in range(8)]
    for a_key, b_key in zip(a_keys, b_keys, strict=True):
        await put(db, *queued(a_config, a_key), *queued(b_config, b_key))
    [c_row] = await put(db, *queued(c_config, "c0"))
    await put(db, item("legacy", "slack:warning"))  # queued before rows had a target: any slack:warning

    a = Deliverer(db, a_config, instance_id="a")
    b = Deliverer(db, b_config, instance_id="b")
    await asyncio.gather(a.start(), b.start())
    try:
        await sink.wait_for(8 + 16 + 1)
        await asyncio.sleep(0.3)  # time under test: a late duplicate or a row claimed by the wrong instance
    finally:
        await asyncio.gather(a.stop(), b.stop())
    assert keys_at(sink, "/a-crit") == a_keys
    assert keys_at(sink, "/b-crit") == b_keys
    assert keys_at(sink, "/hook") == b_keys
    assert keys_at(sink, "/a-warn") == ["legacy"]
    assert len(sink.received) == 25 and keys_at(sink, "/c-crit") == []

    summary = await outbox_summary(db)
    assert (summary.pending, summary.dead, summary.delivered_last_hour) == (1, 0, 25)
    [waiting] = await list_outbox(db, "pending")
    assert (waiting.id, waiting.route, waiting.attempts) == (c_row, "slack:critical", 0)
    assert waiting.last_error is None
    assert waiting.target == target_id(sink.url("c-crit"))

    c = Deliverer(db, c_config, instance_id="c")  # an instance that knows the target appears
    try:
        assert await c.deliver_due() == 1
    finally:
        await c.stop()
    assert keys_at(sink, "/c-crit") == ["c0"]
    assert (await outbox_summary(db)).pending == 0


async def test_alert_test_is_not_taken_by_an_instance_with_other_targets(
    db: Database, sink: WebhookSink
) -> None:
    """The review's reproduction: ``opswatch alert test`` while a Slack-only agent shares the database."""
    agent_config = instance_config({"critical": sink.url("agent")})
    operator_config = instance_config(
        {"critical": sink.url("operator")},
        webhook=[{"name": "ops", "url": sink.url("hook"), "severities": ["critical"]}],
        pagerduty={"routing_key": "r" * 32, "url": sink.url("pd"), "timeout": 2},
    )
    ids = await AlertActions(db, operator_config, actor="op").send_test("critical")
    assert len(ids) == 3
    agent = Deliverer(db, agent_config, instance_id="agent")
    operator = Deliverer(db, operator_config, instance_id="cli")
    try:
        assert await agent.deliver_due() == 0
        assert await agent.deliver_due(only_ids=ids) == 0
        found = await entries(db, ids)
        assert {(e.status, e.attempts) for e in found.values()} == {("pending", 0)}
        routes = sorted(e.route for e in found.values())
        assert routes == ["pagerduty:default", "slack:critical", "webhook:ops"]
        assert await operator.deliver_due(only_ids=ids) == 3
    finally:
        await agent.stop()
        await operator.stop()
    # PagerDuty's test message is a trigger and its resolve
    assert sorted(r.path for r in sink.received) == ["/hook", "/operator", "/pd", "/pd"]
    assert {e.status for e in (await entries(db, ids)).values()} == {"delivered"}


def test_targets_are_fingerprints_of_the_destination(sink: WebhookSink) -> None:
    config = instance_config(
        {"critical": sink.url("one"), "default": sink.url("two")},
        webhook=[{"name": "ops", "url": sink.url("hook")}],
        pagerduty={"routing_key": "r" * 32, "url": sink.url("pd")},
        email={"smtp_host": "127.0.0.1", "sender": "ops@example.com", "recipients": ["A@example.com"]},
    )
    targets = {route: t for n in build_notifiers(config).values() for route, t in n.targets().items()}
    assert sorted(targets) == [
        "email:default",
        "pagerduty:default",
        "slack:critical",
        "slack:info",
        "slack:warning",
        "webhook:ops",
    ]
    assert all(re.fullmatch(r"[0-9a-f]{16}", t) for t in targets.values())
    assert targets["slack:critical"] != targets["slack:warning"] == targets["slack:info"]  # both use default
    again = {route: t for n in build_notifiers(config).values() for route, t in n.targets().items()}
    assert again == targets  # every instance with this config computes the same fingerprints
    other_key = instance_config({}, pagerduty={"routing_key": "s" * 32, "url": sink.url("pd")})
    other_target = build_notifiers(other_key)["pagerduty"].targets()["pagerduty:default"]
    assert other_target != targets["pagerduty:default"]
    same_people = instance_config(
        {},
        email={"smtp_host": "relay.example.com", "sender": "x@example.com", "recipients": ["a@example.com"]},
    )
    assert build_notifiers(same_people)["email"].targets() == {"email:default": targets["email:default"]}
    items = queued(config, "k")
    assert {i.route: i.target for i in items} == {i.route: targets[i.route] for i in items}


async def test_a_row_stranded_by_a_changed_webhook_url_is_retargeted(db: Database, sink: WebhookSink) -> None:
    """Queued for the old critical webhook; the URL changed before it went out. It waits, marked
    stranded, until an operator sends it to the route's current destination."""
    old_config = instance_config({"critical": sink.url("old-crit")})
    new_config = instance_config({"critical": sink.url("new-crit")})
    [row_id] = await put(db, *queued(old_config, "k0"))
    deliverer = Deliverer(db, new_config, instance_id="new")
    actions = AlertActions(db, new_config, actor="alice")
    try:
        assert await deliverer.deliver_due() == 0
        [entry] = await list_outbox(db, "pending")
        assert actions.stranded(entry)
        skipped = await actions.resend(row_id)  # a plain resend is for dead rows
        assert skipped.outcome == "skipped" and "pending, not dead" in skipped.message
        applied = await actions.resend(row_id, retarget=True)
        assert applied.outcome == "applied" and "current destination" in applied.message
        [entry] = await list_outbox(db, "pending")
        assert entry.target is None and not actions.stranded(entry)
        assert await deliverer.deliver_due() == 1
    finally:
        await deliverer.stop()
    assert keys_at(sink, "/new-crit") == ["k0"] and keys_at(sink, "/old-crit") == []
    audit = await db.fetch("SELECT outcome, detail FROM opswatch.audit_log ORDER BY id")
    assert [r["outcome"] for r in audit] == ["skipped", "applied"]
    detail = audit[1]["detail"]
    detail = json.loads(detail) if isinstance(detail, str) else detail
    assert detail == {"from": "pending", "retarget": True, "previous_target": target_id(sink.url("old-crit"))}
