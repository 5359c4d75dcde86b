"""The offline spool: decisions made without the database survive a restart, replay idempotently,
and an outage is logged once, not once per evaluation (issue 11 §1 and §2)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import pytest_asyncio
from loguru import logger

from core.alerting import AlertEngine, MetricSample
from core.db import Database, PoolSettings
from core.notify.delivery import Deliverer
from core.spool import read_spools
from tests.servers import WebhookSink
from tests.test_alerting import API_DOWN, Clock, CuttableLink, headers, make_config, until_recovered

DB_DOWN_NOW = [MetricSample("db.unreachable", "", 1.0)]
DB_OK = [MetricSample("db.unreachable", "", 0.0)]


@pytest_asyncio.fixture
async def clock() -> Clock:
    return Clock()


@pytest_asyncio.fixture
async def link(db_dsn: str) -> AsyncIterator[CuttableLink]:
    relay = CuttableLink(db_dsn)
    yield relay
    await relay.stop()


@pytest.fixture
def messages() -> Iterator[list[str]]:
    lines: list[str] = []
    sink_id = logger.add(lambda m: lines.append(m.record["message"]), level="INFO")
    yield lines
    logger.remove(sink_id)


def via(dsn: str) -> Database:
    return Database(dsn, PoolSettings(min_size=1, max_size=2, connect_timeout_s=1))


async def history(db: Database) -> list[tuple[str, str, str]]:
    rows = await db.fetch("SELECT rule, from_state, to_state FROM opswatch.alert_history ORDER BY id")
    return [tuple(r) for r in rows]


async def test_a_restart_during_the_outage_loses_nothing_and_announces_nothing_twice(
    db: Database, link: CuttableLink, sink: WebhookSink, clock: Clock, tmp_path: Path
) -> None:
    config = make_config(sink, api_for=0)
    first_db = via(await link.start())
    first = AlertEngine(first_db, config, instance_id="agent-1", clock=clock, spool_dir=tmp_path)
    first_out = Deliverer(first_db, config, instance_id="agent-1", offline=first.offline)
    await first.evaluate(DB_OK, clock.at(0))
    assert first.is_leader
    link.cut()
    await first.evaluate(DB_DOWN_NOW, clock.at(10))
    assert await first_out.deliver_offline() == 1
    assert headers(sink.received) == [":red_circle: CRITICAL: db-unreachable"]
    [spool] = read_spools(tmp_path)
    assert spool.alive and spool.items and all(s.status == "sent" for s in spool.items.values())
    # the agent dies (its lock goes with it) and is restarted while the database is still away
    assert first.spool is not None
    first.spool.close()
    await first_out.stop()
    await first_db.close()

    second_db = via(await link.start())
    second = AlertEngine(
        second_db, config, instance_id="agent-2", clock=clock, spool_dir=tmp_path,
        announce_unreachable_at_start=True,
    )  # fmt: skip
    second_out = Deliverer(second_db, config, instance_id="agent-2", offline=second.offline)
    try:
        assert await second.evaluate(DB_DOWN_NOW, clock.at(20)) == []  # known from the spool
        assert await second_out.deliver_offline() == 0
        link.down = False
        await until_recovered(second, clock, DB_OK, 30)
        await second_out.deliver_due()
    finally:
        await second_out.stop()
        await second_db.close()
    assert headers(sink.received) == [
        ":red_circle: CRITICAL: db-unreachable",
        ":white_check_mark: RESOLVED: db-unreachable",
    ]
    assert await history(db) == [("db-unreachable", "ok", "firing"), ("db-unreachable", "firing", "resolved")]
    rows = await db.fetch("SELECT kind, status FROM opswatch.notification_outbox ORDER BY id")
    assert [tuple(r) for r in rows] == [("firing", "delivered"), ("resolved", "delivered")]
    assert read_spools(tmp_path) == []  # both replayed: the dead one's file and the live one's


async def test_a_replay_by_two_instances_or_twice_never_doubles(
    db: Database, db_dsn: str, link: CuttableLink, sink: WebhookSink, clock: Clock, tmp_path: Path
) -> None:
    config = make_config(sink, api_for=0)
    leader_db = via(await link.start())
    leader = AlertEngine(leader_db, config, instance_id="leader", clock=clock, spool_dir=tmp_path)
    out = Deliverer(leader_db, config, instance_id="leader", offline=leader.offline)
    followers = [
        AlertEngine(via(db_dsn), config, instance_id=f"f{n}", clock=clock, spool_dir=tmp_path)
        for n in range(2)
    ]
    try:
        await leader.evaluate(DB_OK, clock.at(0))
        for f in followers:
            await f.load()
        link.cut()
        await leader.evaluate(DB_DOWN_NOW, clock.at(10))
        await out.deliver_offline()
        lines = [json.loads(x) for x in (tmp_path / "leader.jsonl").read_text().splitlines()]
        assert [x["type"] for x in lines] == ["alert", "transition", "item", "sent"]
        for f in followers:
            f._outage = True  # both saw the outage
        # (whether one of them takes the lease over meanwhile or not, the alert stays firing)
        await asyncio.gather(*(f.evaluate(DB_DOWN_NOW, clock.at(20)) for f in followers))
        for f in followers:
            f._outage = True
            await f.evaluate(DB_DOWN_NOW, clock.at(21))  # and once more
        assert await history(db) == [("db-unreachable", "ok", "firing")]
        rows = await db.fetch("SELECT kind, status FROM opswatch.notification_outbox ORDER BY id")
        assert [tuple(r) for r in rows] == [("firing", "delivered")]
        assert (tmp_path / "leader.jsonl").exists()  # its owner lives: never deleted by others
        link.down = False
        await until_recovered(leader, clock, DB_DOWN_NOW, 30, leader=False)  # merges its own: still once
        assert await history(db) == [("db-unreachable", "ok", "firing")]
        assert not (tmp_path / "leader.jsonl").exists()
    finally:
        await out.stop()
        await leader_db.close()
        for f in followers:
            await f.db.close()
    assert headers(sink.received) == [":red_circle: CRITICAL: db-unreachable"]


async def test_an_outage_is_logged_once_not_per_evaluation(
    db: Database, link: CuttableLink, sink: WebhookSink, clock: Clock, tmp_path: Path, messages: list[str]
) -> None:
    """An agent without a db-unreachable rule logged "evaluating alerts in memory" 15 times in 8 s."""
    config = make_config(sink, api_for=0, rules=[API_DOWN])
    link.down = True
    agent_db = via(await link.start())
    agent = AlertEngine(
        agent_db, config, instance_id="agent", clock=clock, spool_dir=tmp_path,
        announce_unreachable_at_start=True,
    )  # fmt: skip
    try:
        for n in range(15):  # the monitor evaluates every tick (250 ms; faster here)
            assert await agent.evaluate(DB_DOWN_NOW, clock.at(n)) == []
            await asyncio.sleep(0.05)  # time under test: ticks in a row, each of which could log
        link.down = False
        await until_recovered(agent, clock, DB_OK, 20)
        link.cut()  # a second outage, now as the leader: logged again, once
        for n in range(15):
            assert await agent.evaluate(DB_DOWN_NOW, clock.at(200 + n)) == []
            await asyncio.sleep(0.05)  # time under test: ticks in a row, each of which could log
        assert agent._offline_noted  # it did evaluate in memory
    finally:
        await agent_db.close()
    in_memory = [m for m in messages if "evaluating alerts in memory" in m]
    assert len(in_memory) == 2, messages
