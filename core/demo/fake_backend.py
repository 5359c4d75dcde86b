"""A fake Node.js POS backend on 127.0.0.1 whose health follows the demo :class:`Scenario`.

Serves the seed's monitored endpoints (``/test/health``, ``/api/v1/sales``,
``/api/v1/worker/steps``) and a few more with Express-like JSON bodies, plus
``POST /api/v1/replay``: the replay endpoint that opswatch's ``http`` redrive mode calls,
idempotent by ``Idempotency-Key``.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import OrderedDict, deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from core.demo import scenario as sc
from core.demo.server import HOST, LocalServer

ReplayHook = Callable[[dict[str, Any]], Awaitable[None]]
"""Called with the replayed payload (the stored ``message_data`` / ``event_data``)."""

_MAX_REPLAYS = 1000
_MAX_KEYS = 10_000
_HEADERS = {"X-Powered-By": "Express"}


@dataclass(frozen=True)
class ReplayCall:
    at: datetime
    idempotency_key: str
    payload: dict[str, Any]
    duplicate: bool
    status: int


@dataclass
class _Stats:
    requests: dict[str, int] = field(default_factory=dict)
    statuses: dict[int, int] = field(default_factory=dict)


class FakeBackend(LocalServer):
    """``await FakeBackend(scenario).start()`` -> base URL; ``await stop()``.

    ``clock`` returns real seconds since the scenario started (default: since :meth:`start`).
    """

    label = "backend"

    def __init__(
        self,
        scenario: sc.Scenario,
        host: str = HOST,
        port: int = 0,
        *,
        clock: Callable[[], float] | None = None,
        on_replay: ReplayHook | None = None,
    ) -> None:
        super().__init__(host, port)
        self.scenario = scenario
        self.on_replay = on_replay
        self.fail_replays = 0
        """The next N replay calls answer 503 (for scripted failures)."""
        self._clock = clock
        self._t0 = time.monotonic()
        self._seq: dict[str, int] = {}
        self._replays: deque[ReplayCall] = deque(maxlen=_MAX_REPLAYS)
        self._replay_results: OrderedDict[str, dict[str, Any]] = OrderedDict()
        self._replay_lock = asyncio.Lock()
        self.stats = _Stats()
        routes = [
            web.get(sc.HEALTH, self._health),
            web.get(sc.SALES, self._sales),
            web.get(sc.WORKER_STEPS, self._worker_steps),
            web.get(sc.PRODUCTS, self._products),
            web.get(sc.BUSINESSES, self._businesses),
            web.post(sc.AUTH_LOGIN, self._login),
            web.get(sc.AUTH_ME, self._me),
            web.post("/api/v1/replay", self._replay),
        ]
        self.app.add_routes(routes)
        self.app.router.add_route("*", "/{tail:.*}", self._not_found)

    async def start(self) -> str:
        url = await super().start()
        self._t0 = time.monotonic()
        return url

    def elapsed(self) -> float:
        return self._clock() if self._clock is not None else time.monotonic() - self._t0

    @property
    def replay_url(self) -> str:
        return f"{self.base_url}/api/v1/replay"

    def url(self, path: str) -> str:
        return self.base_url + (path if path.startswith("/") else "/" + path)

    @property
    def replays(self) -> list[ReplayCall]:
        return list(self._replays)

    # -- scenario-driven answers ---------------------------------------------------------------

    async def _scripted(self, request: web.Request, ok: Callable[[], dict[str, Any]]) -> web.StreamResponse:
        path = request.path.rstrip("/") or "/"
        seq = self._seq.get(path, 0)
        self._seq[path] = seq + 1
        self.stats.requests[path] = self.stats.requests.get(path, 0) + 1
        status, delay = self.scenario.behaviour(path, self.elapsed(), seq)
        if delay > 0:
            await asyncio.sleep(delay)
        self.stats.statuses[status] = self.stats.statuses.get(status, 0) + 1
        if status == sc.DROP:
            if request.transport is not None:
                request.transport.close()
            return web.Response(status=503)
        if status == 503:
            return _json(
                {
                    "success": False,
                    "error": "Service Unavailable",
                    "message": "worker queue unavailable: connect ECONNREFUSED 127.0.0.1:6379",
                },
                503,
            )
        if status >= 500:
            return _json(
                {
                    "success": False,
                    "error": "Internal server error",
                    "message": "Connection terminated unexpectedly",
                },
                status,
            )
        return _json(ok(), status)

    async def _health(self, request: web.Request) -> web.StreamResponse:
        return await self._scripted(
            request,
            lambda: {
                "status": "ok",
                "service": "pos-backend",
                "environment": "demo",
                "uptime": round(self.elapsed(), 1),
                "timestamp": _now(),
                "checks": {"database": "up", "queue": "up"},
            },
        )

    async def _sales(self, request: web.Request) -> web.StreamResponse:
        def body() -> dict[str, Any]:
            n = self.stats.requests.get(sc.SALES, 0)
            sales = [
                {
                    "id": 5000 + n * 3 + i,
                    "businessId": 1 + (n + i) % 8,
                    "total": round(4.5 + ((n + i) * 7.3) % 60, 2),
                    "currency": "EUR",
                    "paymentMethod": ("card", "cash", "card")[i],
                    "status": "completed",
                    "createdAt": _now(),
                }
                for i in range(3)
            ]
            return {
                "success": True,
                "data": sales,
                "pagination": {"page": 1, "limit": 3, "total": 5000 + n * 3},
            }

        return await self._scripted(request, body)

    async def _worker_steps(self, request: web.Request) -> web.StreamResponse:
        steps = ("validate_order", "reserve_stock", "capture_payment", "print_receipt", "send_receipt")
        return await self._scripted(
            request,
            lambda: {
                "success": True,
                "data": [
                    {"id": i + 1, "step": name, "status": "completed", "durationMs": 12 + 9 * i}
                    for i, name in enumerate(steps)
                ],
                "queue": {"waiting": 0, "active": 1, "failed": 0},
            },
        )

    async def _products(self, request: web.Request) -> web.StreamResponse:
        items = (("Flat white", 3.2), ("Sourdough loaf", 5.5), ("Oat milk 1 l", 2.4), ("Croissant", 2.1))
        return await self._scripted(
            request,
            lambda: {
                "success": True,
                "data": [
                    {"id": 100 + i, "name": name, "price": price, "stock": 20 + 7 * i}
                    for i, (name, price) in enumerate(items)
                ],
            },
        )

    async def _businesses(self, request: web.Request) -> web.StreamResponse:
        return await self._scripted(
            request,
            lambda: {
                "success": True,
                "data": [{"id": 1, "name": "Café Aurora", "plan": "pro"}],
            },
        )

    async def _login(self, request: web.Request) -> web.StreamResponse:
        try:
            creds = await request.json()
        except (json.JSONDecodeError, UnicodeDecodeError):
            creds = None
        if not isinstance(creds, dict) or not creds.get("email") or not creds.get("password"):
            return _json({"success": False, "error": "Email and password are required"}, 400)
        return await self._scripted(
            request,
            lambda: {
                "success": True,
                "data": {
                    "user": {"id": 7, "email": str(creds.get("email")), "role": "cashier"},
                    "expiresIn": 3600,
                },
            },
        )

    async def _me(self, request: web.Request) -> web.StreamResponse:
        auth = request.headers.get("Authorization", "")
        if not auth.startswith("Bearer ") or not auth[7:].strip():
            return _json({"success": False, "error": "No token provided"}, 401)
        return await self._scripted(
            request,
            lambda: {
                "success": True,
                "data": {"id": 7, "role": "cashier", "businessId": 1},
            },
        )

    async def _not_found(self, request: web.Request) -> web.StreamResponse:
        return _json({"success": False, "error": f"Cannot {request.method} {request.path}"}, 404)

    # -- replay (http redrive) ---------------------------------------------------------------

    async def _replay(self, request: web.Request) -> web.StreamResponse:
        key = request.headers.get("Idempotency-Key", "").strip()
        if not key:
            return _json({"success": False, "error": "Idempotency-Key header is required"}, 400)
        try:
            payload = await request.json()
        except (json.JSONDecodeError, UnicodeDecodeError):
            payload = None
        if not isinstance(payload, dict):
            return _json({"success": False, "error": "body must be a JSON object"}, 400)
        async with self._replay_lock:
            previous = self._replay_results.get(key)
            if previous is not None:
                self._record(key, payload, duplicate=True, status=200)
                return _json(previous, 200, {"Idempotent-Replayed": "true"})
            if self.fail_replays > 0:
                self.fail_replays -= 1
                self._record(key, payload, duplicate=False, status=503)
                return _json({"success": False, "error": "Service Unavailable"}, 503)
            if self.on_replay is not None:
                try:
                    await self.on_replay(payload)
                except Exception as exc:  # the hook is the simulated worker; report, do not crash
                    self._record(key, payload, duplicate=False, status=502)
                    return _json({"success": False, "error": f"replay failed: {type(exc).__name__}"}, 502)
            result = {
                "success": True,
                "accepted": True,
                "messageId": payload.get("messageId"),
                "receivedAt": _now(),
            }
            self._replay_results[key] = result
            while len(self._replay_results) > _MAX_KEYS:
                self._replay_results.popitem(last=False)
            self._record(key, payload, duplicate=False, status=202)
            return _json(result, 202)

    def _record(self, key: str, payload: dict[str, Any], *, duplicate: bool, status: int) -> None:
        self._replays.append(ReplayCall(datetime.now(UTC), key, payload, duplicate, status))


def _json(body: dict[str, Any], status: int, headers: dict[str, str] | None = None) -> web.Response:
    return web.json_response(body, status=status, headers={**_HEADERS, **(headers or {})})


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
