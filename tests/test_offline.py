"""The in-memory queue of notifications decided while the database is unreachable."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from core.config import Config
from core.db import Database
from core.notify.delivery import Deliverer
from core.notify.offline import OfflineOutbox
from core.notify.outbox import OutboxItem
from core.redact import register_secret
from tests.logs import captured_log
from tests.servers import ScriptedReply, WebhookSink

SECRET = "hunter2-offline-secret-value"


def item(key: str, route: str = "slack:critical", summary: str = "") -> OutboxItem:
    return OutboxItem(
        key,
        "slack",
        route,
        route.split(":")[1],
        "firing",
        {"text": key},
        summary or f"CRITICAL firing: {key}",
    )


@pytest.fixture
def warnings() -> Iterator[list[str]]:
    with captured_log("WARNING", "{level} {message}") as lines:
        yield lines


def test_a_full_queue_drops_sent_entries_first_and_logs_every_drop(warnings: list[str]) -> None:
    register_secret(SECRET)
    queue = OfflineOutbox(max_items=3)
    queue.put([item("a", summary=f"CRITICAL firing: token {SECRET} leaked"), item("b"), item("c")])
    queue.entries[1].sent = True
    queue.put([item("d")])
    assert [e.item.dedup_key for e in queue.entries] == ["a", "c", "d"]  # b was already delivered
    queue.put([item("e", "slack:warning")])
    assert [e.item.dedup_key for e in queue.entries] == ["c", "d", "e"]  # then the oldest
    assert queue.dropped == 2
    assert len(warnings) == 2
    assert "dropped sent firing notification to slack:critical: CRITICAL firing: b" in warnings[0]
    assert warnings[1].startswith("WARNING direct-delivery queue full (3 entries): dropped unsent firing")
    assert SECRET not in warnings[1] and "token" in warnings[1]


def test_entries_in_flight_are_never_dropped(warnings: list[str]) -> None:
    queue = OfflineOutbox(max_items=1)
    queue.put([item("a")])
    queue.entries[0].busy = True  # being sent right now
    queue.put([item("b"), item("b")])
    assert [e.item.dedup_key for e in queue.entries] == ["a"]
    assert queue.dropped == 1 and "dropped unsent firing notification to slack:critical" in warnings[0]


def test_given_up_entries_are_kept_apart() -> None:
    queue = OfflineOutbox()
    queue.put([item("firing"), item("resolved"), item("other", "slack:warning")])
    first, second, other = queue.entries
    assert queue.due(0.0) == [first, other]
    first.dead = True
    assert queue.due(0.0) == [second, other]  # a given-up entry does not block its route
    other.sent = True
    adopted = queue.adopt()
    assert (adopted.sent, adopted.unsent, adopted.dead) == ([other], [second], [first])
    queue.release(adopted.all, stored=False)
    assert len(queue) == 3 and not any(e.busy for e in queue.entries)
    queue.release(queue.adopt().all, stored=True)
    assert len(queue) == 0


async def test_direct_delivery_gives_up_but_keeps_the_entry(database: Database, sink: WebhookSink) -> None:
    config = Config.model_validate(
        {
            "notifications": {
                "slack": {"webhooks": {"critical": sink.url("crit")}, "timeout": 2},
                "outbox": {"max_attempts": 2, "backoff_initial": 0.05, "backoff_max": 0.1},
            }
        }
    )
    sink.script("crit", ScriptedReply(500, body="down"), ScriptedReply(503, body="still down"))
    queue = OfflineOutbox()
    queue.put([item("a")])
    deliverer = Deliverer(database, config, instance_id="solo", offline=queue)
    try:
        assert await deliverer.deliver_offline() == 0
        [entry] = queue.entries
        assert (entry.attempts, entry.dead, entry.last_error) == (1, False, "HTTP 500: down")
        entry.next_at = 0.0
        assert await deliverer.deliver_offline() == 0
        assert await deliverer.deliver_offline() == 0  # given up: not tried again
    finally:
        await deliverer.stop()
    assert len(sink.received) == 2
    assert queue.entries == [entry]
    assert (entry.attempts, entry.dead, entry.sent) == (2, True, False)
    assert (entry.last_status, entry.last_error) == (503, "HTTP 503: still down")
    failed = entry.failed()
    assert (failed.item, failed.attempts, failed.status) == (entry.item, 2, 503)
