from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio

from core.demo.fake_backend import FakeBackend
from core.demo.scenario import Scenario
from core.demo.server import DemoError
from core.demo.slack_sink import SlackSink


class Clock:
    def __init__(self) -> None:
        self.t = 0.1

    def __call__(self) -> float:
        return self.t


@pytest_asyncio.fixture
async def backend() -> AsyncIterator[tuple[FakeBackend, Clock]]:
    clock = Clock()
    server = FakeBackend(Scenario(1, 30), clock=clock)
    await server.start()
    yield server, clock
    await server.stop()


@pytest_asyncio.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=5) as c:
        yield c


async def test_backend_serves_node_like_json(
    backend: tuple[FakeBackend, Clock], client: httpx.AsyncClient
) -> None:
    server, _clock = backend
    assert server.base_url.startswith("http://127.0.0.1:")
    health = await client.get(server.url("/test/health"))
    assert health.status_code == 200 and health.json()["status"] == "ok"
    assert health.headers["x-powered-by"] == "Express"
    for path in ("/api/v1/sales", "/api/v1/worker/steps", "/api/v1/products", "/api/v1/businesses"):
        response = await client.get(server.url(path))
        assert response.status_code == 200 and response.json()["success"] is True, path
    assert (await client.get(server.url("/api/v1/auth/me"))).status_code == 401
    me = await client.get(server.url("/api/v1/auth/me"), headers={"Authorization": "Bearer t0k3n"})
    assert me.status_code == 200
    login = await client.post(server.url("/api/v1/auth/login"), json={"email": "a@b.c", "password": "pw"})
    assert login.status_code == 200 and login.json()["data"]["user"]["email"] == "a@b.c"
    assert (await client.post(server.url("/api/v1/auth/login"), json={})).status_code == 400
    missing = await client.get(server.url("/nope"))
    assert missing.status_code == 404 and missing.json()["error"] == "Cannot GET /nope"


async def test_backend_follows_the_scenario(
    backend: tuple[FakeBackend, Clock], client: httpx.AsyncClient
) -> None:
    server, clock = backend
    clock.t = 5.0  # slow sales, worker steps down, products erroring

    async def timed_sales() -> tuple[int, float]:
        start = time.monotonic()
        response = await client.get(server.url("/api/v1/sales"))
        return response.status_code, time.monotonic() - start

    async def outage() -> list[object]:
        results: list[object] = []
        for _ in range(12):
            try:
                results.append((await client.get(server.url("/api/v1/worker/steps"))).status_code)
            except httpx.TransportError:
                results.append("dropped")
        return results

    slow, down = await asyncio.gather(timed_sales(), outage())
    assert slow[0] == 200 and slow[1] >= 2.2  # really slow, in real time
    assert 503 in down and set(down) <= {503, "dropped"}
    products = [(await client.get(server.url("/api/v1/products"))).status_code for _ in range(26)]
    assert products.count(500) == 2  # every 13th request
    clock.t = 20.0
    assert (await client.get(server.url("/api/v1/worker/steps"))).status_code == 200
    assert server.stats.requests["/api/v1/worker/steps"] == 13


async def test_replay_is_idempotent(backend: tuple[FakeBackend, Clock], client: httpx.AsyncClient) -> None:
    server, _clock = backend
    seen: list[dict[str, Any]] = []

    async def hook(payload: dict[str, Any]) -> None:
        seen.append(payload)

    server.on_replay = hook
    payload = {"messageId": 41, "businessId": 1, "to": "34600000000"}
    assert (await client.post(server.replay_url, json=payload)).status_code == 400  # no key
    server.fail_replays = 1
    assert (
        await client.post(server.replay_url, json=payload, headers={"Idempotency-Key": "dlq-1-1"})
    ).status_code == 503
    first = await client.post(server.replay_url, json=payload, headers={"Idempotency-Key": "dlq-1-1"})
    again = await client.post(server.replay_url, json=payload, headers={"Idempotency-Key": "dlq-1-1"})
    assert first.status_code == 202 and first.json()["messageId"] == 41
    assert again.status_code == 200 and again.headers["idempotent-replayed"] == "true"
    assert again.json() == first.json()
    assert seen == [payload]
    assert [(c.status, c.duplicate) for c in server.replays] == [(503, False), (202, False), (200, True)]
    bad = await client.post(server.replay_url, content=b"[1,", headers={"Idempotency-Key": "x"})
    assert bad.status_code == 400


async def test_busy_port_names_the_port() -> None:
    first = FakeBackend(Scenario(1, 30))
    await first.start()
    try:
        with pytest.raises(DemoError, match=rf"port {first.port} on 127.0.0.1 is already in use"):
            await FakeBackend(Scenario(1, 30), port=first.port).start()
    finally:
        await first.stop()
    await first.stop()  # twice is fine


async def test_slack_sink_records_posts(tmp_path: Path, client: httpx.AsyncClient) -> None:
    jsonl = tmp_path / "sink.jsonl"
    sink = SlackSink(max_messages=3, jsonl=jsonl)
    await sink.start()
    try:
        assert sink.url("critical") == f"{sink.base_url}/slack/critical"
        blocks = [{"type": "section", "text": {"type": "mrkdwn", "text": "*api-down* worker-steps"}}]
        response = await client.post(sink.url("critical"), json={"text": "FIRING api-down", "blocks": blocks})
        assert response.status_code == 200 and response.text == "ok"
        assert (await client.post(sink.url("warning"), content=b"not json")).status_code == 400
        assert (await client.post(sink.url("warning"), json={"username": "x"})).text == "no_text"
        for i in range(4):
            await client.post(sink.url("/hooks/other"), json={"text": f"m{i}"})
        messages = sink.received()
        assert [m.text for m in messages] == ["m1", "m2", "m3"]  # bounded
        assert sink.total == 5
        lines = [json.loads(line) for line in jsonl.read_text().splitlines()]
        assert lines[0]["path"] == "/slack/critical" and lines[0]["body"]["blocks"] == blocks
        assert len(lines) == 5
        sink.clear()
        waiter = asyncio.create_task(sink.wait_for(lambda ms: any(m.route == "critical" for m in ms), 3))
        await client.post(sink.url("critical"), json={"text": "RESOLVED api-down"})
        assert await waiter
        assert sink.received()[0].blocks == ()
        assert not await sink.wait_for(lambda ms: len(ms) > 5, 0.1)
        listing = (await client.get(sink.base_url + "/")).json()
        assert listing["total"] == 6
    finally:
        await sink.stop()
