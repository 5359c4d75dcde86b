"""``opswatch audit`` text output (a header, aligned columns) and skipped actions that keep their ids."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import asyncpg
import pytest

from cli.main import main
from core.audit import read_audit
from core.db import Database
from tests.test_triage_support import add_dlq, reset_app, seed_base


@pytest.fixture
async def dlq_ids(db_dsn: str) -> list[int]:
    conn = await asyncpg.connect(db_dsn)
    try:
        await reset_app(conn)
        await conn.execute("TRUNCATE opswatch.audit_log")
        base = await seed_base(conn)
        return await add_dlq(conn, 3, business_id=base["b1"], channel_id=base["c1"])
    finally:
        await conn.close()


def test_audit_text_has_a_header_and_skipped_rows_name_their_ids(
    tmp_path: Path, db_dsn: str, dlq_ids: list[int], capsys: Any
) -> None:
    cfg = tmp_path / "opswatch.yaml"
    cfg.write_text(f"database:\n  dsn: {db_dsn}\ntriage:\n  actor: auditor\n", encoding="utf-8")
    a, b, _ = dlq_ids
    assert main(["dlq", "abandon", str(a), "--reason", "spam", "--config", str(cfg), "--yes"]) == 0
    # a is already abandoned: the second action skips it, applies b
    main(["dlq", "abandon", str(a), str(b), "--reason", "again", "--config", str(cfg), "--yes"])
    main(["dlq", "abandon", str(a), "--reason", "third", "--config", str(cfg), "--yes"])  # skipped
    capsys.readouterr()

    assert main(["audit", "--config", str(cfg)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["ID", "AT", "ACTOR", "ACTION", "TARGET", "OUTCOME", "REASON"]
    assert len(lines) == 4
    newest = lines[1].split()
    assert newest[2:] == ["auditor", "dlq.abandon", "dlq", str(a), "skipped", "third"]
    both = f"{min(a, b)},{max(a, b)}"
    assert lines[2].split()[2:] == ["auditor", "dlq.abandon", "dlq", both, "partial", "again"]
    # columns line up under the header
    assert lines[1].index("dlq.abandon") == lines[0].index("ACTION") == lines[3].index("dlq.abandon")


async def test_skipped_audit_rows_record_the_ids(db_dsn: str, dlq_ids: list[int]) -> None:
    from core.triage import TriageService
    from tests.test_triage_support import triage_config

    db = Database(db_dsn)
    try:
        svc = TriageService(db, triage_config(), actor="bob")
        await svc.kind("dlq").act("abandon", [dlq_ids[0]], reason="x")
        again = await svc.kind("dlq").act("abandon", [dlq_ids[0], 999_999], reason="y")
        assert again.applied == ()
        [entry, _] = await read_audit(db, target_kind="dlq")
        assert (entry.outcome, entry.target_ids) == ("skipped", (dlq_ids[0], 999_999))
        assert entry.detail is not None and set(entry.detail["skipped"]) == {str(dlq_ids[0]), "999999"}
    finally:
        await db.close()


def test_empty_audit_says_so(tmp_path: Path, db_dsn: str, dlq_ids: list[int], capsys: Any) -> None:
    cfg = tmp_path / "opswatch.yaml"
    cfg.write_text(f"database:\n  dsn: {db_dsn}\n", encoding="utf-8")
    assert main(["audit", "--config", str(cfg)]) == 0
    assert capsys.readouterr().out == "no audit entries match\n"
