"""Real HTTP servers on 127.0.0.1 for tests: a controllable endpoint fleet and a webhook sink."""

from __future__ import annotations

import asyncio
import json
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from tests.waiting import arrivals


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
        self.started: list[Received] = []  # as each request arrives, before any scripted delay
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
        self.started.append(item)
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
        return await arrivals(self._arrived, self.delivered if delivered else self.received, count, within)

    async def __aenter__(self) -> WebhookSink:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()


# Block Kit limits (https://api.slack.com/reference/block-kit/blocks), enforced by BlockKitSink.
SLACK_MAX_BLOCKS = 50
SLACK_HEADER_CHARS = 150
SLACK_SECTION_CHARS = 3000
SLACK_FIELDS = 10
SLACK_FIELD_CHARS = 2000
SLACK_CONTEXT_ELEMENTS = 10
SLACK_CONTEXT_CHARS = 3000
SLACK_TEXT_CHARS = 40_000


def _text_object(obj: Any, limit: int, types: tuple[str, ...] = ("plain_text", "mrkdwn")) -> bool:
    if not isinstance(obj, dict) or obj.get("type") not in types:
        return False
    text = obj.get("text")
    return isinstance(text, str) and 0 < len(text) <= limit


def block_kit_problem(block: Any) -> str | None:
    """Why Slack would reject ``block`` (None when it is valid) for the block types opswatch sends."""
    if not isinstance(block, dict):
        return "block is not an object"
    kind = block.get("type")
    if kind == "header":
        return None if _text_object(block.get("text"), SLACK_HEADER_CHARS, ("plain_text",)) else "header text"
    if kind == "section":
        text, fields = block.get("text"), block.get("fields")
        if text is None and fields is None:
            return "section needs text or fields"
        if text is not None and not _text_object(text, SLACK_SECTION_CHARS):
            return "section text"
        if fields is not None:
            if not isinstance(fields, list) or not 0 < len(fields) <= SLACK_FIELDS:
                return "section fields count"
            if not all(_text_object(f, SLACK_FIELD_CHARS) for f in fields):
                return "section field text"
        return None
    if kind == "context":
        elements = block.get("elements")
        if not isinstance(elements, list) or not 0 < len(elements) <= SLACK_CONTEXT_ELEMENTS:
            return "context elements count"
        ok = all(_text_object(e, SLACK_CONTEXT_CHARS) for e in elements)
        return None if ok else "context element text"
    if kind == "divider":
        return None
    return f"unknown block type {kind!r}"


class BlockKitSink(WebhookSink):
    """A Slack incoming webhook: checks Block Kit limits and answers errors the way Slack does.

    ``400 invalid_payload`` (not a JSON object), ``400 no_text`` (neither text nor blocks),
    ``400 invalid_blocks_format`` (blocks not a list), ``400 invalid_blocks`` (a block breaks a
    limit, more than 50 blocks, or ``reject_blocks`` is set: Slack refuses blocks for reasons of
    its own too), ``400 msg_too_long`` (text over 40,000 characters). ``problems`` records why.
    """

    def __init__(self) -> None:
        super().__init__()
        self.reject_blocks: str | None = None  # "invalid_blocks" / "invalid_blocks_format"
        self.problems: list[str] = []

    def verdict(self, body: Any) -> str | None:
        if not isinstance(body, dict):
            return "invalid_payload"
        text, blocks = body.get("text"), body.get("blocks")
        if not text and not blocks:
            return "no_text"
        if text is not None and (not isinstance(text, str) or len(text) > SLACK_TEXT_CHARS):
            return "msg_too_long"
        if blocks is None:
            return None
        if not isinstance(blocks, list):
            return "invalid_blocks_format"
        if self.reject_blocks:
            return self.reject_blocks
        if len(blocks) > SLACK_MAX_BLOCKS:
            self.problems.append(f"{len(blocks)} blocks")
            return "invalid_blocks"
        for block in blocks:
            problem = block_kit_problem(block)
            if problem:
                self.problems.append(problem)
                return "invalid_blocks"
        return None

    async def _handle(self, request: web.Request) -> web.Response:
        raw = await request.read()
        try:
            body: Any = json.loads(raw)
        except ValueError:
            body = None
        error = self.verdict(body)
        item = Received(request.path, body, dict(request.headers), time.monotonic())
        async with self._arrived:
            self.received.append(item)
            if error is None:
                self.delivered.append(item)
            self._arrived.notify_all()
        if error is not None:
            return web.Response(status=400, text=error)
        return web.Response(status=200, text="ok")

    async def __aenter__(self) -> BlockKitSink:
        await self.start()
        return self
