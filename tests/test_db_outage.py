"""A database that goes away and comes back: callers see DatabaseUnavailable, then recover."""

from __future__ import annotations

import asyncio
import logging
import os
import tempfile
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio

from core.aio import wait_event
from core.db import Backoff, Database, DatabaseUnavailable, PoolSettings, probe_address
from core.embedded import EmbeddedPostgres
from tests.waiting import until


def test_backoff_grows_with_jitter_and_caps() -> None:
    backoff = Backoff(initial=1, maximum=8, young_s=0)  # an old outage: grows to the maximum
    delays = [backoff.failed() for _ in range(6)]
    assert all(0.5 <= d <= 8 for d in delays)
    assert max(delays[-2:]) >= 4  # reached the cap region
    backoff.succeeded()
    assert backoff.ready()


def test_backoff_stays_short_while_the_outage_is_young() -> None:
    backoff = Backoff()
    delays = [backoff.failed() for _ in range(20)]
    assert all(d <= 1.0 for d in delays)
    backoff.young_s = 0  # the same outage, a minute later
    assert max(backoff.failed() for _ in range(5)) > 1.0
    backoff.retry_now()
    assert backoff.ready()


def test_asyncpg_pool_floor_retries_are_not_logged() -> None:
    """While the server is down asyncpg's pool logs a traceback per background reconnect (seen as
    a burst in the agent's log); the Database reports the outage once and reconnects itself."""
    pool_logger = logging.getLogger("asyncpg.pool")
    retry = pool_logger.makeRecord(
        "asyncpg.pool", logging.WARNING, __file__, 1, "Failed to restore the pool connection floor; retrying",
        (), None,
    )  # fmt: skip
    other = pool_logger.makeRecord("asyncpg.pool", logging.WARNING, __file__, 1, "something else", (), None)
    assert (pool_logger.filter(retry), bool(pool_logger.filter(other))) == (False, True)


def test_probe_address_from_the_dsn() -> None:
    assert probe_address("postgresql://u:pw@db.example:6543/pos") == ("db.example", 6543)
    assert probe_address("postgresql://u@127.0.0.1/pos") == ("127.0.0.1", 5432)
    assert probe_address("postgresql:///pos?host=/var/run/postgresql") is None  # Unix socket
    assert probe_address("postgresql://u@h1:5432,h2:5432/pos") is None


@pytest_asyncio.fixture
async def own_server() -> AsyncIterator[tuple[EmbeddedPostgres, Database]]:
    """A server this test stops and starts (an external one is not ours to stop), and a Database on it."""
    if os.environ.get("OPSWATCH_TEST_DSN"):
        pytest.skip("needs a server this test can stop; the external one is not ours to stop")
    with tempfile.TemporaryDirectory() as tmp:
        server = EmbeddedPostgres(Path(tmp)).start()
        db = Database(server.dsn, PoolSettings(connect_timeout_s=1))
        try:
            assert (await db.health()).up
            yield server, db
        finally:
            await db.close()
            server.stop()


async def is_up(db: Database) -> bool:
    return (await db.health()).up


async def _outage(server: EmbeddedPostgres, db: Database, seconds: float) -> None:
    """Stop the server and keep calling, as the monitor's loops do, for ``seconds``."""
    server.stop()
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        assert not (await db.health()).up
        await asyncio.sleep(0.05)  # time under test: calls keep failing for as long as the outage lasts


async def test_reconnects_within_a_second_of_the_server_accepting_connections(
    own_server: tuple[EmbeddedPostgres, Database],
) -> None:
    """Today's 30 s backoff made consoles wait 10-25 s after the server was back."""
    server, db = own_server
    await _outage(server, db, 4.0)  # a young outage: short backoff
    assert db._backoff.failures >= 4
    server.start()
    back = time.monotonic()
    for _ in range(100):
        if (await db.health()).up:
            break
        await wait_event(db.reconnect_due, 0.1)
    assert time.monotonic() - back <= 1.5
    # an old outage: the backoff has grown far beyond the test, the TCP probe ends it
    db._backoff.young_s = 0
    await _outage(server, db, 2.0)
    for _ in range(4):
        db._backoff.failed()
    assert not db._backoff.ready()
    db.reconnect_due.clear()
    server.start()
    back = time.monotonic()
    assert await wait_event(db.reconnect_due, 3.0)  # the probe saw the port open
    assert (await db.health()).up
    assert time.monotonic() - back <= 1.5


async def test_outage_and_recovery(own_server: tuple[EmbeddedPostgres, Database]) -> None:
    server, db = own_server
    server.stop()
    with pytest.raises(DatabaseUnavailable):
        await db.fetchval("SELECT 1")
    down = await db.health()
    assert not down.up and down.down_since is not None
    server.start()
    await until(lambda: is_up(db), within=10, what="reconnected")  # the backoff starts at 0.5 s
    assert await db.fetchval("SELECT 41 + 1") == 42
    assert db.down_since is None
