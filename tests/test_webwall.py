"""`opswatch serve --wall` end to end: token auth, the served page, and a real browser session.

One `opswatch serve` subprocess per module runs against real PostgreSQL; the browser test drives
Debian's headless Chromium over the DevTools protocol (installed by the set-up when missing),
waits until the wall console's output reaches the page and checks the DOM and the byte stream.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
import re
import socket
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import pytest_asyncio
import yaml

from tests.debian import debian_tool
from tests.servers import FleetServer
from tui.webwall import COOKIE, TOKEN_ENV

ROOT = Path(__file__).resolve().parent.parent
TOKEN = "wall-test-token-0123456789"
CHROMIUM_FLAGS = (
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--disable-dev-shm-usage", "--window-size=1280,800",
    "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1",
)  # fmt: skip


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Served:
    base: str
    port: int
    proc: asyncio.subprocess.Process
    stderr: Path
    stdout: list[str]

    def log(self) -> str:
        return self.stderr.read_text(errors="replace")


async def _start_serve(config: Path, stderr: Path, *extra: str, env: dict[str, str] | None = None) -> Served:
    port = _free_port()
    with stderr.open("wb") as err:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "cli.main", "serve", "--wall", "--host", "127.0.0.1", "--port", str(port),
            "--config", str(config), *extra,
            stdout=asyncio.subprocess.PIPE, stderr=err, cwd=ROOT, env=env or dict(os.environ),
        )  # fmt: skip
    assert proc.stdout is not None
    lines: list[str] = []
    try:
        while not any("wall console on" in line for line in lines):
            raw = await asyncio.wait_for(proc.stdout.readline(), 20)
            if not raw:
                raise AssertionError("serve exited early:\n" + stderr.read_text(errors="replace")[-3000:])
            lines.append(raw.decode())
        for _ in range(3):  # the rest of the announcement, if any
            with contextlib.suppress(TimeoutError):
                raw = await asyncio.wait_for(proc.stdout.readline(), 0.3)
                if raw:
                    lines.append(raw.decode())
    except BaseException:
        proc.kill()
        await proc.wait()
        raise
    return Served(f"http://127.0.0.1:{port}", port, proc, stderr, lines)


async def _stop(served: Served) -> None:
    if served.proc.returncode is None:
        served.proc.terminate()
        try:
            await asyncio.wait_for(served.proc.wait(), 15)
        except TimeoutError:
            served.proc.kill()
            await served.proc.wait()


def _write_config(path: Path, dsn: str, fleet: FleetServer) -> Path:
    path.write_text(yaml.safe_dump({
        "database": {"dsn": dsn, "pool_min": 1, "pool_max": 3},
        "endpoints": [{"name": "checkout", "url": fleet.url("checkout"), "interval": 1.0}],
        "logging": {"directory": str(path.parent / "logs")},
        "ui": {"wall": {"cycle_interval": 60}},
    }))  # fmt: skip
    return path


@pytest_asyncio.fixture(scope="module")
async def fleet() -> AsyncIterator[FleetServer]:
    async with FleetServer() as server:
        yield server


@pytest_asyncio.fixture(scope="module")
async def config_path(db_dsn: str, fleet: FleetServer, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _write_config(tmp_path_factory.mktemp("webwall") / "opswatch.yaml", db_dsn, fleet)


@pytest_asyncio.fixture(scope="module")
async def wall(config_path: Path) -> AsyncIterator[Served]:
    env = {**os.environ, TOKEN_ENV: TOKEN}
    served = await _start_serve(config_path, config_path.parent / "serve.stderr", env=env)
    yield served
    await _stop(served)


async def _get(url: str, **kw: Any) -> tuple[int, dict[str, str], str]:
    async with aiohttp.ClientSession() as session, session.get(url, allow_redirects=False, **kw) as r:
        return r.status, dict(r.headers), await r.text()


WS_HEADERS = {
    "Connection": "Upgrade",
    "Upgrade": "websocket",
    "Sec-WebSocket-Version": "13",
    "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==",
}


async def test_requests_without_a_valid_token_are_refused(wall: Served) -> None:
    for path, headers in [
        ("/", {}),
        ("/?token=wrong-token-0123456789", {}),
        ("/", {"Authorization": "Bearer wrong-token-0123456789"}),
        ("/", {"X-Opswatch-Token": TOKEN[:-1]}),
        ("/", {"Cookie": f"{COOKIE}={TOKEN}"}),  # the cookie holds an HMAC, never the token itself
        ("/static/js/textual.js", {}),
        ("/ws", WS_HEADERS),
        ("/ws?width=80&height=24", {**WS_HEADERS, "Origin": wall.base}),
        ("/download/anything", {}),
    ]:
        status, got, body = await _get(wall.base + path, headers=headers)
        assert status == 401, (path, headers, status, body)
        assert got["WWW-Authenticate"].startswith("Bearer")
        assert "textual-terminal" not in body
    assert "wall request refused" in wall.log()
    assert TOKEN not in wall.log()


async def test_a_valid_token_serves_the_page(wall: Served) -> None:
    status, headers, body = await _get(f"{wall.base}/?token={TOKEN}")
    assert status == 200, body
    assert 'class="textual-terminal"' in body
    assert f'data-session-websocket-url="ws://127.0.0.1:{wall.port}/ws"' in body
    assert "googleapis" not in body  # the wall loads nothing from outside
    cookie = headers["Set-Cookie"]
    assert cookie.startswith(f"{COOKIE}=") and "HttpOnly" in cookie and "SameSite=Strict" in cookie
    value = cookie.split(";")[0].split("=", 1)[1]
    assert TOKEN not in value
    assert headers["Referrer-Policy"] == "no-referrer" and headers["X-Frame-Options"] == "DENY"

    for extra in ({"Authorization": f"Bearer {TOKEN}"}, {"X-Opswatch-Token": TOKEN}):
        status, _, body = await _get(wall.base + "/", headers=extra)
        assert status == 200 and "textual-terminal" in body
    proxied = {"Authorization": "Bearer a-proxy-s-own-credential"}  # must not hide ?token=
    assert (await _get(f"{wall.base}/?token={TOKEN}&fontsize=20", headers=proxied))[0] == 200
    asset = wall.base + "/static/js/textual.js"
    status, _, script = await _get(asset, headers={"Cookie": f"{COOKIE}={value}"})
    assert status == 200 and "WebSocket" in script
    status, _, _ = await _get(wall.base + "/download/x", headers={"X-Opswatch-Token": TOKEN})
    assert status == 404  # no file downloads from the wall

    cross = {**WS_HEADERS, "Origin": "http://evil.example", "Cookie": f"{COOKIE}={value}"}
    status, _, _ = await _get(wall.base + "/ws?width=80&height=24", headers=cross)
    assert status == 403  # cross-site websocket hijacking


async def test_a_generated_token_is_printed_once_and_never_logged(config_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != TOKEN_ENV}
    served = await _start_serve(config_path, config_path.parent / "generated.stderr", env=env)
    try:
        printed = "".join(served.stdout)
        match = re.search(r"\?token=([A-Za-z0-9_-]{20,})", printed)
        assert match, printed
        token = match.group(1)
        assert printed.count(token) == 1
        assert (await _get(f"{served.base}/?token={token}"))[0] == 200
        assert (await _get(f"{served.base}/?token={TOKEN}"))[0] == 401
    finally:
        await _stop(served)
    assert served.proc.returncode == 0
    assert token not in served.log()


async def test_no_auth_must_be_explicit_and_bad_flags_fail_cleanly(config_path: Path, tmp_path: Path) -> None:
    served = await _start_serve(config_path, tmp_path / "open.stderr", "--no-auth")
    try:
        assert "--no-auth" in "".join(served.stdout)
        assert (await _get(served.base + "/"))[0] == 200
    finally:
        await _stop(served)

    async def fails(argv: list[str], message: str) -> None:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "cli.main", *argv, cwd=ROOT,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        out, err = await asyncio.wait_for(proc.communicate(), 30)
        assert proc.returncode == 2, (argv, out, err)
        assert message in err.decode() and "Traceback" not in err.decode(), err.decode()

    serve = ["serve", "--wall", "--config", str(config_path)]
    await asyncio.gather(
        fails(["serve", "--config", str(config_path)], "serve needs --wall"),
        fails([*serve, "--token", "short"], "at least 16 characters"),
        fails([*serve, "--no-auth", "--token", TOKEN], "contradict"),
        fails(["serve", "--wall", "--config", str(tmp_path / "missing.yaml")], "missing.yaml"),
    )


# --------------------------------------------------------------------------- the browser


async def _chromium() -> str:
    """chromium (Debian package ``chromium``), installed with apt-get when missing and root."""
    return await debian_tool("chromium", "chromium", "chromium-browser")


class DevTools:
    """The few Chrome DevTools Protocol calls the test needs, over aiohttp's websocket client."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws = ws
        self._id = 0

    async def call(self, method: str, **params: Any) -> dict[str, Any]:
        self._id += 1
        await self.ws.send_json({"id": self._id, "method": method, "params": params})
        while True:
            message = await self.ws.receive_json(timeout=15)
            if message.get("id") == self._id:
                if "error" in message:
                    raise AssertionError(f"{method}: {message['error']}")
                result: dict[str, Any] = message.get("result", {})
                return result

    async def evaluate(self, expression: str) -> Any:
        result = await self.call("Runtime.evaluate", expression=expression, returnByValue=True)
        return result["result"].get("value")


# Records what the wall streams to the page: xterm.js draws on a canvas, so the text is not in the DOM.
TAP = """
(() => {
  const Native = window.WebSocket;
  const decoder = new TextDecoder();
  window.__wall = {text: "", frames: 0};
  window.WebSocket = class extends Native {
    constructor(...args) {
      super(...args);
      this.addEventListener("message", (event) => {
        if (typeof event.data === "string") return;
        window.__wall.frames += 1;
        window.__wall.text = (window.__wall.text + decoder.decode(event.data, {stream: true})).slice(-400000);
      });
    }
  };
})();
"""

STATE = """({
  body: document.body ? document.body.className : "",
  terminal: (document.querySelector("#terminal") || {}).className || "",
  canvases: document.querySelectorAll("#terminal canvas").length,
  frames: window.__wall ? window.__wall.frames : 0,
  overview: window.__wall ? window.__wall.text.includes("Overview") : false,
  wall: window.__wall ? window.__wall.text.includes("WALL") : false,
  endpoint: window.__wall ? window.__wall.text.includes("checkout") : false,
})"""


@pytest.mark.slow
@pytest.mark.timeout(240)
async def test_the_wall_renders_in_headless_chromium(wall: Served, tmp_path: Path) -> None:
    chromium = await _chromium()
    started = time.monotonic()
    profile = tmp_path / "chromium-profile"
    browser = await asyncio.create_subprocess_exec(
        chromium, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", "--remote-debugging-port=0", "about:blank",
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    try:
        port_file = profile / "DevToolsActivePort"
        deadline = time.monotonic() + 20
        while not (port_file.exists() and port_file.read_text().strip()):
            assert browser.returncode is None, "chromium exited at start-up"
            assert time.monotonic() < deadline, "chromium never opened its DevTools port"
            await asyncio.sleep(0.1)
        devtools_port = int(port_file.read_text().split()[0])
        async with aiohttp.ClientSession() as session:
            async with session.get(f"http://127.0.0.1:{devtools_port}/json/list") as response:
                targets = await response.json(content_type=None)
            page = next(t for t in targets if t.get("type") == "page")
            async with session.ws_connect(page["webSocketDebuggerUrl"], max_msg_size=0) as ws:
                tools = DevTools(ws)
                await tools.call("Page.enable")
                await tools.call("Page.addScriptToEvaluateOnNewDocument", source=TAP)
                await tools.call("Page.navigate", url=f"{wall.base}/?token={TOKEN}")
                state: dict[str, Any] = {}
                deadline = time.monotonic() + 45
                while time.monotonic() < deadline:
                    state = await tools.evaluate(STATE) or {}
                    rendered = state.get("overview") and state.get("endpoint")
                    if "-first-byte" in state.get("body", "") and rendered:
                        break
                    assert "-closed" not in state.get("body", ""), f"the session ended: {wall.log()[-3000:]}"
                    await asyncio.sleep(0.25)
                dom = await tools.evaluate("document.documentElement.outerHTML")
                shot = await tools.call("Page.captureScreenshot", format="png")
                (tmp_path / "wall.html").write_text(dom)
                (tmp_path / "wall.png").write_bytes(base64.b64decode(shot["data"]))
                await asyncio.sleep(1.0)  # time under test: the wall keeps drawing frames
                after = await tools.evaluate(STATE) or {}
    finally:
        if browser.returncode is None:
            browser.terminate()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(browser.wait(), 10)
        if browser.returncode is None:
            browser.kill()
            await browser.wait()

    assert "-first-byte" in state["body"], (state, wall.log()[-3000:])
    assert "-connected" in state["terminal"], state
    assert state["overview"] and state["wall"], state  # the wall's overview screen reached the browser
    assert state["endpoint"], state  # with the served config's endpoint: --config went through
    assert state["canvases"] >= 1, state
    assert '<div id="terminal" class="textual-terminal -connected"' in dom
    assert "-closed" not in after["body"], after  # the session is still alive a second later
    assert after["frames"] >= state["frames"]
    log_lines = [json.loads(line) for line in wall.log().splitlines() if line.startswith("{")]
    assert any(entry["message"] == "wall session started" for entry in log_lines), wall.log()[-3000:]
    deadline = time.monotonic() + 15
    while "wall session ended" not in wall.log():  # the browser went away: its console process quits
        assert time.monotonic() < deadline, wall.log()[-3000:]
        await asyncio.sleep(0.2)
    assert time.monotonic() - started < 60


@pytest.mark.slow
async def test_the_demo_serves_its_wall_and_metrics(tmp_path: Path) -> None:
    """`opswatch demo --serve PORT --metrics-port PORT`: the demo's wall and /metrics, same rules."""
    wall_port, metrics_port = _free_port(), _free_port()
    env = {**os.environ, TOKEN_ENV: TOKEN, "XDG_DATA_HOME": str(tmp_path / "xdg")}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "cli.main", "demo", "--headless", "--duration", "60s", "--speed", "30",
        "--data-dir", str(tmp_path / "demo"), "--serve", str(wall_port), "--metrics-port", str(metrics_port),
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE, cwd=ROOT, env=env,
    )  # fmt: skip
    assert proc.stderr is not None
    lines: list[str] = []
    try:
        while not any("Prometheus metrics on" in line for line in lines):
            raw = await asyncio.wait_for(proc.stderr.readline(), 60)
            assert raw, "demo exited early:\n" + "".join(lines)[-3000:]
            lines.append(raw.decode(errors="replace"))
        output = "".join(lines)
        assert f"wall console for browsers on http://127.0.0.1:{wall_port}/" in output
        assert TOKEN not in output  # a token from the environment is not echoed
        base = f"http://127.0.0.1:{wall_port}"
        assert (await _get(base + "/"))[0] == 401
        status, _, body = await _get(f"{base}/?token={TOKEN}")
        assert status == 200 and 'class="textual-terminal"' in body
        wall_config = tmp_path / "demo" / "wall-config.yaml"
        assert wall_config.stat().st_mode & 0o777 == 0o600
        assert "127.0.0.1" in wall_config.read_text()

        deadline = time.monotonic() + 20
        while True:
            status, _, text = await _get(f"http://127.0.0.1:{metrics_port}/metrics")
            if status == 200 and 'opswatch_endpoint_up{endpoint="health"' in text:
                break
            assert time.monotonic() < deadline, text[-2000:]
            await asyncio.sleep(0.3)
        assert "opswatch_dlq_pending" in text and "opswatch_event_loop_lag_seconds_bucket" in text
    finally:
        if proc.returncode is None:
            proc.terminate()
        rest = await asyncio.wait_for(proc.stderr.read(), 30)
        await proc.wait()
    assert proc.returncode == 0, rest.decode(errors="replace")[-3000:]
