from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from datetime import UTC

import pytest
import pytest_asyncio

from core.db import Database
from tests.tui.support import pool
from tui import render


@pytest.fixture(autouse=True)
def display_in_utc() -> Iterator[None]:
    """Clock values render in UTC so screenshots do not depend on the machine's zone."""
    previous = render.DISPLAY_TZ
    render.DISPLAY_TZ = UTC
    yield
    render.DISPLAY_TZ = previous


@pytest_asyncio.fixture
async def tui_db(db_dsn: str) -> AsyncIterator[Database]:
    db = Database(db_dsn, pool())
    yield db
    await db.close()
