"""Real HTTP servers on 127.0.0.1 for tests: a controllable endpoint fleet and a webhook sink."""

from __future__ import annotations

import asyncio
import json
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web


@dataclass
class Behaviour:
    status: int = 200
    delay_s: float = 0.0
    body: str = '{"status":"ok"}'
    content_type: str = "application/json"


class _Server:
    def __init__(self) -> None:
        self.app = web.Application()
        self._runner: web.AppRunner | None = None
        self.port = 0

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> None:
        self._runner = web.AppRunner(self.app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        server = site._server
        assert server is not None and server.sockets  # type: ignore[attr-defined]
        self.port = server.sockets[0].getsockname()[1]  # type: ignore[attr-defined]

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None


class FleetServer(_Server):
    """Endpoints ``/ep/{name}`` whose status, delay and body a test can change at any time."""

    def __init__(self) -> None:
        super().__init__()
        self.behaviours: dict[str, Behaviour] = {}
        self.hits: dict[str, int] = {}
        self.app.router.add_route("*", "/ep/{name}", self._handle)

    def url(self, name: str) -> str:
        return f"{self.base_url}/ep/{name}"

    def set(self, name: str, **changes: Any) -> None:
        current = self.behaviours.get(name, Behaviour())
        self.behaviours[name] = Behaviour(**{**current.__dict__, **changes})

    async def _handle(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        self.hits[name] = self.hits.get(name, 0) + 1
        behaviour = self.behaviours.get(name, Behaviour())
        if behaviour.delay_s:
            await asyncio.sleep(behaviour.delay_s)
        return web.Response(status=behaviour.status, text=behaviour.body, content_type=behaviour.content_type)

    async def __aenter__(self) -> FleetServer:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()


@dataclass(frozen=True)
class Received:
    path: str
    body: Any
    headers: dict[str, str]
    at: float  # time.monotonic()


@dataclass
class ScriptedReply:
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    body: str = "ok"
    delay_s: float = 0.0


class WebhookSink(_Server):
    """Records every POST (Slack-style webhooks, replay endpoints); replies from a script.

    ``sink.script("/slack", ScriptedReply(500), ScriptedReply(429, {"Retry-After": "1"}))``
    makes the next two POSTs to /slack fail; after the script runs out it answers 200.
    Only 2xx replies are recorded in ``delivered``; every request is in ``received``.
    """

    def __init__(self) -> None:
        super().__init__()
        self.received: list[Received] = []
        self.delivered: list[Received] = []
        self._scripts: dict[str, deque[ScriptedReply]] = {}
        self._arrived = asyncio.Condition()
        self.app.router.add_post("/{path:.*}", self._handle)

    def url(self, path: str = "slack") -> str:
        return f"{self.base_url}/{path.lstrip('/')}"

    def script(self, path: str, *replies: ScriptedReply) -> None:
        self._scripts.setdefault("/" + path.lstrip("/"), deque()).extend(replies)

    async def _handle(self, request: web.Request) -> web.Response:
        raw = await request.read()
        try:
            body: Any = json.loads(raw)
        except ValueError:
            body = raw.decode(errors="replace")
        item = Received(request.path, body, dict(request.headers), time.monotonic())
        queue = self._scripts.get(request.path)
        reply = queue.popleft() if queue else ScriptedReply()
        if reply.delay_s:
            await asyncio.sleep(reply.delay_s)
        async with self._arrived:
            self.received.append(item)
            if 200 <= reply.status < 300:
                self.delivered.append(item)
            self._arrived.notify_all()
        return web.Response(status=reply.status, text=reply.body, headers=reply.headers)

    async def wait_for(self, count: int, within: float = 10.0, *, delivered: bool = True) -> list[Received]:
        """Wait until ``count`` requests (delivered ones by default) have arrived."""
        target = self.delivered if delivered else self.received

        async def _wait() -> None:
            async with self._arrived:
                await self._arrived.wait_for(lambda: len(target) >= count)

        await asyncio.wait_for(_wait(), within)
        return list(target)

    async def __aenter__(self) -> WebhookSink:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()
