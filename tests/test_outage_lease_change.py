"""Issue 11 §1: a database outage with a lease change neither doubles nor loses an alert.

A real ``opswatch run --headless`` agent (a subprocess, so SIGSTOP really freezes it) and a
console-like Monitor in this process share an embedded PostgreSQL that the test stops and starts,
a local Slack sink and a fleet of endpoints. The agent holds the evaluation lease when the database
goes away, so it announces ``db-unreachable`` and an endpoint that goes down meanwhile directly; it
is then frozen, the database comes back and the console takes the lease over. Before: the console
announced the endpoint again and ``db-unreachable`` never got its RESOLVED (nor a history row).
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
import tempfile
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import asyncpg
import pytest
import pytest_asyncio
import yaml
from loguru import logger

from core.config import Config
from core.db import Database, PoolSettings
from core.embedded import EmbeddedPostgres
from core.migrate import init_app_schema, migrate
from core.runtime import build_services
from core.spool import default_spool_dir
from tests.servers import FleetServer, WebhookSink
from tests.waiting import until

pytestmark = pytest.mark.skipif(
    bool(os.environ.get("OPSWATCH_TEST_DSN")),
    reason="needs a server this test can stop; the external one is not ours to stop",
)


FIRING_DB = ":red_circle: CRITICAL: db-unreachable"
FIRING_EP3 = ":red_circle: CRITICAL: down on ep3"
RESOLVED_DB = ":white_check_mark: RESOLVED: db-unreachable"
RESOLVED_EP3 = ":white_check_mark: RESOLVED: down on ep3"


def config_for(dsn: str, fleet: FleetServer, sink: WebhookSink, logs: Path) -> dict[str, Any]:
    return {
        "database": {"dsn": dsn, "pool_min": 1, "pool_max": 3, "connect_timeout": 1},
        "endpoints": [{"name": f"ep{i}", "url": fleet.url(f"ep{i}")} for i in range(4)],
        "probes": {"interval": 0.25, "timeout": 1, "flush_interval": 1},
        "alerts": {
            "evaluation_interval": 1,
            "group_wait": 0,
            "repeat_interval": 86400,
            "rules": [
                {
                    "name": "down",
                    "metric": "endpoint.down_for",
                    "critical": 1,
                    "description": "Endpoint down",
                },
                {"name": "db-unreachable", "metric": "db.unreachable", "critical": 0},
            ],
        },
        "notifications": {
            "slack": {"webhooks": {"critical": sink.url("slack")}, "timeout": 2},
            "outbox": {"poll_interval": 0.1, "backoff_initial": 0.1, "backoff_max": 0.5},
        },
        "ui": {"refresh_interval": 0.25},
        "logging": {"directory": str(logs), "level": "INFO"},
    }


@pytest_asyncio.fixture
async def server() -> AsyncIterator[EmbeddedPostgres]:
    with tempfile.TemporaryDirectory(prefix="opswatch-outage-pg-") as tmp:
        pg = EmbeddedPostgres(Path(tmp)).start()
        try:
            conn = await asyncpg.connect(pg.dsn)
            try:
                await init_app_schema(conn)
                await migrate(conn)
            finally:
                await conn.close()
            yield pg
        finally:
            pg.stop()


async def test_frozen_lease_holder_and_takeover_send_each_message_once(
    server: EmbeddedPostgres, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = tmp_path / "data"
    monkeypatch.setenv("OPSWATCH_DATA_DIR", str(data))
    spool_dir = default_spool_dir(server.dsn)
    admin = Database(server.dsn, PoolSettings(min_size=1, max_size=2, connect_timeout_s=1))
    console_log: list[str] = []
    sink_id = logger.add(lambda m: console_log.append(m.record["message"]), level="INFO")
    async with FleetServer() as fleet, WebhookSink() as sink:
        raw = config_for(server.dsn, fleet, sink, tmp_path / "agent-logs")
        path = tmp_path / "agent.yaml"
        path.write_text(yaml.safe_dump(raw))
        env = {**os.environ, "OPSWATCH_DATA_DIR": str(data), "PYTHONUNBUFFERED": "1"}
        agent = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "cli.main", "run", "--headless", "--config", str(path),
            cwd=tmp_path, env=env, stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
        )  # fmt: skip
        console_db = Database(server.dsn, PoolSettings(min_size=1, max_size=3, connect_timeout_s=1))
        console_config = Config.model_validate(raw | {"logging": {}})
        console = build_services(console_config, console_db, actor="console").monitor

        async def holder() -> str | None:
            row = await admin.fetchrow("SELECT holder FROM opswatch.alert_leader WHERE name = 'alerting'")
            return None if row is None else row["holder"]

        def seen(header: str) -> int:
            return sum(1 for r in sink.received if _header(r.body) == header)

        try:
            await until(lambda: _holds(holder, lambda h: h is not None), 20, what="the agent holds the lease")
            agent_id = await holder()
            await console.start()
            assert not console.engine.is_leader

            server.stop()  # the outage
            await until(lambda: seen(FIRING_DB) == 1, 20, what="CRITICAL db-unreachable")
            fleet.set("ep3", status=503)
            await until(lambda: seen(FIRING_EP3) == 1, 20, what="CRITICAL down on ep3")
            spooled = list(spool_dir.glob("*.jsonl"))
            assert len(spooled) == 1, "the agent records what it decided and sent in its spool"

            agent.send_signal(signal.SIGSTOP)  # the lease holder hangs
            server.start()
            mine = console.instance_id
            await until(lambda: _holds(holder, lambda h: h == mine), 20, what="the console takes the lease")
            await until(lambda: seen(RESOLVED_DB) == 1, 20, what="RESOLVED db-unreachable")
            assert spooled[0].exists()  # its owner is alive (frozen): replayed, not deleted

            agent.send_signal(signal.SIGCONT)
            await until(lambda: not spooled[0].exists(), 20, what="the agent merged its own spool")
            fleet.set("ep3", status=200)
            await until(lambda: seen(RESOLVED_EP3) == 1, 20, what="RESOLVED down on ep3")
            await until(_outbox_settled(admin), 20, what="nothing left to send")
        finally:
            if agent.returncode is None:
                agent.send_signal(signal.SIGCONT)
                agent.send_signal(signal.SIGTERM)
                try:
                    await asyncio.wait_for(agent.wait(), 15)
                except TimeoutError:
                    agent.kill()
                    await agent.wait()
            await console.stop()
            await console_db.close()
            logger.remove(sink_id)

        texts = [_header(r.body) for r in sink.received]
        assert sorted(texts) == sorted([FIRING_DB, FIRING_EP3, RESOLVED_DB, RESOLVED_EP3]), texts
        history = await admin.fetch(
            "SELECT rule, scope, to_state, count(*) AS n FROM opswatch.alert_history"
            " WHERE to_state IN ('firing', 'resolved') GROUP BY 1, 2, 3 ORDER BY 1, 2, 3"
        )
        assert [tuple(r) for r in history] == [
            ("db-unreachable", "", "firing", 1),
            ("db-unreachable", "", "resolved", 1),
            ("down", "ep3", "firing", 1),
            ("down", "ep3", "resolved", 1),
        ]
        outbox = await admin.fetch(
            "SELECT kind, status, count(*) AS n FROM opswatch.notification_outbox GROUP BY 1, 2 ORDER BY 1, 2"
        )
        assert [tuple(r) for r in outbox] == [("firing", "delivered", 2), ("resolved", "delivered", 2)]
        await admin.close()

    # one line per state change, not per evaluation (the agent's log file, the console's records)
    agent_lines = [
        json.loads(line)["message"]
        for f in sorted((tmp_path / "agent-logs").glob("combined*.log"))
        for line in f.read_text().splitlines()
        if line.strip()
    ]
    assert sum("evaluating alerts in memory" in m for m in agent_lines) == 1, agent_lines
    assert sum(m.startswith("database unreachable:") for m in console_log) == 1, console_log
    assert sum(m.startswith("database reachable again") for m in console_log) == 1, console_log
    assert agent_id != console.instance_id


async def _holds(holder: Callable[[], Awaitable[str | None]], ok: Callable[[str | None], bool]) -> bool:
    try:
        return ok(await holder())
    except Exception:
        return False


def _header(body: Any) -> str:
    """The message's first line, without the description (``text`` is Slack's fallback)."""
    return str(body.get("text", "") if isinstance(body, dict) else "").split(" — ")[0]


def _outbox_settled(db: Database) -> Callable[[], Awaitable[bool]]:
    async def run() -> bool:
        n = await db.fetchval("SELECT count(*) FROM opswatch.notification_outbox WHERE status <> 'delivered'")
        return int(n) == 0

    return run
