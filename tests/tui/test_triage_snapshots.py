"""Screenshots of the dead-letter screen at 80x24 (list only, then the detail opened with Enter),
120x40 (detail stacked below) and 200x60 (detail beside the list).

Deterministic: fixed rows and times, a frozen clock, UTC display, a published fixed Snapshot,
an explicit theme and no focused text input. Rows 31 and 32 are new failures of row 3's
message, so the detail links them. Update with:
pytest tests/tui/test_triage_snapshots.py --snapshot-update
"""

from __future__ import annotations

from typing import Any

import asyncpg
import pytest
import pytest_asyncio

from tests.tui.support import build_app, fixed_snapshot, seed_app_rows, wait_for
from tui.screens.triage import DeadLettersScreen


@pytest_asyncio.fixture(scope="module")
async def seeded(db_dsn: str) -> str:
    await seed_app_rows(db_dsn, dlq=30, hostile_at=5)
    conn = await asyncpg.connect(db_dsn)
    try:
        await conn.execute(
            "INSERT INTO dead_letter_messages (message_id, business_id, channel_id, error_message, "
            "message_data, retry_count, created_at) SELECT message_id, business_id, channel_id, "
            "'WhatsApp API 131026: message undeliverable (receiver incapable)', message_data, 3, "
            "created_at - interval '3 hours' * g FROM dead_letter_messages, generate_series(1, 2) g "
            "WHERE id = 3"
        )
        await conn.execute("TRUNCATE opswatch.audit_log")
    finally:
        await conn.close()
    return db_dsn


def _ready(app: Any, *keys: str) -> Any:
    async def ready(pilot: Any) -> None:
        await pilot.press("3", "j", "j")
        screen = app.screen
        assert isinstance(screen, DeadLettersScreen)
        await wait_for(pilot, lambda: screen.detail is not None and screen.detail.row.id == 3, what="detail")
        if keys:
            await pilot.press(*keys)
        await pilot.pause(0.1)

    return ready


@pytest.mark.parametrize("size", [(80, 24), (120, 40), (200, 60)], ids=lambda s: f"{s[0]}x{s[1]}")
def test_dead_letters(snap_compare: Any, seeded: str, size: tuple[int, int]) -> None:
    app, _, _ = build_app(seeded, own_db=True, snapshot=fixed_snapshot())
    assert snap_compare(app, terminal_size=size, run_before=_ready(app))


def test_dead_letters_80x24_detail_opened(snap_compare: Any, seeded: str) -> None:
    app, _, _ = build_app(seeded, own_db=True, snapshot=fixed_snapshot())
    assert snap_compare(app, terminal_size=(80, 24), run_before=_ready(app, "enter"))
