"""The webhook sink of the alert benchmark: the peer's ``webhook_sink.py`` when it exists, else
``bench.alerts --serve-sink`` (same JSONL format), and the match for opswatch's Slack messages.
"""

from __future__ import annotations

import asyncio
import json
import re
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.fleet import ROOT, ChildServer

__all__ = ["Sink", "serve_sink", "slack_match"]

SHARED_SINK = ROOT.parent / "shared" / "peers" / "webhook_sink.py"
_HEADLINE = re.compile(r"^:[a-z_]+: (CRITICAL|WARNING|INFO)(?: \(([^)]*)\))?: ")


class Sink(ChildServer):
    """The webhook sink in a child process; events are read back from its JSONL file."""

    label = "webhook sink"

    def __init__(self, port: int, out: Path, own: bool) -> None:
        self.out = out
        self._pos = 0
        self.events: list[dict[str, Any]] = []
        if own or not SHARED_SINK.exists():
            argv = [
                sys.executable,
                "-m",
                "bench.alerts",
                "--serve-sink",
                "--port",
                str(port),
                "--out",
                str(out),
            ]
            kind = "bench.alerts --serve-sink (aiohttp)"
        else:
            argv = [sys.executable, str(SHARED_SINK), "--port", str(port), "--out", str(out)]
            kind = "../shared/peers/webhook_sink.py"
        super().__init__(port, argv, kind)

    def poll(self) -> None:
        if not self.out.exists():
            return
        with self.out.open("rb") as f:
            f.seek(self._pos)
            for line in f:
                if not line.endswith(b"\n"):
                    break
                self._pos += len(line)
                self.events.append(json.loads(line))

    async def wait_for(
        self, match: Callable[[dict[str, Any]], bool], start: int, within: float
    ) -> dict[str, Any] | None:
        """The first event at index >= ``start`` that ``match`` accepts, or None after ``within`` s."""
        deadline = time.monotonic() + within
        i = start
        while True:
            self.poll()
            while i < len(self.events):
                if match(self.events[i]):
                    return self.events[i]
                i += 1
            if time.monotonic() >= deadline:
                return None
            await asyncio.sleep(0.05)


def slack_match(kind: str, rule: str, scope: str) -> Callable[[dict[str, Any]], bool]:
    """Matches opswatch's Slack message of ``kind`` (firing | resolved) naming ``rule on scope``."""
    title = re.compile(rf"\b{re.escape(rule)} on {re.escape(scope)}\b")

    def match(event: dict[str, Any]) -> bool:
        body = event.get("body")
        text = body.get("text") if isinstance(body, dict) else None
        if not isinstance(text, str) or not title.search(text):
            return False
        head = text.split(" — ", 1)[0]
        if kind == "resolved":
            return "RESOLVED:" in head
        found = _HEADLINE.match(head)
        return found is not None and found.group(2) is None  # not "(still firing)" or "(escalated ...)"

    return match


def serve_sink(port: int, out: Path) -> None:
    """Same JSONL format as webhook_sink.py: one line per POST with ``recv_mono``."""
    from aiohttp import web

    handle = out.open("a", buffering=1, encoding="utf-8")
    seq = 0

    async def post(request: web.Request) -> web.Response:
        nonlocal seq
        raw = await request.read()
        recv_ts, recv_mono = time.time(), time.monotonic()
        try:
            body: Any = json.loads(raw)
        except ValueError:
            body = raw.decode("utf-8", "replace")
        ok = isinstance(body, dict) and any(k in body for k in ("text", "blocks", "attachments", "alerts"))
        event = {"seq": seq, "recv_ts": recv_ts, "recv_mono": recv_mono, "path": request.path,
                 "kind": "slack" if ok else "unknown", "accepted": ok, "body": body}  # fmt: skip
        seq += 1
        handle.write(json.dumps(event, separators=(",", ":")) + "\n")
        return web.Response(status=200 if ok else 400, text="ok" if ok else "invalid_payload")

    async def healthz(_: web.Request) -> web.Response:
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_get("/healthz", healthz)
    app.router.add_post("/{tail:.*}", post)
    web.run_app(app, host="127.0.0.1", port=port, access_log=None, print=None)
