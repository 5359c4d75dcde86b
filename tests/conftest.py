from __future__ import annotations

import re
from collections.abc import AsyncIterator, Iterator

import pytest
import pytest_asyncio

from core.db import Database, PoolSettings
from tests.logs import captured_log
from tests.pg import DatabaseFactory, server_dsn
from tests.servers import WebhookSink
from tests.smtp_server import SmtpSink
from tests.test_triage_support import reset_app, seed_base


@pytest.fixture(scope="session", autouse=True)
def _private_data_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Monitors spool alert decisions made during an outage under the data dir: never the user's."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("OPSWATCH_DATA_DIR", str(tmp_path_factory.mktemp("opswatch-data")))
        yield


@pytest.fixture(scope="session")
def pg_admin_dsn() -> Iterator[str]:
    """DSN of the session's PostgreSQL server (embedded unless OPSWATCH_TEST_DSN is set)."""
    with server_dsn() as dsn:
        yield dsn


@pytest_asyncio.fixture(scope="session")
async def db_factory(pg_admin_dsn: str) -> AsyncIterator[DatabaseFactory]:
    factory = DatabaseFactory(pg_admin_dsn)
    await factory.prepare_template()
    yield factory
    await factory.drop_all()


@pytest_asyncio.fixture(scope="module")
async def db_dsn(db_factory: DatabaseFactory, request: pytest.FixtureRequest) -> str:
    """A fresh database (app schema + opswatch schema) for this test module."""
    label = re.sub(r"[^a-z0-9]+", "_", request.module.__name__.rsplit(".", 1)[-1].lower())
    return await db_factory.create(label)


@pytest_asyncio.fixture
async def fresh_db_dsn(db_factory: DatabaseFactory, request: pytest.FixtureRequest) -> str:
    """A fresh database for one test that needs an empty slate."""
    label = re.sub(r"[^a-z0-9]+", "_", request.node.name.lower())[:30]
    return await db_factory.create(label)


@pytest_asyncio.fixture
async def database(db_dsn: str) -> AsyncIterator[Database]:
    db = Database(db_dsn, PoolSettings(min_size=1, max_size=4))
    yield db
    await db.close()


@pytest_asyncio.fixture
async def db(db_dsn: str) -> AsyncIterator[Database]:
    """The module's database with opswatch's alerting tables emptied (faster than a new database)."""
    database = Database(db_dsn, PoolSettings(min_size=1, max_size=8))
    await database.execute(
        "TRUNCATE opswatch.alert_state, opswatch.alert_history, opswatch.silences, opswatch.alert_leader,"
        " opswatch.notification_outbox, opswatch.audit_log RESTART IDENTITY"
    )
    yield database
    await database.close()


@pytest_asyncio.fixture
async def sink() -> AsyncIterator[WebhookSink]:
    """A webhook receiver on 127.0.0.1 that records every request."""
    async with WebhookSink() as server:
        yield server


@pytest_asyncio.fixture
async def smtp() -> AsyncIterator[SmtpSink]:
    async with SmtpSink() as server:
        yield server


@pytest.fixture
def logs() -> Iterator[list[str]]:
    """Everything logged through loguru while the test runs (as production formats it: no locals)."""
    with captured_log("DEBUG", "{level} {message} {extra}") as lines:
        yield lines


@pytest.fixture
async def base(database: Database) -> dict[str, int]:
    """The app's tables emptied and the reference rows (businesses, channels) seeded; their ids."""
    async with database.acquire() as conn:
        await reset_app(conn)
        return await seed_base(conn)
