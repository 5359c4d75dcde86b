"""One asyncpg pool per process, that never raises a raw connection error at its callers.

While the server is unreachable every call fails fast with :class:`DatabaseUnavailable`
(no blocking retry loops on the caller's path); reconnection is attempted lazily, at most
once per backoff step (exponential, with jitter), by whichever call comes next. The backoff stays
short while an outage is young, and a background TCP probe of the server's host:port ends the
wait (and sets :attr:`Database.reconnect_due`) as soon as the server accepts connections again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
import re
import time
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

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


class _PoolFloorRetries(logging.Filter):
    """asyncpg's pool reconnects its floor in the background while the server is down and logs a
    traceback for every try; :class:`Database` reports an outage once and reconnects itself."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith("Failed to restore the pool connection floor")


logging.getLogger("asyncpg.pool").addFilter(_PoolFloorRetries())


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


def describe_target(dsn: str, env: Mapping[str, str] = os.environ) -> str:
    """``database pos on 127.0.0.1:5432`` from a DSN (libpq defaults filled in); never the password."""
    try:
        parts = urlsplit(dsn)
        query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        host = parts.hostname or query.get("host") or env.get("PGHOST") or "localhost"
        port = parts.port or query.get("port") or env.get("PGPORT") or 5432
        user = unquote(parts.username or "") or query.get("user") or env.get("PGUSER") or ""
        name = unquote(parts.path.lstrip("/")) or query.get("dbname") or env.get("PGDATABASE") or user
    except ValueError:
        return "the configured database (DSN not parsable)"
    where = f"[{host}]:{port}" if ":" in str(host) else f"{host}:{port}"
    return redact(f"database {name or '?'} on {where}")[:200]


def display_dsn(dsn: str) -> str:
    """The DSN with its password (in the userinfo or a ``password=`` parameter) masked."""
    masked = re.sub(r"(://[^:/@?#]*:)[^@/?#]*@", r"\1***@", dsn)
    return re.sub(r"(?i)([?&]password=)[^&#]*", r"\1***", masked)


class Backoff:
    """Exponential backoff with full jitter; ``ready()`` says whether another attempt is due.

    While the outage is younger than ``young_s`` the delay stays under ``young_max``: most
    outages are restarts, and a console should be back within a second or two of the server.
    """

    def __init__(
        self,
        initial: float = 0.25,
        maximum: float = 30.0,
        *,
        young_max: float = 1.0,
        young_s: float = 60.0,
    ) -> None:
        self.initial = initial
        self.maximum = maximum
        self.young_max = young_max
        self.young_s = young_s
        self.failures = 0
        self._next_at = 0.0
        self._since: float | None = None

    def ready(self) -> bool:
        return time.monotonic() >= self._next_at

    def failed(self) -> float:
        now = time.monotonic()
        if self._since is None:
            self._since = now
        self.failures += 1
        cap = self.young_max if now - self._since < self.young_s else self.maximum
        ceiling = min(cap, self.initial * (2 ** (self.failures - 1)))
        delay: float = ceiling / 2 + random.uniform(0, ceiling / 2)
        self._next_at = now + delay
        return delay

    def retry_now(self) -> None:
        """The server looks reachable again: let the next call try at once."""
        self._next_at = 0.0

    def succeeded(self) -> None:
        self.failures = 0
        self._next_at = 0.0
        self._since = None


PROBE_EVERY_S = 0.25  # TCP reachability probe while the server is down


def probe_address(dsn: str) -> tuple[str, int] | None:
    """host and port to probe for ``dsn``; None for Unix sockets and multi-host DSNs."""
    try:
        parts = urlsplit(dsn)
        query = parse_qs(parts.query)
        host = parts.hostname or (query.get("host") or [""])[0]
        port = parts.port or int((query.get("port") or ["5432"])[0])
    except ValueError:
        return None
    if not host or host.startswith("/") or "," in host:
        return None
    return host, port


async def accepts_connections(address: tuple[str, int], within_s: float) -> bool:
    """True when a TCP connection to ``address`` opens within ``within_s`` (closed at once)."""
    try:
        async with asyncio.timeout(within_s):
            _reader, writer = await asyncio.open_connection(*address)
    except (OSError, TimeoutError):
        return False
    writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()
    return True


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
        self._address = probe_address(dsn)
        self._probe: asyncio.Task[None] | None = None
        self.reconnect_due = asyncio.Event()
        """Set when a reconnection attempt is worth making now (the server accepts connections)."""

    @property
    def where(self) -> str:
        """Which database this is (host:port and name), safe to show."""
        return describe_target(self.dsn)

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
        self._last_error = f"{describe_error(exc)} ({self.where})"
        if self._down_since is None:
            self._down_since = datetime.now(UTC)
        self._backoff.failed()
        self.reconnect_due.clear()
        probe_idle = self._probe is None or self._probe.done()
        if self._address is not None and not self._closed and probe_idle and _server_gone(exc):
            with contextlib.suppress(RuntimeError):  # no running loop: the backoff alone decides
                self._probe = asyncio.get_running_loop().create_task(self._watch_reachability())

    async def _watch_reachability(self) -> None:
        """While the server is down, probe its port; end the backoff wait once it accepts connections."""
        assert self._address is not None
        while self._down_since is not None and not self._closed:
            await asyncio.sleep(PROBE_EVERY_S)
            if await accepts_connections(self._address, min(1.0, self.settings.connect_timeout_s)):
                self._backoff.retry_now()
                self.reconnect_due.set()
                return

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
        probe, self._probe = self._probe, None
        if probe is not None:
            probe.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await probe
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
            error = f"{describe_error(exc)} ({self.where})"
            return DbHealth(False, None, error, self._down_since or now, now)
        self._mark_up()
        return DbHealth(True, rtt, None, None, now)


_SERVER_GONE: tuple[type[BaseException], ...] = (
    OSError,
    asyncio.TimeoutError,
    asyncpg.exceptions.PostgresConnectionError,
    asyncpg.exceptions.OperatorInterventionError,
    asyncpg.exceptions.InterfaceError,
)


def _server_gone(exc: BaseException) -> bool:
    """A failure that a server coming back can end; not auth, a missing database or a bad DSN
    (probing then would only turn a wrong password into a connection storm)."""
    return isinstance(exc, _SERVER_GONE) and not isinstance(exc, asyncpg.exceptions.ClientConfigurationError)


def _is_connection_loss(exc: BaseException) -> bool:
    text = str(exc).lower()
    return any(word in text for word in ("connection", "closed", "terminat", "pool"))
