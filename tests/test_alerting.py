"""The alert engine against real PostgreSQL and a local Slack sink, with an injectable clock."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Iterable
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pytest
import pytest_asyncio

from core.alerting import AlertActions, AlertEngine, MetricSample
from core.config import Config
from core.db import Database, DatabaseUnavailable, PoolSettings
from core.errors import ReadOnlyError
from core.notify.delivery import Deliverer
from tests.alerts import Clock, instances, mrkdwn_fields, play
from tests.servers import Received, ScriptedReply, WebhookSink
from tests.waiting import until

INTERVAL = 0.2  # evaluation_interval: the lease lasts 0.3 s, checks every 0.05 s

API_DOWN: dict[str, Any] = {
    "name": "api-down",
    "metric": "endpoint.down_for",
    "critical": 0,
    "for": 60,
    "description": "Endpoint down",
    "runbook": "Restart the POS backend",
}
ERROR_RATE: dict[str, Any] = {
    "name": "error-rate",
    "metric": "endpoint.error_rate",
    "warning": 5,
    "critical": 10,
    "depends_on": ["api-down", "db-unreachable"],
}
DB_DOWN: dict[str, Any] = {"name": "db-unreachable", "metric": "db.unreachable", "critical": 0}
SLOW: dict[str, Any] = {
    "name": "slow",
    "metric": "endpoint.latency_ms",
    "warning": 2000,
    "critical": 5000,
    "recovery": 1500,
}


def make_config(
    sink: WebhookSink,
    *,
    api_for: float = 60,
    group_wait: float = 0,
    repeat: float = 3600,
    rules: Any = None,
    interval: float = INTERVAL,
) -> Config:
    return Config.model_validate(
        {
            "endpoints": [
                {"name": f"ep{i}", "url": f"http://127.0.0.1:9/ep{i}", "service": "pay" if i == 9 else "api"}
                for i in range(10)
            ],
            "alerts": {
                "evaluation_interval": interval,
                "group_wait": group_wait,
                "repeat_interval": repeat,
                "flapping": {"transitions": 4, "window": 600},
                "rules": rules
                if rules is not None
                else [API_DOWN | {"for": api_for}, ERROR_RATE, DB_DOWN, SLOW],
            },
            "notifications": {
                "slack": {
                    "webhooks": {"critical": sink.url("crit"), "warning": sink.url("warn")},
                    "timeout": 2,
                },
                "outbox": {
                    "max_attempts": 3,
                    "backoff_initial": 0.05,
                    "backoff_max": 0.1,
                    "poll_interval": 0.05,
                },
            },
        }
    )


async def until_recovered(
    engine: AlertEngine,
    clock: Clock,
    samples: list[MetricSample],
    start: int,
    *,
    leader: bool = True,
    deliverer: Deliverer | None = None,
) -> list[Any]:
    """Evaluate ``samples`` once a (test clock) second from ``start`` until the engine has left its
    degraded mode, and leads with ``leader``: the pool reconnects after its backoff. The transitions."""
    moved: list[Any] = []
    second = start

    async def recovered() -> bool:
        nonlocal second
        moved.extend(await engine.evaluate(samples, clock.at(second)))
        second += 1
        if deliverer is not None:
            await deliverer.deliver_offline()  # meanwhile decisions stay in memory
        return (engine.is_leader or not leader) and not engine.degraded

    await until(recovered, within=10, what="the engine recovered from the outage", poll=0.05)
    return moved


def down(*eps: int, seconds: float = 100, up: Iterable[int] = ()) -> list[MetricSample]:
    return [MetricSample("endpoint.down_for", f"ep{i}", seconds) for i in eps] + [
        MetricSample("endpoint.down_for", f"ep{i}", 0.0) for i in up
    ]


def when(at: datetime) -> str:
    return f"<!date^{int(at.timestamp())}^{{date_short_pretty}} {{time_secs}}|{at:%Y-%m-%d %H:%M:%S} UTC>"


class Rig:
    """One opswatch instance: an engine and a deliverer on their own pool."""

    def __init__(self, db: Database, config: Config, clock: Clock, name: str = "one") -> None:
        self.engine = AlertEngine(db, config, instance_id=name, clock=clock)
        self.deliverer = Deliverer(db, config, instance_id=name)
        self.clock = clock

    async def step(self, seconds: float, samples: list[MetricSample]) -> list[tuple[str, str, str, str]]:
        moved = await self.engine.evaluate(samples, self.clock.at(seconds))
        await self.deliverer.deliver_due()
        return [(t.rule, t.scope, t.from_state, t.to_state) for t in moved]

    async def close(self) -> None:
        await self.deliverer.stop()


@pytest_asyncio.fixture
async def clock() -> Clock:
    return Clock()


def headers(received: list[Received]) -> list[str]:
    return [r.body["blocks"][0]["text"]["text"] for r in received]


async def outbox_kinds(db: Database) -> list[str]:
    return [r["kind"] for r in await db.fetch("SELECT kind FROM opswatch.notification_outbox ORDER BY id")]


async def test_down_pending_firing_resolved_with_exact_messages(
    db: Database, sink: WebhookSink, clock: Clock
) -> None:
    rig = Rig(db, make_config(sink), clock)
    try:
        assert await rig.step(0, down(up=[0])) == []
        assert await rig.step(10, down(0, seconds=10)) == [("api-down", "ep0", "ok", "pending")]
        [view] = rig.engine.active()
        assert (view.state, view.severity, view.since, view.value) == (
            "pending",
            "critical",
            clock.at(10),
            10,
        )
        assert rig.engine.has_pending()
        assert await rig.step(69, down(0, seconds=69)) == []
        assert await rig.step(70, down(0, seconds=70)) == [("api-down", "ep0", "pending", "firing")]
        [view] = rig.engine.active()
        assert (view.state, view.summary) == ("firing", "Endpoint down: 1m 10s (threshold > 0s for 1m)")
        assert not rig.engine.has_pending()
        [fired] = await sink.wait_for(1)
        assert fired.path == "/crit"
        assert fired.body == {
            "text": ":red_circle: CRITICAL: api-down on ep0 — Endpoint down. "
            "Value 1m 10s (threshold &gt; 0s for 1m)"
            f" since {clock.t0 + timedelta(seconds=10):%Y-%m-%d %H:%M:%S} UTC",
            "blocks": [
                {
                    "type": "header",
                    "text": {
                        "type": "plain_text",
                        "text": ":red_circle: CRITICAL: api-down on ep0",
                        "emoji": True,
                    },
                },
                {"type": "section", "text": {"type": "mrkdwn", "text": "*Endpoint down*"}},
                {
                    "type": "section",
                    "fields": mrkdwn_fields(
                        "*Severity*\n:red_circle: Critical",
                        "*Where*\nep0",
                        "*Value*\n1m 10s",
                        "*Threshold*\n&gt; 0s for 1m",
                        f"*Since*\n{when(clock.t0 + timedelta(seconds=10))}",
                    ),
                },
                {
                    "type": "context",
                    "elements": [{"type": "mrkdwn", "text": ":book: *Runbook:* Restart the POS backend"}],
                },
            ],
            "username": "opswatch",
        }
        assert await rig.step(100, down(0, seconds=100)) == []
        assert await rig.step(130, down(up=[0])) == [("api-down", "ep0", "firing", "resolved")]
        [_, resolved] = await sink.wait_for(2)
        assert resolved.path == "/crit"
        assert resolved.body == {
            "text": ":white_check_mark: RESOLVED: api-down on ep0 — Endpoint down (was CRITICAL, fired "
            f"{clock.t0 + timedelta(seconds=70):%Y-%m-%d %H:%M:%S} UTC, resolved after 2m). Value 0s",
            "blocks": [
                {
                    "type": "header",
                    "text": {
                        "type": "plain_text",
                        "text": ":white_check_mark: RESOLVED: api-down on ep0",
                        "emoji": True,
                    },
                },
                {
                    "type": "section",
                    "text": {"type": "mrkdwn", "text": "*Endpoint down*\nBack to normal after 2m."},
                },
                {
                    "type": "section",
                    "fields": mrkdwn_fields(
                        "*Was*\n:red_circle: Critical",
                        "*Where*\nep0",
                        "*Value*\n0s",
                        "*Threshold*\n&gt; 0s for 1m",
                        f"*Fired*\n{when(clock.t0 + timedelta(seconds=70))}",
                        f"*Resolved*\n{when(clock.t0 + timedelta(seconds=130))}",
                    ),
                },
                {
                    "type": "context",
                    "elements": [{"type": "mrkdwn", "text": ":book: *Runbook:* Restart the POS backend"}],
                },
            ],
            "username": "opswatch",
        }
        [view] = rig.engine.active()
        assert view.state == "resolved"
        assert await rig.step(130 + 300, down(up=[0])) == [("api-down", "ep0", "resolved", "ok")]
        assert rig.engine.active() == []
    finally:
        await rig.close()
    history = await db.fetch("SELECT from_state, to_state, instance FROM opswatch.alert_history ORDER BY id")
    assert [(r[0], r[1]) for r in history] == [
        ("ok", "pending"),
        ("pending", "firing"),
        ("firing", "resolved"),
        ("resolved", "ok"),
    ]
    assert {r[2] for r in history} == {"one"}
    assert await outbox_kinds(db) == ["firing", "resolved"]
    assert len(sink.received) == 2


async def test_ten_alerts_within_group_wait_make_one_post(
    db: Database, sink: WebhookSink, clock: Clock
) -> None:
    rig = Rig(db, make_config(sink, api_for=0, group_wait=5), clock)
    try:
        await rig.step(0, down(0, 1, 2, 3, 4))
        assert rig.engine.has_pending()  # waiting for group_wait
        await rig.step(3, down(0, 1, 2, 3, 4, 5, 6, 7, 8, 9))
        assert await outbox_kinds(db) == []
        await rig.step(5, down(*range(10)))
        await rig.step(20, down(up=range(10)))
    finally:
        await rig.close()
    assert await outbox_kinds(db) == ["grouped", "resolved"]
    assert headers(sink.received) == [
        ":red_circle: CRITICAL: 10 alerts firing",
        ":white_check_mark: RESOLVED: 10 alerts",
    ]
    lines = sink.received[0].body["blocks"][1]["text"]["text"].split("\n")
    assert [line.split(":")[0] for line in lines] == [f"• *api-down on ep{i}*" for i in range(10)]


async def test_dependency_suppression_never_swallows_a_resolved(
    db: Database, sink: WebhookSink, clock: Clock
) -> None:
    rig = Rig(db, make_config(sink, api_for=0), clock)
    rate = {f"ep{i}": v for i, v in ((1, 50.0), (9, 50.0))}

    def samples(*eps_down: int, rates: dict[str, float], db_down: bool = False) -> list[MetricSample]:
        out = down(*eps_down, up=[i for i in range(10) if i not in eps_down])
        out += [MetricSample("endpoint.error_rate", ep, v) for ep, v in rates.items()]
        return [*out, MetricSample("db.unreachable", "", 1.0 if db_down else 0.0)]

    try:
        # ep1 (service api) and ep9 (service pay) show errors while ep0 (api) is down.
        await rig.step(0, samples(0, rates=rate))
        views = {(v.rule, v.scope): v for v in rig.engine.active()}
        assert views[("error-rate", "ep1")].suppressed_by == "api-down"
        assert views[("error-rate", "ep9")].suppressed_by is None  # another service
        assert headers(sink.received) == [":red_circle: CRITICAL: 2 alerts firing"]  # same instant: one post
        lines = sink.received[0].body["blocks"][1]["text"]["text"].split("\n")
        assert [line.split(":")[0] for line in lines] == ["• *api-down on ep0*", "• *error-rate on ep9*"]
        # The cause clears but the symptom stays: now it is announced on its own.
        await rig.step(10, samples(rates=rate))
        assert headers(sink.received)[1:] == [
            ":white_check_mark: RESOLVED: api-down on ep0",
            ":red_circle: CRITICAL: error-rate on ep1",
        ]
        # The database goes away (global cause): both error-rate alerts are held, but when they clear
        # their resolved messages go out because they had been announced.
        await rig.step(20, samples(rates=rate, db_down=True))
        assert {v.suppressed_by for v in rig.engine.active() if v.rule == "error-rate"} == {"db-unreachable"}
        await rig.step(30, samples(rates={"ep1": 0.0, "ep9": 0.0}, db_down=True))
    finally:
        await rig.close()
    assert headers(sink.received)[3:] == [
        ":red_circle: CRITICAL: db-unreachable",
        ":white_check_mark: RESOLVED: 2 alerts",
    ]
    assert "error-rate on ep1" in sink.received[-1].body["text"]


async def test_silence_acknowledge_and_repeat(db: Database, sink: WebhookSink, clock: Clock) -> None:
    config = make_config(sink, api_for=0, repeat=600)
    rig = Rig(db, config, clock)
    actions = AlertActions(db, config, actor="alice")
    try:
        with pytest.raises(ReadOnlyError):
            await AlertActions(db, config, actor="wall", read_only=True).silence("api-down", "ep0", 60, "x")
        with pytest.raises(ValueError, match="reason"):
            await actions.silence("api-down", "ep0", 60, "  ")
        silence = await actions.silence("api-down", "ep0", 3600, "maintenance window")
        assert [s.id for s in await actions.silences()] == [silence.id]
        await rig.step(0, down(0, 1))
        views = {v.scope: v for v in rig.engine.active()}
        assert views["ep0"].silenced and not views["ep1"].silenced
        assert headers(sink.received) == [":red_circle: CRITICAL: api-down on ep1"]

        assert (await actions.unsilence(silence.id)).outcome == "applied"
        assert (await actions.unsilence(silence.id)).outcome == "skipped"
        await rig.engine.sync()
        await rig.step(10, down(0, 1))
        assert headers(sink.received)[1:] == [":red_circle: CRITICAL: api-down on ep0"]

        ack = await actions.acknowledge("api-down", "ep1")
        assert (ack.outcome, ack.target) == ("applied", "api-down/ep1")
        assert (await actions.acknowledge("api-down", "ep1")).outcome == "skipped"
        assert (await actions.acknowledge("api-down", "ep5")).outcome == "skipped"
        await rig.engine.sync()
        assert {v.scope: v.acknowledged_by for v in rig.engine.active()} == {"ep0": None, "ep1": "alice"}

        await rig.step(599, down(0, 1))
        assert len(sink.received) == 2
        await rig.step(610, down(0, 1))  # ep0 announced at 10 s repeats; acknowledged ep1 does not
        await rig.step(1210, down(0, 1))
        assert headers(sink.received)[2:] == [":red_circle: CRITICAL (still firing): api-down on ep0"] * 2
        assert await outbox_kinds(db) == ["firing", "firing", "repeat", "repeat"]
        # Resolving clears the acknowledgement.
        await rig.step(1220, down(0, up=[1]))
        await rig.step(1230, down(0, 1))
        assert all(v.acknowledged_by is None for v in rig.engine.active())
    finally:
        await rig.close()
    audit = await db.fetch(
        "SELECT actor, action, target_kind, target_key, outcome FROM opswatch.audit_log ORDER BY id"
    )
    assert [tuple(r) for r in audit] == [
        ("alice", "silence.create", "silence", "api-down/ep0", "applied"),
        ("alice", "silence.cancel", "silence", None, "applied"),
        ("alice", "silence.cancel", "silence", None, "skipped"),
        ("alice", "alert.ack", "alert", "api-down/ep1", "applied"),
        ("alice", "alert.ack", "alert", "api-down/ep1", "skipped"),
        ("alice", "alert.ack", "alert", "api-down/ep5", "skipped"),
    ]


async def test_flapping_throttles_notifications(db: Database, sink: WebhookSink, clock: Clock) -> None:
    rig = Rig(db, make_config(sink, api_for=0), clock)
    try:
        for i in range(8):
            await rig.step(i * 30, down(0) if i % 2 == 0 else down(up=[0]))
        [view] = rig.engine.active()
        assert view.state == "flapping"
        assert headers(sink.received) == [
            ":red_circle: CRITICAL: api-down on ep0",
            ":white_check_mark: RESOLVED: api-down on ep0",
            ":red_circle: CRITICAL: api-down on ep0",
            ":arrows_counterclockwise: FLAPPING (CRITICAL): api-down on ep0",
        ]
        await rig.step(400, down(up=[0]))
        assert len(sink.received) == 4
        await rig.step(900, down(up=[0]))  # settled (resolved) for a whole window
    finally:
        await rig.close()
    assert headers(sink.received)[4:] == [":white_check_mark: RESOLVED: api-down on ep0"]
    assert rig.engine.active() == []


async def test_escalation_goes_to_the_critical_route(db: Database, sink: WebhookSink, clock: Clock) -> None:
    rig = Rig(db, make_config(sink), clock)
    try:
        await rig.step(0, [MetricSample("endpoint.latency_ms", "ep0", 2500)])
        await rig.step(10, [MetricSample("endpoint.latency_ms", "ep0", 6000)])
        await rig.step(20, [MetricSample("endpoint.latency_ms", "ep0", 1800)])  # hysteresis: still firing
        await rig.step(30, [MetricSample("endpoint.latency_ms", "ep0", 1400)])
    finally:
        await rig.close()
    assert [(r.path, h) for r, h in zip(sink.received, headers(sink.received), strict=True)] == [
        ("/warn", ":warning: WARNING: slow on ep0"),
        ("/crit", ":red_circle: CRITICAL (escalated from WARNING): slow on ep0"),
        ("/crit", ":white_check_mark: RESOLVED: slow on ep0"),
    ]


async def test_restart_keeps_firing_alerts_quiet(db: Database, sink: WebhookSink, clock: Clock) -> None:
    config = make_config(sink, api_for=0)
    first = Rig(db, config, clock, "before")
    await first.step(0, down(0))
    await first.engine.close()
    await first.close()
    second = Rig(db, config, clock, "after")
    try:
        await second.engine.load()
        assert [(v.rule, v.scope, v.state) for v in second.engine.active()] == [("api-down", "ep0", "firing")]
        assert await second.step(60, down(0, seconds=160)) == []
        assert second.engine.is_leader
    finally:
        await second.close()
    assert await outbox_kinds(db) == ["firing"]


async def test_alert_cleared_while_down_gets_its_resolved(
    db: Database, sink: WebhookSink, clock: Clock
) -> None:
    config = make_config(sink, api_for=0)
    crashed = Rig(db, config, clock, "crashed")
    await crashed.step(0, down(0, 1))
    await crashed.close()  # no lease release: the process died
    restarted = Rig(db, config, clock, "restarted")
    try:
        await restarted.engine.load()
        await asyncio.sleep(1.5 * INTERVAL + 0.05)  # time under test: the dead instance's lease runs out
        moved = await restarted.step(600, down(1, seconds=700, up=[0]))
        assert moved == [("api-down", "ep0", "firing", "resolved")]
    finally:
        await restarted.close()
    assert await outbox_kinds(db) == ["grouped", "resolved"]
    assert headers(sink.received)[1] == ":white_check_mark: RESOLVED: api-down on ep0"


async def test_two_instances_send_every_notification_once(
    db: Database, db_dsn: str, sink: WebhookSink, clock: Clock
) -> None:
    config = make_config(sink, api_for=0, group_wait=1)
    async with instances(db_dsn, config, clock) as engines:
        timeline = [
            (0, down(*range(5))),
            (0.5, down(*range(10))),
            (1, down(*range(10))),
            (2, down(*range(10))),
        ]
        timeline += [(30, down(up=range(10))), (40, down(up=range(10)))]
        await play(engines, clock, timeline)
        await sink.wait_for(2)
        await asyncio.sleep(0.3)  # time under test: would catch a late duplicate
    assert headers(sink.received) == [
        ":red_circle: CRITICAL: 10 alerts firing",
        ":white_check_mark: RESOLVED: 10 alerts",
    ]
    assert sum(e.is_leader for e in engines) == 1


async def test_follower_takes_over_within_two_intervals(
    db: Database, sink: WebhookSink, clock: Clock
) -> None:
    interval = 0.5
    config = make_config(sink, api_for=0, interval=interval)
    leader = Rig(db, config, clock, "leader")
    follower = Rig(db, config, clock, "follower")
    try:
        await leader.step(0, down(0))
        await follower.step(0, down(0))
        assert leader.engine.is_leader and not follower.engine.is_leader
        assert [v.state for v in follower.engine.active()] == ["firing"]
        died = time.monotonic()  # the leader stops evaluating and never releases its lease
        took_over = None
        for n in range(1, 100):
            await follower.step(n, down(0))
            if follower.engine.is_leader:
                took_over = time.monotonic() - died
                break
            await asyncio.sleep(interval / 10)  # time under test: how soon the follower takes over
        assert took_over is not None and took_over <= 2 * interval
        await follower.step(200, down(up=[0]))
    finally:
        await leader.close()
        await follower.close()
    assert headers(sink.received) == [
        ":red_circle: CRITICAL: api-down on ep0",
        ":white_check_mark: RESOLVED: api-down on ep0",
    ]


async def test_removed_rule_resolves_announced_alerts(db: Database, sink: WebhookSink, clock: Clock) -> None:
    first = Rig(db, make_config(sink, api_for=0), clock, "v1")
    await first.step(0, down(0))
    await first.engine.close()
    await first.close()
    second = Rig(db, make_config(sink, rules=[ERROR_RATE | {"depends_on": []}]), clock, "v2")
    try:
        await second.step(10, [])
    finally:
        await second.close()
    assert headers(sink.received) == [
        ":red_circle: CRITICAL: api-down on ep0",
        ":white_check_mark: RESOLVED: api-down on ep0",
    ]
    assert second.engine.active() == []


async def test_history_and_test_message(db: Database, sink: WebhookSink, clock: Clock) -> None:
    config = make_config(sink, api_for=0)
    rig = Rig(db, config, clock)
    actions = AlertActions(db, config, actor="bob")
    try:
        await rig.step(0, down(0))
        ids = await actions.send_test("warning")
        await rig.deliverer.deliver_due()
    finally:
        await rig.close()
    assert len(ids) == 1
    assert [(h.rule, h.scope, h.to_state) for h in await actions.history()] == [("api-down", "ep0", "firing")]
    [test] = [r for r in sink.received if r.path == "/warn"]
    assert test.body["blocks"][0]["text"]["text"] == ":test_tube: TEST (WARNING): opswatch test message"
    assert "Test message sent by bob" in test.body["blocks"][1]["text"]["text"]
    entries = await actions.outbox()
    assert [(e.kind, e.status, e.route) for e in entries] == [
        ("test", "delivered", "slack:warning"),
        ("firing", "delivered", "slack:critical"),
    ]


class CuttableLink:
    """A TCP relay to PostgreSQL that the test can cut and restore, like a network outage."""

    def __init__(self, dsn: str) -> None:
        parts = urlsplit(dsn)
        self.target = (parts.hostname or "127.0.0.1", parts.port or 5432)
        self.parts = parts
        self.down = False
        self.pairs: list[tuple[asyncio.StreamWriter, asyncio.StreamWriter]] = []
        self.server: asyncio.Server | None = None

    async def start(self) -> str:
        self.server = await asyncio.start_server(self._client, "127.0.0.1", 0)
        port = self.server.sockets[0].getsockname()[1]
        netloc = self.parts.netloc.rsplit("@", 1)[0] + f"@127.0.0.1:{port}"
        return urlunsplit(self.parts._replace(netloc=netloc))

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self.down:
            writer.close()
            return
        up_reader, up_writer = await asyncio.open_connection(*self.target)
        self.pairs.append((writer, up_writer))
        await asyncio.gather(
            self._pipe(reader, up_writer), self._pipe(up_reader, writer), return_exceptions=True
        )

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        finally:
            writer.close()

    def cut(self) -> None:
        self.down = True
        for a, b in self.pairs:
            a.close()
            b.close()
        self.pairs.clear()

    async def stop(self) -> None:
        self.cut()
        if self.server is not None:
            self.server.close()


@contextlib.asynccontextmanager
async def through_link(dsn: str, *, down: bool = False) -> AsyncIterator[tuple[CuttableLink, Database]]:
    """A database handle whose connections the test cuts (``link.cut()``) and lets back (``down``)."""
    link = CuttableLink(dsn)
    link.down = down
    via_link = Database(await link.start(), PoolSettings(min_size=1, max_size=2, connect_timeout_s=1))
    try:
        yield link, via_link
    finally:
        await via_link.close()
        await link.stop()


async def test_database_unreachable_is_announced_without_the_database(
    db: Database, db_dsn: str, sink: WebhookSink, clock: Clock
) -> None:
    async with through_link(db_dsn) as (link, via_link):
        config = make_config(sink, api_for=0)
        engine = AlertEngine(via_link, config, instance_id="solo", clock=clock)
        deliverer = Deliverer(via_link, config, instance_id="solo", offline=engine.offline)
        try:
            db_ok = [MetricSample("db.unreachable", "", 0.0)]
            db_down = [MetricSample("db.unreachable", "", 1.0)]
            await engine.evaluate(db_ok, clock.at(0))
            assert engine.is_leader
            link.cut()
            moved = await engine.evaluate(db_down, clock.at(10))  # no exception: decided in memory
            assert [(t.rule, t.to_state) for t in moved] == [("db-unreachable", "firing")]
            assert [v.rule for v in engine.active()] == ["db-unreachable"]
            with pytest.raises(DatabaseUnavailable):
                await deliverer.deliver_due()
            assert await deliverer.deliver_offline() == 1
            assert headers(sink.received) == [":red_circle: CRITICAL: db-unreachable"]
            assert await engine.evaluate(db_down, clock.at(20)) == []
            link.down = False
            moved = await until_recovered(engine, clock, db_ok, 30, leader=False, deliverer=deliverer)
            assert not engine.degraded
            assert [(t.rule, t.from_state, t.to_state) for t in moved] == [
                ("db-unreachable", "firing", "resolved")
            ]
            await deliverer.deliver_due()
        finally:
            await deliverer.stop()
    assert headers(sink.received)[1:] == [":white_check_mark: RESOLVED: db-unreachable"]
    rows = await db.fetch("SELECT kind, status FROM opswatch.notification_outbox ORDER BY id")
    assert [tuple(r) for r in rows] == [("firing", "delivered"), ("resolved", "delivered")]
    history = await db.fetch("SELECT from_state, to_state FROM opswatch.alert_history ORDER BY id")
    assert [tuple(r) for r in history] == [("ok", "firing"), ("firing", "resolved")]


async def test_an_agent_started_during_an_outage_announces_it_once_and_resolves_it(
    db: Database, db_dsn: str, sink: WebhookSink, clock: Clock
) -> None:
    """opswatch (agent and a console) restarts while the database is already gone: nobody holds
    state or the lease, yet the team must hear that the database is unreachable."""
    async with through_link(db_dsn, down=True) as (link, via_link):
        config = make_config(sink, api_for=0)
        console = AlertEngine(via_link, config, instance_id="console", clock=clock)
        agent = AlertEngine(
            via_link, config, instance_id="agent", clock=clock, announce_unreachable_at_start=True
        )
        deliverer = Deliverer(via_link, config, instance_id="agent", offline=agent.offline)
        # ep0 is down too, but its state before the restart is unknown: only the database is decided
        outage = [MetricSample("db.unreachable", "", 1.0), *down(0)]
        try:
            with pytest.raises(DatabaseUnavailable):
                await console.evaluate(outage, clock.at(0))
            moved = await agent.evaluate(outage, clock.at(0))
            assert [(t.rule, t.to_state) for t in moved] == [("db-unreachable", "firing")]
            assert await deliverer.deliver_offline() == 1
            assert headers(sink.received) == [":red_circle: CRITICAL: db-unreachable"]
            assert await agent.evaluate(outage, clock.at(10)) == []  # announced once
            link.down = False
            db_ok = [MetricSample("db.unreachable", "", 0.0)]
            moved = await until_recovered(agent, clock, db_ok, 20, leader=False)
            assert not agent.degraded and agent.is_leader
            assert [(t.rule, t.from_state, t.to_state) for t in moved] == [
                ("db-unreachable", "firing", "resolved")
            ]
            await deliverer.deliver_due()
        finally:
            await deliverer.stop()
    assert headers(sink.received) == [
        ":red_circle: CRITICAL: db-unreachable",
        ":white_check_mark: RESOLVED: db-unreachable",
    ]
    rows = await db.fetch("SELECT kind, status FROM opswatch.notification_outbox ORDER BY id")
    assert [tuple(r) for r in rows] == [("firing", "delivered"), ("resolved", "delivered")]
    history = await db.fetch("SELECT rule, from_state, to_state FROM opswatch.alert_history ORDER BY id")
    assert [tuple(r) for r in history] == [
        ("db-unreachable", "ok", "firing"),
        ("db-unreachable", "firing", "resolved"),
    ]


async def test_followers_stay_quiet_while_the_database_is_away(
    db: Database, sink: WebhookSink, clock: Clock
) -> None:
    config = make_config(sink, api_for=0)
    leader = AlertEngine(db, config, instance_id="leader", clock=clock)
    follower = AlertEngine(db, config, instance_id="follower", clock=clock)
    await leader.evaluate([], clock.at(0))
    await follower.evaluate([], clock.at(0))
    assert not follower.is_leader
    await db.close()  # this handle now raises DatabaseUnavailable, like an outage
    await asyncio.sleep(INTERVAL / 2)  # time under test: both instances' next lease check is due
    unreachable = [MetricSample("db.unreachable", "", 1.0)]
    with pytest.raises(DatabaseUnavailable):
        await follower.evaluate(unreachable, clock.at(10))
    assert not follower.degraded and not follower.offline
    moved = await leader.evaluate(unreachable, clock.at(10))
    assert [t.to_state for t in moved] == ["firing"]
    assert leader.degraded and len(leader.offline) == 1


async def test_alerts_on_a_removed_endpoint_are_resolved(
    db: Database, sink: WebhookSink, clock: Clock
) -> None:
    first = Rig(db, make_config(sink, api_for=0), clock, "v1")
    await first.step(0, down(0, 1))
    await first.engine.close()
    await first.close()
    fewer = make_config(sink, api_for=0).model_dump(by_alias=True)
    fewer["endpoints"] = [e for e in fewer["endpoints"] if e["name"] != "ep0"]
    second = Rig(db, Config.model_validate(fewer), clock, "v2")
    try:
        assert await second.step(10, down(1)) == [("api-down", "ep0", "firing", "ok")]
    finally:
        await second.close()
    assert headers(sink.received)[1:] == [":white_check_mark: RESOLVED: api-down on ep0"]
    assert [(v.scope, v.state) for v in second.engine.active()] == [("ep1", "firing")]


async def test_direct_delivery_given_up_is_stored_as_dead_and_resendable(
    db: Database, db_dsn: str, sink: WebhookSink, clock: Clock
) -> None:
    async with through_link(db_dsn) as (link, via_link):
        config = make_config(sink, api_for=0)  # max_attempts 3
        engine = AlertEngine(via_link, config, instance_id="solo", clock=clock)
        deliverer = Deliverer(via_link, config, instance_id="solo", offline=engine.offline)
        sink.script("crit", *[ScriptedReply(500, body="slack is down")] * 3)
        db_down = [MetricSample("db.unreachable", "", 1.0)]
        try:
            await engine.evaluate([MetricSample("db.unreachable", "", 0.0)], clock.at(0))
            link.cut()
            await engine.evaluate(db_down, clock.at(10))
            for _ in range(4):
                for entry in engine.offline.entries:
                    entry.next_at = 0.0  # skip the backoff
                assert await deliverer.deliver_offline() == 0
            assert len(sink.received) == 3
            [entry] = engine.offline.entries
            assert entry.dead and engine.degraded
            link.down = False
            await until_recovered(engine, clock, db_down, 20, leader=False)
            assert not engine.degraded and len(engine.offline) == 0
            actions = AlertActions(db, config, actor="alice")
            [dead] = await actions.outbox("dead")  # what the Alerts screen lists
            assert (dead.kind, dead.route, dead.attempts) == ("firing", "slack:critical", 3)
            assert (dead.last_status, dead.last_error) == (500, "HTTP 500: slack is down")
            assert (await actions.resend(dead.id)).outcome == "applied"
            assert await deliverer.deliver_due() == 1
        finally:
            await deliverer.stop()
    assert headers(sink.delivered) == [":red_circle: CRITICAL: db-unreachable"]
    rows = await db.fetch("SELECT kind, status, attempts FROM opswatch.notification_outbox ORDER BY id")
    assert [tuple(r) for r in rows] == [("firing", "delivered", 1)]
