"""The app's real schema: a social_channels table with only ``id, business_id, kind``.

Triage reads keep working (channels shown as ``#id``), ``opswatch db doctor`` names every missing
column with the config key that maps it (exit 0 ok, 1 degraded, 2 unusable), and ``check`` names
an unusable schema instead of failing with a database error.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path

import asyncpg
import pytest

from core.check import run_check
from core.config import Config, loads_config
from core.db import Database, PoolSettings
from core.triage import DlqFilter, TriageService
from core.triage.doctor import AppSchemaError, SchemaStatus, diagnose, inspect_app_schema
from core.triage.schema import AppTables
from tests.cli import exit_code, run_in_thread
from tests.test_triage_support import add_dlq, add_events, seed_base

ROOT = Path(__file__).resolve().parent.parent
MISSING_NAME = (
    'database.columns.social_channels.name: column "name" not found in public.social_channels '
    "(has: id, business_id, kind)"
)


async def _variant(dsn: str) -> dict[str, int]:
    """Seed rows, then reshape social_channels the way the real app has it."""
    conn = await asyncpg.connect(dsn)
    try:
        base = await seed_base(conn)
        base["d1"], base["d2"] = await add_dlq(conn, 2, business_id=base["b1"], channel_id=base["c1"])
        [base["d3"]] = await add_dlq(conn, 1, business_id=base["b2"], channel_id=base["c3"])
        await add_events(conn, 1, business_id=base["b1"])
        await conn.execute(
            "ALTER TABLE social_channels DROP COLUMN platform, DROP COLUMN name, DROP COLUMN created_at, "
            "ADD COLUMN kind text NOT NULL DEFAULT 'whatsapp'"
        )
    finally:
        await conn.close()
    return base


@pytest.fixture
async def variant(fresh_db_dsn: str) -> dict[str, int]:
    return await _variant(fresh_db_dsn)


def _config(dsn: str, extra: str = "") -> Config:
    return loads_config(f"database:\n  dsn: {dsn}\n{extra}")


def _cfg_file(tmp_path: Path, dsn: str, extra: str = "") -> str:
    path = tmp_path / "opswatch.yaml"
    path.write_text(f"database:\n  dsn: {dsn}\n{extra}")
    return str(path)


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    return (exit_code(*argv), *capsys.readouterr())


async def test_triage_reads_work_without_channel_name_and_platform(
    fresh_db_dsn: str, variant: dict[str, int]
) -> None:
    db = Database(fresh_db_dsn, PoolSettings(min_size=1, max_size=2))
    try:
        svc = TriageService(db, _config(fresh_db_dsn), actor="ops")
        page = await svc.kind("dlq").list(DlqFilter())
        assert page.total == 3
        by_id = {r.id: r for r in page.rows}
        assert (by_id[variant["d1"]].channel_name, by_id[variant["d1"]].platform) == (f"#{variant['c1']}", "")
        assert by_id[variant["d3"]].business_name == "[red]Shop B[/red]"  # businesses still joined
        assert (await svc.kind("dlq").list(DlqFilter(channel_id=variant["c3"]))).total == 1
        detail = await svc.kind("dlq").detail(variant["d1"])
        assert detail is not None and detail.row.channel_name == f"#{variant['c1']}"
        preview = await svc.kind("dlq").preview(DlqFilter())
        assert {c.key for c in preview.channels} == {f"#{variant['c1']}", f"#{variant['c3']}"}
        summary = await svc.dlq_summary()
        assert {(c.key, c.id, c.count) for c in summary.by_channel} == {
            (f"#{variant['c1']}", variant["c1"], 2),
            (f"#{variant['c3']}", variant["c3"], 1),
        }
        assert (await svc.event_summary()).last_24h == 1
        report = await svc.schema_report()
        assert report.status is SchemaStatus.DEGRADED
        assert {p.key for p in report.problems} == {
            "database.columns.social_channels.name",
            "database.columns.social_channels.platform",
        }
        assert MISSING_NAME in {p.message for p in report.problems}
        assert report.summary().startswith("app schema degraded: database.columns.social_channels.")
    finally:
        await db.close()


async def test_a_mapped_column_is_used_and_no_longer_reported(
    fresh_db_dsn: str, variant: dict[str, int]
) -> None:
    config = _config(fresh_db_dsn, "  columns:\n    social_channels:\n      platform: kind\n")
    db = Database(fresh_db_dsn, PoolSettings(min_size=1, max_size=2))
    try:
        svc = TriageService(db, config, actor="ops")
        row = (await svc.kind("dlq").list(DlqFilter(channel_id=variant["c1"]))).rows[0]
        assert (row.channel_name, row.platform) == (f"#{variant['c1']}", "whatsapp")
        report = await svc.schema_report()
        assert [p.key for p in report.problems] == ["database.columns.social_channels.name"]
    finally:
        await db.close()


def test_cli_lists_and_shows_with_channel_ids_and_doctor_names_the_keys(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, fresh_db_dsn: str, variant: dict[str, int]
) -> None:
    cfg = _cfg_file(tmp_path, fresh_db_dsn)
    code, out, err = _run(capsys, "dlq", "list", "--config", cfg)
    assert (code, err) == (0, "")
    line = next(x for x in out.splitlines() if x.split()[0] == str(variant["d1"]))
    assert f"#{variant['c1']}" in line
    code, out, _ = _run(capsys, "dlq", "list", "--config", cfg, "--json")
    rows = json.loads(out)["rows"]
    assert {r["channel_name"] for r in rows} == {f"#{variant['c1']}", f"#{variant['c3']}"}
    code, out, err = _run(capsys, "dlq", "show", str(variant["d1"]), "--config", cfg)
    assert (code, err) == (0, "")
    assert f"channel #{variant['c1']} (#{variant['c1']})" in out

    code, out, err = _run(capsys, "db", "doctor", "--config", cfg)
    assert code == 1, out + err
    lines = out.splitlines()
    assert f"degraded  {MISSING_NAME} (channels are shown as #id)" in lines
    assert any(
        x.startswith('degraded  database.columns.social_channels.platform: column "platform"') for x in lines
    )
    assert lines[-1].startswith("app schema degraded: ")


def test_doctor_is_clean_on_the_seed_schema(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, db_dsn: str
) -> None:
    code, out, _ = _run(capsys, "db", "doctor", "--config", _cfg_file(tmp_path, db_dsn))
    assert (code, out) == (0, "app schema ok (5 tables)\n")


async def test_required_columns_missing_are_unusable_and_named(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, fresh_db_dsn: str
) -> None:
    conn = await asyncpg.connect(fresh_db_dsn)
    try:
        await conn.execute("ALTER TABLE dead_letter_messages RENAME COLUMN status TO state")
    finally:
        await conn.close()
    cfg = _cfg_file(tmp_path, fresh_db_dsn)
    key = (
        'database.columns.dead_letter_messages.status: column "status" not found in '
        "public.dead_letter_messages"
    )

    code, out, _ = await _in_thread(capsys, "db", "doctor", "--config", cfg)
    assert code == 2
    assert any(x.startswith(f"unusable  {key}") and x.endswith('; maybe "state"?') for x in out.splitlines())

    code, out, err = await _in_thread(capsys, "dlq", "list", "--config", cfg)
    assert code == 2 and out == ""
    assert err.startswith(f"opswatch: app schema unusable: {key}") and "Traceback" not in err
    code, out, err = await _in_thread(capsys, "events", "list", "--config", cfg)  # events still work
    assert (code, err) == (0, "")

    db = Database(fresh_db_dsn, PoolSettings(min_size=1, max_size=2))
    try:
        config = _config(fresh_db_dsn)
        svc = TriageService(db, config, actor="ops")
        with pytest.raises(AppSchemaError, match=r"database\.columns\.dead_letter_messages\.status"):
            await svc.dlq_summary()
        report = await run_check(config, db)
        assert report.schema is not None and report.schema.status is SchemaStatus.UNUSABLE
        # the DLQ rules cannot be judged on an unusable schema: UNKNOWN (Nagios 3), naming the key
        assert report.findings == () and report.exit_code == 3
        assert any(f"app schema unusable: {key}" in n.reason for n in report.not_judged)
        assert (await inspect_app_schema(db, config)).blocking("event") == ()
        await db.execute("ALTER TABLE dead_letter_messages RENAME COLUMN state TO status")
        assert (await svc.dlq_summary()).pending == 0  # fixed: the same service works, no restart
        assert (await svc.schema_report()).ok
    finally:
        await db.close()


async def test_a_missing_channels_table_degrades_to_ids(fresh_db_dsn: str, variant: dict[str, int]) -> None:
    config = _config(fresh_db_dsn, "  tables:\n    social_channels: channels\n")
    db = Database(fresh_db_dsn, PoolSettings(min_size=1, max_size=2))
    try:
        svc = TriageService(db, config, actor="ops")
        rows = (await svc.kind("dlq").list(DlqFilter())).rows
        assert {r.channel_name for r in rows} == {f"#{variant['c1']}", f"#{variant['c3']}"}
        report = await svc.schema_report()
        assert report.status is SchemaStatus.DEGRADED
        assert [p.message for p in report.problems] == [
            'database.tables.social_channels: table "public.channels" not found'
        ]
        check = await run_check(config, db)
        assert check.findings == () and check.schema is not None and check.schema.ok is False
    finally:
        await db.close()


_in_thread = run_in_thread  # the CLI runs its own event loop: from an async test, in a worker thread


async def test_the_agent_logs_each_schema_problem_at_start(
    tmp_path: Path, fresh_db_dsn: str, variant: dict[str, int]
) -> None:
    cfg = _cfg_file(tmp_path, fresh_db_dsn, f"logging:\n  directory: {tmp_path}\n")
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "cli.main", "run", "--headless", "--config", cfg, "--duration", "1s",
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE, cwd=ROOT,
        env={**os.environ, "LOG_LEVEL": "WARNING"},
    )  # fmt: skip
    _, err = await asyncio.wait_for(proc.communicate(), 30)
    text = err.decode()
    assert proc.returncode == 0, text[-2000:]
    assert MISSING_NAME.replace('"', '\\"') in text or MISSING_NAME in text
    assert "database.columns.social_channels.platform" in text and "Traceback" not in text


def test_diagnose_without_a_database() -> None:
    """The pure comparison: an optional table without its id is not joined at all."""
    tables = AppTables.from_config(loads_config("{}"))
    seed = {
        ("public", t.name): list(t.columns.values())
        for t in (tables.dlq, tables.events, tables.businesses, tables.channels, tables.messages)
    }
    assert diagnose(tables, seed).status is SchemaStatus.OK
    no_id = {**seed, ("public", "social_channels"): ["channel_id", "business_id", "name", "platform"]}
    report = diagnose(tables, no_id)
    assert report.status is SchemaStatus.DEGRADED
    assert [p.message for p in report.problems] == [
        'database.columns.social_channels.id: column "id" not found in public.social_channels '
        "(has: channel_id, business_id, name, platform)"
    ]
    degraded = report.apply(tables)
    assert not degraded.channels.has("name") and degraded.dlq.has("status")
    events = [c for c in seed["public", "event_failures"] if c != "status"]
    no_status = {**seed, ("public", "event_failures"): events}
    report = diagnose(tables, no_status)
    assert report.status is SchemaStatus.UNUSABLE
    assert [p.key for p in report.blocking("event")] == ["database.columns.event_failures.status"]
    assert report.blocking("dlq") == ()
