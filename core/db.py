"""One asyncpg pool per process, that never raises a raw connection error at its callers.

While the server is unreachable every call fails fast with :class:`DatabaseUnavailable`
(no blocking retry loops on the caller's path); reconnection is attempted lazily, at most
once per backoff step (exponential, with jitter), by whichever call comes next.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import asyncpg

from core.redact import redact

_CONNECTION_ERRORS: tuple[type[Exception], ...] = (
    OSError,
    asyncio.TimeoutError,
    asyncpg.exceptions.PostgresConnectionError,
    asyncpg.exceptions.ConnectionDoesNotExistError,
    asyncpg.exceptions.CannotConnectNowError,
    asyncpg.exceptions.AdminShutdownError,
    asyncpg.exceptions.CrashShutdownError,
    asyncpg.exceptions.InvalidAuthorizationSpecificationError,
    asyncpg.exceptions.InvalidCatalogNameError,
    asyncpg.exceptions.TooManyConnectionsError,
    asyncpg.exceptions.ClientConfigurationError,
    asyncpg.exceptions.InterfaceError,
)


class DatabaseUnavailable(Exception):
    """The database cannot be reached right now; ``reason`` is safe to show (secrets redacted)."""

    def __init__(self, reason: str, since: datetime | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.since = since


@dataclass(frozen=True)
class DbHealth:
    up: bool
    rtt_ms: float | None
    error: str | None
    down_since: datetime | None
    checked_at: datetime


@dataclass(frozen=True)
class PoolSettings:
    min_size: int = 1
    max_size: int = 5
    statement_timeout_s: float = 5.0
    connect_timeout_s: float = 5.0
    application_name: str = "opswatch"


def describe_error(exc: BaseException) -> str:
    """A one-line, secret-free description of a connection failure."""
    if isinstance(exc, asyncio.TimeoutError):
        return "connection timed out"
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    if isinstance(exc, asyncpg.exceptions.InvalidPasswordError):
        return "authentication failed"
    if isinstance(exc, asyncpg.exceptions.InvalidCatalogNameError):
        return f"database does not exist: {exc}"
    if isinstance(exc, asyncpg.exceptions.ClientConfigurationError | ValueError):
        return f"invalid DSN: {exc}"
    text = str(exc).strip() or type(exc).__name__
    return redact(text.splitlines()[0])[:300]


class Backoff:
    """Exponential backoff with full jitter; ``ready()`` says whether another attempt is due."""

    def __init__(self, initial: float = 0.5, maximum: float = 30.0) -> None:
        self.initial = initial
        self.maximum = maximum
        self.failures = 0
        self._next_at = 0.0

    def ready(self) -> bool:
        return time.monotonic() >= self._next_at

    def failed(self) -> float:
        self.failures += 1
        ceiling = min(self.maximum, self.initial * (2 ** (self.failures - 1)))
        delay: float = ceiling / 2 + random.uniform(0, ceiling / 2)
        self._next_at = time.monotonic() + delay
        return delay

    def succeeded(self) -> None:
        self.failures = 0
        self._next_at = 0.0


class Database:
    def __init__(self, dsn: str, settings: PoolSettings | None = None) -> None:
        self.dsn = dsn
        self.settings = settings or PoolSettings()
        self._pool: asyncpg.Pool | None = None
        self._lock = asyncio.Lock()
        self._backoff = Backoff()
        self._last_error: str | None = None
        self._down_since: datetime | None = None
        self._closed = False

    # -- pool lifecycle ------------------------------------------------------------------------

    async def _create_pool(self) -> asyncpg.Pool:
        s = self.settings
        return await asyncpg.create_pool(
            self.dsn,
            min_size=min(s.min_size, s.max_size),
            max_size=s.max_size,
            timeout=s.connect_timeout_s,
            command_timeout=s.statement_timeout_s + 1.0,
            server_settings={
                "application_name": s.application_name,
                "statement_timeout": str(int(s.statement_timeout_s * 1000)),
            },
        )

    async def _ensure_pool(self) -> asyncpg.Pool:
        if self._closed:
            raise DatabaseUnavailable("database handle is closed")
        if self._pool is not None:
            return self._pool
        async with self._lock:
            if self._pool is not None:
                return self._pool
            if not self._backoff.ready():
                raise DatabaseUnavailable(self._last_error or "reconnecting", self._down_since)
            try:
                self._pool = await self._create_pool()
            except Exception as exc:  # any failure to connect (bad port, auth, DNS...) is "unavailable"
                self._mark_down(exc)
                raise DatabaseUnavailable(self._last_error or "unavailable", self._down_since) from exc
            self._mark_up()
            return self._pool

    def _mark_down(self, exc: BaseException) -> None:
        self._last_error = describe_error(exc)
        if self._down_since is None:
            self._down_since = datetime.now(UTC)
        self._backoff.failed()

    def _mark_up(self) -> None:
        self._last_error = None
        self._down_since = None
        self._backoff.succeeded()

    async def _discard_pool(self) -> None:
        pool, self._pool = self._pool, None
        if pool is not None:
            pool.terminate()

    async def close(self) -> None:
        self._closed = True
        pool, self._pool = self._pool, None
        if pool is not None:
            try:
                await asyncio.wait_for(pool.close(), timeout=5)
            except _CONNECTION_ERRORS:
                pool.terminate()

    @property
    def down_since(self) -> datetime | None:
        return self._down_since

    # -- use -----------------------------------------------------------------------------------

    @asynccontextmanager
    async def acquire(self) -> AsyncIterator[asyncpg.Connection]:
        """A pooled connection; connection failures become :class:`DatabaseUnavailable`."""
        pool = await self._ensure_pool()
        try:
            async with pool.acquire(timeout=self.settings.connect_timeout_s) as conn:
                yield conn
        except _CONNECTION_ERRORS as exc:
            if isinstance(exc, asyncpg.exceptions.InterfaceError) and not _is_connection_loss(exc):
                raise
            self._mark_down(exc)
            await self._discard_pool()
            raise DatabaseUnavailable(self._last_error or "unavailable", self._down_since) from exc

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[asyncpg.Connection]:
        async with self.acquire() as conn, conn.transaction():
            yield conn

    async def fetch(self, sql: str, *args: Any) -> list[asyncpg.Record]:
        async with self.acquire() as conn:
            rows: list[asyncpg.Record] = await conn.fetch(sql, *args)
            return rows

    async def fetchrow(self, sql: str, *args: Any) -> asyncpg.Record | None:
        async with self.acquire() as conn:
            row: asyncpg.Record | None = await conn.fetchrow(sql, *args)
            return row

    async def fetchval(self, sql: str, *args: Any) -> Any:
        async with self.acquire() as conn:
            return await conn.fetchval(sql, *args)

    async def execute(self, sql: str, *args: Any) -> str:
        async with self.acquire() as conn:
            status: str = await conn.execute(sql, *args)
            return status

    async def health(self) -> DbHealth:
        """Round-trip check; never raises."""
        now = datetime.now(UTC)
        try:
            async with self.acquire() as conn:
                started = time.perf_counter()
                await conn.fetchval("SELECT /* opswatch */ 1")
                rtt = (time.perf_counter() - started) * 1000
        except DatabaseUnavailable as exc:
            return DbHealth(False, None, exc.reason, exc.since or now, now)
        except Exception as exc:  # an unexpected server error still means "not healthy"
            return DbHealth(False, None, describe_error(exc), self._down_since or now, now)
        self._mark_up()
        return DbHealth(True, rtt, None, None, now)


def _is_connection_loss(exc: BaseException) -> bool:
    text = str(exc).lower()
    return any(word in text for word in ("connection", "closed", "terminat", "pool"))

