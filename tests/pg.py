"""Real PostgreSQL for tests: one embedded server per session, one fresh database per module.

Set OPSWATCH_TEST_DSN to use an external server instead (the role needs CREATEDB).
"""

from __future__ import annotations

import os
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg

from core.embedded import EmbeddedPostgres
from core.migrate import init_app_schema, migrate


def with_database(dsn: str, database: str) -> str:
    parts = urlsplit(dsn)
    return urlunsplit(parts._replace(path="/" + database))


@contextmanager
def server_dsn() -> Iterator[str]:
    external = os.environ.get("OPSWATCH_TEST_DSN")
    if external:
        yield external
        return
    with tempfile.TemporaryDirectory(prefix="opswatch-pg-") as tmp:
        server = EmbeddedPostgres(Path(tmp))
        server.start()
        try:
            yield server.dsn
        finally:
            server.stop()


class DatabaseFactory:
    """Creates databases cloned from a migrated template (fast: a file copy on the server)."""

    def __init__(self, admin_dsn: str) -> None:
        self.admin_dsn = admin_dsn
        self.prefix = f"ow_{os.getpid()}_{uuid.uuid4().hex[:6]}"
        self.template = f"{self.prefix}_template"
        self.created: list[str] = []

    async def prepare_template(self) -> None:
        admin = await asyncpg.connect(self.admin_dsn)
        try:
            await admin.execute(f'CREATE DATABASE "{self.template}"')
        finally:
            await admin.close()
        self.created.append(self.template)
        conn = await asyncpg.connect(with_database(self.admin_dsn, self.template))
        try:
            await init_app_schema(conn)
            await migrate(conn)
        finally:
            await conn.close()

    async def create(self, label: str) -> str:
        name = f"{self.prefix}_{label}"[:63].lower()
        admin = await asyncpg.connect(self.admin_dsn)
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}"')
            await admin.execute(f'CREATE DATABASE "{name}" TEMPLATE "{self.template}"')
        finally:
            await admin.close()
        self.created.append(name)
        return with_database(self.admin_dsn, name)

    async def drop_all(self) -> None:
        admin = await asyncpg.connect(self.admin_dsn)
        try:
            for name in reversed(self.created):
                await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await admin.close()
