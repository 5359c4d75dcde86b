"""7 Audit & log: an action taken through the services shows on the audit page, newest first."""

from __future__ import annotations

from tests.tui.support import build_app, wait_for
from tui.screens.audit import AuditScreen


async def test_a_silence_shows_on_the_audit_page(fresh_db_dsn: str) -> None:
    app, _, db = build_app(fresh_db_dsn)
    try:
        async with app.run_test(size=(140, 36)) as pilot:
            silence = await app.services.alerts.silence(None, "api", 600, "deploy window")
            await pilot.press("7")
            screen = app.screen
            assert isinstance(screen, AuditScreen)
            await wait_for(pilot, lambda: screen.table.keys() != [], what="audit rows")
            [entry] = await app.services.audit.read(limit=5)
            assert screen.table.keys() == [str(entry.id)]
            cells = [c.plain for c in screen.table.cells_for(str(entry.id))]
            assert entry.action == "silence.create" and entry.reason == "deploy window"
            assert cells[1:3] == [entry.actor, entry.action] and cells[-1] == entry.reason
            assert (entry.target_kind, entry.target_ids) == ("silence", (silence.id,))
    finally:
        await db.close()
