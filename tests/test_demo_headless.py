"""`opswatch demo --headless` end to end: real PostgreSQL, fake backend, simulator, Slack sink.

The demo runs as a subprocess for 20 s; while it runs, the test retries a dead letter through
the same core the console uses. Afterwards it reopens the demo's data directory with a new
embedded server and checks what happened: alerts fired and resolved, the sink received them,
dead letters appeared, and the retried message was redriven and consumed by the simulated worker.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import sys
from pathlib import Path

import asyncpg
import pytest

from core.config import default_config
from core.db import Database
from core.embedded import EmbeddedPostgres
from core.triage import DlqFilter, TriageService
from tests.pg import with_database

pytestmark = pytest.mark.slow


async def _read_until_up(stream: asyncio.StreamReader, lines: list[str]) -> str:
    while True:
        raw = await stream.readline()
        if not raw:
            raise AssertionError("demo exited before the environment came up:\n" + "".join(lines))
        line = raw.decode(errors="replace")
        lines.append(line)
        match = re.search(r"(postgresql://\S+/pos)", line)
        if "environment up" in line and match:
            return match.group(1)


async def _retry_one_dead_letter(dsn: str) -> int:
    db = Database(dsn)
    try:
        service = TriageService(db, default_config(), actor="test@ci")
        for _ in range(50):
            page = await service.kind("dlq").list(DlqFilter(), limit=1)
            if page.rows:
                target = page.rows[0].id
                result = await service.kind("dlq").act("retry", [target])
                assert result.applied == (target,), result
                return target
            await asyncio.sleep(0.2)
        raise AssertionError("no pending dead letter appeared")
    finally:
        await db.close()


async def test_headless_demo_fires_resolves_and_redrives(tmp_path: Path) -> None:
    data_dir = tmp_path / "demo"
    env = {**os.environ, "XDG_DATA_HOME": str(tmp_path / "xdg")}
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "cli.main",
        "demo",
        "--headless",
        "--duration",
        "20s",
        "--speed",
        "30",
        "--seed",
        "1",
        "--data-dir",
        str(data_dir),
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
        env=env,
        cwd=Path(__file__).resolve().parent.parent,
    )
    assert proc.stderr is not None
    lines: list[str] = []
    try:
        dsn = await asyncio.wait_for(_read_until_up(proc.stderr, lines), timeout=60)
        retried = await _retry_one_dead_letter(dsn)
        rest = await asyncio.wait_for(proc.stderr.read(), timeout=90)
        lines.append(rest.decode(errors="replace"))
        assert await proc.wait() == 0, "".join(lines)[-3000:]
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    output = "".join(lines)
    assert "Traceback" not in output

    sink = [json.loads(line) for line in (data_dir / "slack-sink.jsonl").read_text().splitlines() if line]
    texts = " ".join(json.dumps(entry) for entry in sink)
    assert sink, "no Slack message reached the sink"
    assert re.search(r"resolved", texts, re.IGNORECASE), texts[:2000]

    server = EmbeddedPostgres(data_dir).start()
    try:
        conn = await asyncpg.connect(with_database(server.dsn, "pos"))
        try:
            fired = await conn.fetchval(
                "SELECT count(*) FROM opswatch.alert_history WHERE to_state = 'firing'"
            )
            resolved = await conn.fetchval(
                "SELECT count(*) FROM opswatch.alert_history WHERE to_state = 'resolved'"
            )
            assert fired >= 1 and resolved >= 1, (fired, resolved)
            delivered = await conn.fetchval(
                "SELECT count(*) FROM opswatch.notification_outbox WHERE status = 'delivered'"
            )
            assert delivered >= 2
            assert await conn.fetchval("SELECT count(*) FROM dead_letter_messages") > 0
            row = await conn.fetchrow(
                "SELECT status, message_id, retry_count FROM dead_letter_messages WHERE id = $1", retried
            )
            assert row is not None and row["retry_count"] == 1
            # consumed by the simulated worker: either delivered (resolved) or failed back into the DLQ
            failed_back = await conn.fetchval(
                "SELECT count(*) FROM dead_letter_messages WHERE message_id = $1 AND id > $2",
                row["message_id"],
                retried,
            )
            assert row["status"] == "resolved" or failed_back >= 1, dict(row)
            audit = await conn.fetchval(
                "SELECT count(*) FROM opswatch.audit_log WHERE action = 'dlq.retry' AND $1 = ANY(target_ids)",
                retried,
            )
            assert audit == 1
        finally:
            await conn.close()
    finally:
        server.stop()
