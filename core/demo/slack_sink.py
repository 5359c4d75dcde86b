"""A local stand-in for Slack incoming webhooks: records every POST, answers like Slack does."""

from __future__ import annotations

import asyncio
import json
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from aiohttp import web

from core.aio import wait_event
from core.demo.server import HOST, LocalServer

_MAX_BODY = 1024 * 1024


@dataclass(frozen=True)
class SinkMessage:
    at: datetime
    path: str
    text: str
    blocks: tuple[dict[str, Any], ...]

    @property
    def route(self) -> str:
        """The last path segment: ``/slack/critical`` -> ``critical``."""
        return self.path.rstrip("/").rsplit("/", 1)[-1]


class SlackSink(LocalServer):
    """Accepts webhook POSTs at any path; ``url("critical")`` -> ``http://127.0.0.1:N/slack/critical``.

    Keeps the last ``max_messages`` in memory and, with ``jsonl``, appends each to that file.
    Bad JSON gets Slack's ``400 invalid_payload``, a message without text or blocks ``400 no_text``.
    """

    label = "Slack sink"

    def __init__(
        self, host: str = HOST, port: int = 0, *, max_messages: int = 1000, jsonl: Path | None = None
    ) -> None:
        super().__init__(host, port)
        self.jsonl = jsonl
        self._messages: deque[SinkMessage] = deque(maxlen=max_messages)
        self._arrived = asyncio.Event()
        self.total = 0
        self.app.router.add_post("/{tail:.*}", self._receive)
        self.app.router.add_get("/{tail:.*}", self._list)

    def url(self, route: str) -> str:
        path = route if route.startswith("/") else f"/slack/{route}"
        return self.base_url + path

    def received(self) -> list[SinkMessage]:
        return list(self._messages)

    def clear(self) -> None:
        self._messages.clear()

    async def wait_for(self, predicate: Callable[[list[SinkMessage]], bool], within: float) -> bool:
        """Wait until ``predicate(received())`` holds; False on timeout."""
        deadline = time.monotonic() + within
        while not predicate(self.received()):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            self._arrived.clear()
            await wait_event(self._arrived, min(remaining, 0.25))
        return True

    async def _receive(self, request: web.Request) -> web.Response:
        raw = await request.content.read(_MAX_BODY + 1)
        if len(raw) > _MAX_BODY:
            return web.Response(status=413, text="request_too_large")
        try:
            body = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError):
            return web.Response(status=400, text="invalid_payload")
        if not isinstance(body, dict):
            return web.Response(status=400, text="invalid_payload")
        text = body.get("text")
        blocks = body.get("blocks")
        if not text and not blocks:
            return web.Response(status=400, text="no_text")
        message = SinkMessage(
            at=datetime.now(UTC),
            path=request.path,
            text=text if isinstance(text, str) else "",
            blocks=tuple(b for b in blocks if isinstance(b, dict)) if isinstance(blocks, list) else (),
        )
        self._messages.append(message)
        self.total += 1
        if self.jsonl is not None:
            self._append(self.jsonl, message, body)
        self._arrived.set()
        return web.Response(status=200, text="ok")

    async def _list(self, request: web.Request) -> web.Response:
        items = [{"at": m.at.isoformat(), "path": m.path, "text": m.text} for m in self._messages]
        return web.json_response({"total": self.total, "messages": items[-100:]})

    def _append(self, path: Path, message: SinkMessage, body: dict[str, Any]) -> None:
        record = {"at": message.at.isoformat(), "path": message.path, "body": body}
        try:
            with path.open("a", encoding="utf-8") as fh:
                fh.write(json.dumps(record, ensure_ascii=False) + "\n")
        except OSError:
            self.jsonl = None  # a full or read-only disk must not break alert delivery
