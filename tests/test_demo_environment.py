from __future__ import annotations

import json
import socket
from pathlib import Path

import asyncpg
import httpx
import pytest
import yaml

from core.config import Config, loads_config
from core.demo.environment import MARKER, DemoEnvironment
from core.demo.server import DemoError


async def test_start_stop_and_config(tmp_path: Path) -> None:
    data_dir = tmp_path / "demo"
    messages: list[str] = []
    env = DemoEnvironment(data_dir, seed=1, speed=30, progress=messages.append)
    Config.model_validate(env.config_dict())  # valid before start too (placeholder ports)
    assert "ports are placeholders" in env.print_config()
    await env.start()
    try:
        assert (data_dir / MARKER).exists() and env.started
        assert any("fake POS backend" in m for m in messages)
        config = env.config()
        assert config.database.dsn == env.dsn
        urls = {e.name: e.url for e in config.endpoints}
        assert urls["health"] == env.backend.url("/test/health")
        assert urls["sales"].endswith("/api/v1/sales") and urls["worker-steps"].endswith(
            "/api/v1/worker/steps"
        )
        rules = {r.name: r for r in config.alerts.rules}
        assert rules["api-down"].critical == 10  # 5 minutes at 30x
        assert rules["slow-response"].warning == 2000 and rules["error-rate"].critical == 10
        assert config.probes.interval == 1 and config.triage.redrive.mode == "sql"
        assert env.sink is not None
        assert config.notifications.slack.webhooks.critical == env.sink.url("critical")
        assert config.notifications.slack.webhooks.warning == env.sink.url("warning")
        assert config.triage.redrive.replay_url == env.backend.replay_url

        printed = env.print_config()
        assert env.sink.url("critical") not in printed and "***" not in printed
        assert "Bearer demo-session-token" not in printed
        reloaded = loads_config(printed, "printed", env=env.secret_env())  # secrets are ${VAR} references
        assert reloaded.notifications.slack.webhooks.critical == env.sink.url("critical")
        assert [e.name for e in reloaded.endpoints] == [e.name for e in config.endpoints]
        assert yaml.safe_load(printed)["alerts"]["rules"][0]["critical"] == 10

        async with httpx.AsyncClient(timeout=5) as client:
            assert (await client.get(urls["health"])).json()["status"] == "ok"
            await client.post(env.sink.url("critical"), json={"text": "FIRING api-down"})
        assert [m.text for m in env.sink.received()] == ["FIRING api-down"]
        jsonl = data_dir / "slack-sink.jsonl"
        assert json.loads(jsonl.read_text())["body"]["text"] == "FIRING api-down"

        db = await asyncpg.connect(env.dsn)
        try:
            assert await db.fetchval("SELECT count(*) FROM businesses") == 8
            assert await db.fetchval("SELECT count(*) FROM dead_letter_messages") >= 27
            assert await db.fetchval("SELECT count(*) FROM opswatch.schema_migrations") >= 1
        finally:
            await db.close()

        with pytest.raises(DemoError, match="in use by another opswatch demo"):
            await DemoEnvironment(data_dir).start()
        assert env.backend.base_url in "\n".join(env.summary())
    finally:
        await env.stop()
    await env.stop()
    assert not env.postgres.running and not env.backend.running

    (data_dir / "leftover.txt").write_text("x")
    again = DemoEnvironment(
        data_dir, fresh=True, slack_webhook="https://hooks.slack.com/services/T0/B0/xyzzy42"
    )
    await again.start()
    try:
        assert not (data_dir / "leftover.txt").exists()
        assert again.sink is None
        config = again.config()
        assert config.notifications.slack.webhooks.for_severity("critical") == again.slack_webhook
        assert "xyzzy42" not in again.print_config()
        assert await _count(again.dsn, "businesses") == 8  # reference data re-seeded after the wipe
    finally:
        await again.stop()


async def _count(dsn: str, table: str) -> int:
    db = await asyncpg.connect(dsn)
    try:
        return int(await db.fetchval(f"SELECT count(*) FROM {table}"))
    finally:
        await db.close()


async def test_unusable_data_dir_is_one_clear_line(tmp_path: Path) -> None:
    a_file = tmp_path / "file"
    a_file.write_text("x")
    with pytest.raises(DemoError, match=r"data directory .*file is a file, not a directory \(choose another"):
        await DemoEnvironment(a_file).start()
    foreign = tmp_path / "photos"
    foreign.mkdir()
    (foreign / "holiday.jpg").write_text("x")
    with pytest.raises(DemoError, match="not an opswatch demo directory") as info:
        await DemoEnvironment(foreign, fresh=True).start()
    assert "\n" not in str(info.value)
    assert (foreign / "holiday.jpg").exists()  # --fresh never wipes a directory that is not ours
    with pytest.raises(DemoError, match="speed"):
        DemoEnvironment(tmp_path / "x", speed=0)


async def test_busy_port_is_named_and_partial_start_is_undone(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        with pytest.raises(
            DemoError, match=rf"port {port} on 127.0.0.1 for the demo PostgreSQL is already in use"
        ):
            await DemoEnvironment(tmp_path / "a", pg_port=port).start()
        env = DemoEnvironment(tmp_path / "b", backend_port=port)
        with pytest.raises(DemoError, match=rf"port {port} on 127.0.0.1 is already in use .*demo backend"):
            await env.start()
        assert not env.postgres.running  # what had started was stopped again
        retry = DemoEnvironment(tmp_path / "b")
        await retry.start()  # and the directory lock was released
        await retry.stop()
