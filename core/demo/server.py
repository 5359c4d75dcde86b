"""A small aiohttp server on 127.0.0.1 that the demo's fake backend and Slack sink share."""

from __future__ import annotations

import errno
import socket

from aiohttp import web

HOST = "127.0.0.1"


class DemoError(RuntimeError):
    """A demo component could not start; ``str(err)`` is one line saying which part and what to do."""


class LocalServer:
    """Owns an aiohttp runner bound to one 127.0.0.1 port (0: a free one)."""

    label = "server"

    def __init__(self, host: str = HOST, port: int = 0) -> None:
        self.host = host
        self.port = port
        self.app = web.Application()
        self._runner: web.AppRunner | None = None

    @property
    def base_url(self) -> str:
        if self._runner is None:
            raise DemoError(f"the demo {self.label} is not running")
        return f"http://{self.host}:{self.port}"

    @property
    def running(self) -> bool:
        return self._runner is not None

    async def start(self) -> str:
        """Bind and serve; returns the base URL. A busy port raises :class:`DemoError` naming it."""
        if self._runner is not None:
            return self.base_url
        runner = web.AppRunner(self.app, access_log=None, shutdown_timeout=0.5, handle_signals=False)
        await runner.setup()
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((self.host, self.port))
        except OSError as exc:
            sock.close()
            await runner.cleanup()
            if exc.errno == errno.EADDRINUSE:
                raise DemoError(
                    f"port {self.port} on {self.host} is already in use by another program "
                    f"(stop it, or choose another port for the demo {self.label}; 0 picks a free one)"
                ) from None
            raise DemoError(
                f"cannot listen on {self.host}:{self.port} for the demo {self.label}: {exc.strerror or exc}"
            ) from None
        site = web.SockSite(runner, sock)
        await site.start()
        self.port = int(sock.getsockname()[1])
        self._runner = runner
        return self.base_url

    async def stop(self) -> None:
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()
