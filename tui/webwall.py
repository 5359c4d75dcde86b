"""The read-only wall console in a browser: textual-serve behind a token.

Every browser session gets its own ``opswatch --wall --read-only --config F`` process (fixed
at start-up; nothing in a request can change it). A request needs the token as ``?token=``,
``Authorization: Bearer``, ``X-Opswatch-Token`` or the session cookie the page sets when it
was loaded with a valid token (that cookie is what authorises the page's own assets and its
websocket, since textual.js cannot add headers to them). The cookie holds an HMAC of the token,
never the token. Websocket upgrades from another origin are refused, with or without auth.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import re
import secrets
import shlex
import signal
import sys
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import aiohttp_jinja2
import jinja2
from aiohttp import WSCloseCode, web
from loguru import logger
from textual_serve.app_service import AppService
from textual_serve.server import Server, to_int

TOKEN_ENV = "OPSWATCH_WALL_TOKEN"
COOKIE = "opswatch_wall"
MIN_TOKEN_LENGTH = 16
_TEMPLATE = "app_index.html"
_EXTERNAL_FONTS = re.compile(r"<link[^>]*fonts\.googleapis\.com[^>]*>\s*", re.IGNORECASE | re.DOTALL)
_SECURITY_HEADERS = {
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "no-store",
}

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def generate_token() -> str:
    return secrets.token_urlsafe(24)


def check_token(token: str) -> str:
    token = token.strip()
    if len(token) < MIN_TOKEN_LENGTH:
        raise ValueError(f"the wall token must be at least {MIN_TOKEN_LENGTH} characters")
    if not token.isascii() or not token.isprintable() or " " in token:
        raise ValueError("the wall token must be printable ASCII without spaces")
    return token


def resolve_token(flag: str | None, environ: Mapping[str, str], *, no_auth: bool) -> tuple[str | None, bool]:
    """(token, generated): --token, else $OPSWATCH_WALL_TOKEN, else a new one; (None, False) for --no-auth.

    ValueError for a weak token or for --no-auth together with a token.
    """
    from_env = environ.get(TOKEN_ENV, "").strip()
    if no_auth:
        if flag:
            raise ValueError("--no-auth and --token contradict each other")
        return None, False
    if flag:
        return check_token(flag), False
    if from_env:
        return check_token(from_env), False
    return generate_token(), True


def wall_command(config_path: Path, *, theme: str | None = None, stderr_log: Path | None = None) -> str:
    """The shell command textual-serve runs per session; only ever ``--wall --read-only``.

    ``stderr_log`` keeps the session's stderr off this process's stdout (textual-serve copies it
    there when a session ends), which matters when a console shares the terminal.
    """
    argv = ["env", "-u", TOKEN_ENV, sys.executable, "-m", "cli.main", "--wall", "--read-only",
            "--config", str(config_path.resolve())]  # fmt: skip
    if theme:
        argv += ["--theme", theme]
    command = "exec " + shlex.join(argv)
    if stderr_log is not None:
        command += " 2>>" + shlex.quote(str(stderr_log.resolve()))
    return command


def _index_template(templates: Path) -> str:
    """textual-serve's page without the Google Fonts link: a wall screen loads nothing from outside."""
    return _EXTERNAL_FONTS.sub("", (templates / _TEMPLATE).read_text(encoding="utf-8"))


class WallServer(Server):
    """textual-serve's Server with token auth, an origin check, a session cap, in-loop start/stop."""

    def __init__(
        self,
        command: str,
        *,
        host: str = "127.0.0.1",
        port: int = 8080,
        token: str | None,
        title: str = "opswatch wall",
        max_sessions: int = 8,
    ) -> None:
        super().__init__(command, host=host, port=port, title=title)
        self.token = token
        self.max_sessions = max_sessions
        self.sessions_started = 0
        self.active_sessions = 0
        self._cookie = (
            hmac.new(token.encode(), b"opswatch-wall-session", hashlib.sha256).hexdigest() if token else ""
        )
        self._sockets: set[web.WebSocketResponse] = set()
        self._runner: web.AppRunner | None = None

    # -- app -----------------------------------------------------------------------------------

    async def _make_app(self) -> web.Application:
        app = web.Application(middlewares=[self._auth])
        page = _index_template(Path(self.templates_path))
        aiohttp_jinja2.setup(app, loader=jinja2.DictLoader({_TEMPLATE: page}))
        app.add_routes([
            web.get("/", self.handle_index, name="index"),
            web.get("/ws", self.handle_websocket, name="websocket"),
            web.static("/static", self.statics_path, name="static"),
        ])  # fmt: skip
        app.on_response_prepare.append(self._security_headers)
        app.on_shutdown.append(self.on_shutdown)
        return app

    async def start(self) -> int:
        """Bind and serve inside the running loop; returns the bound port. OSError if taken."""
        runner = web.AppRunner(await self._make_app(), access_log=None, handle_signals=False,
                               shutdown_timeout=8.0)  # fmt: skip
        await runner.setup()
        try:
            await web.TCPSite(runner, self.host, self.port).start()
        except BaseException:
            await runner.cleanup()
            raise
        self._runner = runner
        for address in runner.addresses:
            if isinstance(address, tuple) and len(address) >= 2:
                self.port = int(address[1])
                break
        logger.bind(host=self.host, port=self.port, auth=self.token is not None).info(
            "serving the wall console on {}:{}", self.host, self.port
        )
        return self.port

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/"

    async def on_shutdown(self, app: web.Application) -> None:
        for ws in list(self._sockets):
            await ws.close(code=WSCloseCode.GOING_AWAY, message=b"server shutdown")

    # -- auth ----------------------------------------------------------------------------------

    def _credentials(self, request: web.Request) -> list[tuple[str, str]]:
        """Every (how, value) the request offers: a proxy's own Authorization header must not hide ?token=."""
        offered: list[tuple[str, str]] = []
        auth = request.headers.get("Authorization", "")
        if auth[:7].lower() == "bearer ":
            offered.append(("token", auth[7:].strip()))
        if header := request.headers.get("X-Opswatch-Token"):
            offered.append(("token", header.strip()))
        if "token" in request.query:
            offered.append(("token", request.query["token"]))
        if cookie := request.cookies.get(COOKIE):
            offered.append(("cookie", cookie))
        return offered

    def authorised(self, request: web.Request) -> str | None:
        """ "token", "cookie" or "open" (--no-auth) when the request may pass, else None."""
        if self.token is None:
            return "open"
        for how, value in self._credentials(request):
            expected = self.token if how == "token" else self._cookie
            if hmac.compare_digest(value.encode(), expected.encode()):
                return how
        return None

    @web.middleware
    async def _auth(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        how = self.authorised(request)
        if how is None:
            logger.bind(path=request.path, peer=request.remote).warning("wall request refused: no token")
            return web.Response(
                status=401,
                text="opswatch wall: a valid token is required (?token= or Authorization: Bearer)\n",
                headers={"WWW-Authenticate": 'Bearer realm="opswatch wall"'},
            )
        request["opswatch_auth"] = how
        return await handler(request)

    async def _security_headers(self, request: web.Request, response: web.StreamResponse) -> None:
        if response.status != 101:
            response.headers.update(_SECURITY_HEADERS)

    def _same_origin(self, request: web.Request) -> bool:
        """Browsers always send Origin on a websocket and a page cannot forge it (or X-Forwarded-Host)."""
        origin = request.headers.get("Origin")
        if origin is None:  # not a browser
            return True
        hosts = {request.host.lower(), request.headers.get("X-Forwarded-Host", "").lower()}
        return urlsplit(origin).netloc.lower() in hosts - {""}

    # -- handlers ------------------------------------------------------------------------------

    async def handle_index(self, request: web.Request) -> web.Response:
        scheme = "https" if request.secure or request.headers.get("X-Forwarded-Proto") == "https" else "http"
        origin = f"{scheme}://{request.host}"
        ws_origin = ("wss" if scheme == "https" else "ws") + f"://{request.host}"
        context: dict[str, Any] = {
            "font_size": max(6, min(64, to_int(request.query.get("fontsize", "16"), 16))),
            "app_websocket_url": ws_origin + str(request.app.router["websocket"].url_for()),
            "config": {"static": {"url": origin + "/static/"}},
            "application": {"name": self.title},
        }
        response = aiohttp_jinja2.render_template(_TEMPLATE, request, context)
        if request.get("opswatch_auth") == "token":
            response.set_cookie(COOKIE, self._cookie, httponly=True, samesite="Strict", path="/",
                                secure=scheme == "https")  # fmt: skip
        return response

    async def handle_websocket(self, request: web.Request) -> web.WebSocketResponse:
        if not self._same_origin(request):
            raise web.HTTPForbidden(text="opswatch wall: cross-origin websocket refused\n")
        if self.active_sessions >= self.max_sessions:
            raise web.HTTPServiceUnavailable(text="opswatch wall: too many sessions\n")
        websocket = web.WebSocketResponse(heartbeat=15)
        width = max(20, min(500, to_int(request.query.get("width", "80"), 80)))
        height = max(10, min(300, to_int(request.query.get("height", "24"), 24)))
        self.active_sessions += 1
        self.sessions_started += 1
        session_log = logger.bind(peer=request.remote, session=self.sessions_started)
        service: AppService | None = None
        try:
            await websocket.prepare(request)
            self._sockets.add(websocket)
            service = AppService(
                self.command,
                write_bytes=websocket.send_bytes,
                write_str=websocket.send_str,
                close=_closer(websocket),
                download_manager=self.download_manager,
            )
            await service.start(width, height)
            session_log.bind(width=width, height=height, active=self.active_sessions).info(
                "wall session started"
            )
            await self._process_messages(websocket, service)
        except asyncio.CancelledError:
            await websocket.close()
        except Exception as exc:
            session_log.opt(exception=exc).error("wall session failed")
        finally:
            if service is not None:
                await _end(service)
            self._sockets.discard(websocket)
            self.active_sessions -= 1
            session_log.bind(active=self.active_sessions).info("wall session ended")
        return websocket


async def _end(service: AppService) -> None:
    """Ask the session's process to quit; kill it if it does not within a few seconds."""
    try:
        await asyncio.wait_for(service.stop(), timeout=5.0)
    except (TimeoutError, Exception) as exc:
        logger.opt(exception=exc).warning("wall session did not quit cleanly; killing it")
        process = getattr(service, "_process", None)
        if process is not None and process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                process.kill()


async def serve_until_stopped(server: WallServer, *, duration: float | None = None) -> None:
    """Run ``server`` until SIGINT/SIGTERM (or ``duration``); the caller has started it."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    try:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=duration)
    finally:
        await server.stop()


def _closer(websocket: web.WebSocketResponse) -> Callable[[], Awaitable[None]]:
    """textual-serve wants ``close() -> None``; aiohttp's returns whether it closed."""

    async def close() -> None:
        await websocket.close()

    return close
