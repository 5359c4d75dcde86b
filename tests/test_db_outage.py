"""A database that goes away and comes back: callers see DatabaseUnavailable, then recover."""

from __future__ import annotations

import asyncio
import tempfile
from pathlib import Path

import pytest

from core.db import Backoff, Database, DatabaseUnavailable, PoolSettings
from core.embedded import EmbeddedPostgres


def test_backoff_grows_with_jitter_and_caps() -> None:
    backoff = Backoff(initial=1, maximum=8)
    delays = [backoff.failed() for _ in range(6)]
    assert all(0.5 <= d <= 8 for d in delays)
    assert max(delays[-2:]) >= 4  # reached the cap region
    backoff.succeeded()
    assert backoff.ready()


@pytest.mark.skipif(bool(__import__("os").environ.get("OPSWATCH_TEST_DSN")),
                    reason="needs a server this test can stop; the external one is not ours to stop")
async def test_outage_and_recovery() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        server = EmbeddedPostgres(Path(tmp)).start()
        db = Database(server.dsn, PoolSettings(connect_timeout_s=1))
        try:
            assert (await db.health()).up
            server.stop()
            with pytest.raises(DatabaseUnavailable):
                await db.fetchval("SELECT 1")
            down = await db.health()
            assert not down.up and down.down_since is not None
            server.start()
            for _ in range(100):  # backoff starts at 0.5 s
                if (await db.health()).up:
                    break
                await asyncio.sleep(0.1)
            assert await db.fetchval("SELECT 41 + 1") == 42
            assert db.down_since is None
        finally:
            await db.close()
            server.stop()
