"""Business filter by name (service and CLI) and the same-message link of a dead letter."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest
import pytest_asyncio

from cli.main import main
from core.config import default_config
from core.db import Database, PoolSettings
from core.triage import DlqFilter, TriageService
from tests.test_triage_support import add_dlq, reset_app, seed_base


@pytest_asyncio.fixture
async def base(db_dsn: str) -> dict[str, int]:
    conn = await asyncpg.connect(db_dsn)
    try:
        await reset_app(conn)
        ids = await seed_base(conn)  # 'Shop A', '[red]Shop B[/red]'
        ids["b3"] = await conn.fetchval("INSERT INTO businesses (name) VALUES ('Acme Tacos') RETURNING id")
        ids["b4"] = await conn.fetchval("INSERT INTO businesses (name) VALUES ('ACME TACOS') RETURNING id")
        await add_dlq(conn, 2, business_id=ids["b1"], channel_id=ids["c1"])
        await add_dlq(conn, 3, business_id=ids["b2"], channel_id=ids["c3"])
    finally:
        await conn.close()
    return ids


@pytest_asyncio.fixture
async def service(db_dsn: str) -> AsyncIterator[TriageService]:
    db = Database(db_dsn, PoolSettings(min_size=1, max_size=2))
    yield TriageService(db, default_config(), actor="tester")
    await db.close()


async def test_a_business_is_found_by_name_case_insensitively(
    service: TriageService, base: dict[str, int]
) -> None:
    assert await service.resolve_business("shop a") == (base["b1"], "Shop A")
    assert await service.resolve_business(str(base["b2"])) == (base["b2"], "[red]Shop B[/red]")
    assert (await service.resolve_business("shop b"))[0] == base["b2"]  # a unique part of a name
    page = await service.kind("dlq").list(DlqFilter(business_name="SHOP A"))
    assert page.total == 2 and {r.business_id for r in page.rows} == {base["b1"]}


async def test_an_ambiguous_or_unknown_name_is_one_clear_line(
    service: TriageService, base: dict[str, int]
) -> None:
    with pytest.raises(ValueError, match=r"ambiguous: #\d+ Acme Tacos, #\d+ ACME TACOS; give the id"):
        await service.resolve_business("acme tacos")
    with pytest.raises(ValueError, match="ambiguous"):
        await service.kind("dlq").list(DlqFilter(business_name="shop"))  # part of 'Shop A' and 'Shop B'
    with pytest.raises(ValueError, match="no business named 'Nobody'"):
        await service.kind("dlq").list(DlqFilter(business_name="Nobody"))


async def test_rows_of_the_same_message_are_linked(
    service: TriageService, base: dict[str, int], db_dsn: str
) -> None:
    conn = await asyncpg.connect(db_dsn)
    try:
        message = await conn.fetchval("SELECT message_id FROM dead_letter_messages WHERE id = 1")
        again = [
            await conn.fetchval(
                "INSERT INTO dead_letter_messages (message_id, business_id, channel_id, error_message, "
                "message_data) VALUES ($1, $2, $3, 'again', '{}') RETURNING id",
                message,
                base["b1"],
                base["c1"],
            )
            for _ in range(2)
        ]
    finally:
        await conn.close()
    detail = await service.kind("dlq").detail(again[0])
    assert detail is not None
    assert detail.same_message == (1, *again) and detail.same_message_total == 3
    alone = await service.kind("dlq").detail(2)
    assert alone is not None and alone.same_message == (2,) and alone.same_message_total == 1


@pytest.fixture
def cfg(tmp_path: Path, db_dsn: str) -> str:
    path = tmp_path / "opswatch.yaml"
    path.write_text(f"database:\n  dsn: {db_dsn}\ntriage:\n  actor: cli-tester\n")
    return str(path)


def test_cli_business_takes_a_name(
    capsys: pytest.CaptureFixture[str], cfg: str, base: dict[str, int]
) -> None:
    code = main(["dlq", "list", "--config", cfg, "--business", "shop a", "--json"])
    out, _ = capsys.readouterr()
    assert code == 0 and '"total": 2' in out
    code = main(["dlq", "list", "--config", cfg, "--business", "Acme Tacos"])
    out, err = capsys.readouterr()
    assert code == 2 and "ambiguous" in err and "give the id" in err and len(err.strip().splitlines()) == 1
    assert "Traceback" not in err


async def test_a_slow_same_message_lookup_is_given_up_and_leaves_no_timeout_behind(
    service: TriageService, base: dict[str, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without an index on message_id the lookup may scan: it is bounded, and says so."""
    import core.triage.service as svc

    default = await service.db.fetchval("SHOW statement_timeout")

    monkeypatch.setattr(
        svc, "same_message_sql", lambda _t: "SELECT pg_sleep(2), 1 AS id, 1 AS n, $1::int, $2::int"
    )
    monkeypatch.setattr(svc, "SAME_MESSAGE_TIMEOUT_MS", 50)
    detail = await service.kind("dlq").detail(1)
    assert detail is not None and detail.same_message_total is None and detail.same_message == ()
    for _ in range(3):  # every pooled connection is back to its default
        assert await service.db.fetchval("SHOW statement_timeout") == default != "50ms"
