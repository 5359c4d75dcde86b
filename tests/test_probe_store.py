"""Probe history in PostgreSQL: batched COPY, retention, restore after restart, outages."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit, urlunsplit

import pytest
import pytest_asyncio

from core.db import Database, DatabaseUnavailable, PoolSettings
from core.probe_store import ProbeStore
from core.probes import Outcome, ProbeSample
from core.windows import EndpointWindow
from tests.waiting import until

NOW = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)


def sample(endpoint: str, at: datetime, outcome: Outcome = Outcome.OK, latency: float = 12.5) -> ProbeSample:
    status = 200 if outcome is Outcome.OK else 503
    return ProbeSample(endpoint, at, latency, status, outcome, "" if outcome is Outcome.OK else "HTTP 503")


@pytest_asyncio.fixture
async def store(database: Database) -> AsyncIterator[ProbeStore]:
    await database.execute("TRUNCATE opswatch.probe_samples")
    yield ProbeStore(database, clock=lambda: NOW)


async def test_flush_writes_and_load_recent_reads_back(store: ProbeStore, database: Database) -> None:
    samples = [
        sample("api", NOW - timedelta(seconds=30)),
        ProbeSample("api", NOW - timedelta(seconds=20), 5000.0, None, Outcome.TIMEOUT, "timed out after 5 s"),
        sample("web", NOW - timedelta(seconds=10), Outcome.HTTP_STATUS),
    ]
    for s in samples:
        store.add(s)
    assert store.pending == 3
    assert await store.flush() == 3
    assert store.pending == 0 and store.written == 3
    assert await store.flush() == 0
    loaded = await store.load_recent(NOW - timedelta(minutes=1))
    assert loaded == samples
    assert await store.load_recent(NOW - timedelta(seconds=25)) == samples[1:]
    assert await store.load_recent(NOW - timedelta(minutes=1), endpoints=["web"]) == samples[2:]
    row = await database.fetchrow("SELECT error FROM opswatch.probe_samples WHERE outcome = 'ok'")
    assert row is not None and row["error"] is None  # empty error stored as NULL


async def test_full_batch_flushes_without_waiting(database: Database) -> None:
    await database.execute("TRUNCATE opswatch.probe_samples")
    store = ProbeStore(database, batch_rows=10)
    for i in range(10):
        store.add(sample("api", NOW + timedelta(seconds=i)))
    await until(lambda: store.written == 10, within=1, what="the full batch written")
    assert await database.fetchval("SELECT count(*) FROM opswatch.probe_samples") == 10


async def test_retention_deletes_old_rows_in_batches(store: ProbeStore, database: Database) -> None:
    store.retention_s = 7 * 86400
    store.purge_batch = 3
    for i in range(10):
        store.add(sample("api", NOW - timedelta(days=8, minutes=i)))
    for i in range(4):
        store.add(sample("api", NOW - timedelta(days=6, minutes=i)))
    await store.flush()
    assert await store.enforce_retention() == 10
    assert await database.fetchval("SELECT count(*) FROM opswatch.probe_samples") == 4
    assert await store.enforce_retention() == 0


async def test_restore_rebuilds_windows(store: ProbeStore) -> None:
    direct = {"api": EndpointWindow(window_s=300), "web": EndpointWindow(window_s=300)}
    history: list[ProbeSample] = []
    start = NOW - timedelta(hours=3)
    for i in range(3 * 360):  # 3 h at 10 s; web is down for the last 90 minutes
        t = start + timedelta(seconds=10 * i)
        history.append(sample("api", t, Outcome.HTTP_STATUS if i % 20 == 0 else Outcome.OK, float(i % 50)))
        history.append(sample("web", t, Outcome.HTTP_STATUS if i >= 3 * 360 - 540 else Outcome.OK))
    history.append(sample("gone", NOW - timedelta(minutes=1)))  # endpoint no longer configured
    for s in history:
        store.add(s)
        if s.endpoint in direct:
            direct[s.endpoint].add(s)
    await store.flush()

    restored = {"api": EndpointWindow(window_s=300), "web": EndpointWindow(window_s=300)}
    replayed = await store.restore(restored, now=NOW, recent_s=1500)  # 150 samples: fills the sparkline
    assert replayed == 2 * 150
    for name in ("api", "web"):
        want = direct[name].view(name=name, url="u", service="s", now=NOW)
        got = restored[name].view(name=name, url="u", service="s", now=NOW)
        assert got == want
    assert restored["web"].down_since == NOW - timedelta(minutes=90)


async def test_unavailable_database_keeps_a_bounded_buffer(database: Database, db_dsn: str) -> None:
    await database.execute("TRUNCATE opswatch.probe_samples")
    proxy = await TcpProxy.start(db_dsn)
    db = Database(proxy.dsn, PoolSettings(connect_timeout_s=1))
    store = ProbeStore(db, max_buffer=5)
    try:
        store.add(sample("api", NOW))
        assert await store.flush() == 1
        await proxy.cut()
        for i in range(1, 8):
            store.add(sample("api", NOW + timedelta(seconds=i)))
        with pytest.raises(DatabaseUnavailable):
            await store.flush()
        assert store.pending == 5 and store.dropped == 2 and store.last_error
        await proxy.resume()
        for _ in range(60):  # the pool reconnects after its backoff (0.5 s at first)
            with contextlib.suppress(DatabaseUnavailable):
                await store.flush()
                break
            await asyncio.sleep(0.1)
        assert store.pending == 0 and store.last_error is None
        seconds = [
            r["s"]
            for r in await database.fetch(
                "SELECT extract(epoch FROM at - $1)::int AS s FROM opswatch.probe_samples ORDER BY at", NOW
            )
        ]
        assert seconds == [0, 3, 4, 5, 6, 7]  # the two oldest buffered rows were dropped
    finally:
        await db.close()
        await proxy.close()


class TcpProxy:
    """Forwards 127.0.0.1:<port> to the test database; ``cut()`` drops and refuses connections."""

    def __init__(self, target: tuple[str, int], dsn: str) -> None:
        self.target = target
        self.port = 0
        self._dsn = dsn
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()

    @classmethod
    async def start(cls, dsn: str) -> TcpProxy:
        parts = urlsplit(dsn)
        proxy = cls((parts.hostname or "127.0.0.1", parts.port or 5432), dsn)
        await proxy.resume()
        return proxy

    @property
    def dsn(self) -> str:
        parts = urlsplit(self._dsn)
        userinfo = parts.netloc.rpartition("@")[0]
        netloc = f"{userinfo}@127.0.0.1:{self.port}" if userinfo else f"127.0.0.1:{self.port}"
        return urlunsplit(parts._replace(netloc=netloc))

    async def resume(self) -> None:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", self.port, reuse_address=True)
        self.port = self._server.sockets[0].getsockname()[1]

    async def cut(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None
        for writer in list(self._writers):
            writer.close()
        self._writers.clear()

    async def close(self) -> None:
        await self.cut()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.target)
        except OSError:
            writer.close()
            return
        self._writers.update((writer, up_writer))

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            with contextlib.suppress(OSError, RuntimeError):
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            dst.close()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))
        self._writers.difference_update((writer, up_writer))
