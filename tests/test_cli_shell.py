"""The CLI in a shell: a reader that goes away (``| head``) and database errors that say where.

Real subprocesses on real pipes; a real PostgreSQL; a closed 127.0.0.1 port and a name in the
reserved ``.invalid`` domain (it fails in the resolver).
"""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from cli.main import SIGPIPE_EXIT, main
from tests.test_triage_support import add_dlq, reset_app, seed_base

ROOT = Path(__file__).resolve().parent.parent


def opswatch(*argv: str) -> list[str]:
    return [sys.executable, "-m", "cli.main", *argv]


def write_config(tmp_path: Path, dsn: str) -> str:
    path = tmp_path / "opswatch.yaml"
    path.write_text(f"database:\n  dsn: {dsn}\n", encoding="utf-8")
    return str(path)


@pytest.fixture
async def many_dlq(db_dsn: str) -> int:
    conn = await asyncpg.connect(db_dsn)
    try:
        await reset_app(conn)
        base = await seed_base(conn)
        ids = await add_dlq(conn, 1500, business_id=base["b1"], channel_id=base["c1"])
        await conn.execute("TRUNCATE opswatch.notification_outbox")
        await conn.execute(
            "INSERT INTO opswatch.notification_outbox (dedup_key, channel, route, severity, kind, payload) "
            "SELECT 'k' || g, 'slack', 'slack:critical', 'critical', 'firing', '{}'::jsonb "
            "FROM generate_series(1, 50) g"
        )
    finally:
        await conn.close()
    return len(ids)


def read_some_then_close(argv: list[str], lines: int) -> tuple[list[bytes], int, bytes]:
    """Like ``argv | head -N``: read N lines, close the pipe, collect exit code and stderr."""
    proc = subprocess.Popen(argv, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdout is not None and proc.stderr is not None
    got = [proc.stdout.readline() for _ in range(lines)]
    proc.stdout.close()
    err = proc.stderr.read()
    return got, proc.wait(timeout=60), err


def closed_before_writing(argv: list[str]) -> tuple[int, bytes]:
    """stdout is a pipe whose reader is already gone: the very first flush fails."""
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        done = subprocess.run(argv, cwd=ROOT, stdout=write_end, stderr=subprocess.PIPE, timeout=60)
    finally:
        os.close(write_end)
    return done.returncode, done.stderr


async def test_dlq_list_into_head_ends_quietly(tmp_path: Path, db_dsn: str, many_dlq: int) -> None:
    config = write_config(tmp_path, db_dsn)
    argv = opswatch("dlq", "list", "--config", config, "--limit", "1000")  # > 64 KiB of rows
    got, code, err = await asyncio.to_thread(read_some_then_close, argv, 2)
    assert got[0].split()[:2] == [b"ID", b"AGE"] and got[1].strip(), err.decode()
    assert code in (0, SIGPIPE_EXIT) and err == b"", err.decode()


async def test_alert_outbox_and_audit_into_closed_pipe(tmp_path: Path, db_dsn: str, many_dlq: int) -> None:
    config = write_config(tmp_path, db_dsn)
    for argv in (
        opswatch("alert", "outbox", "--config", config),
        opswatch("audit", "--config", config),
        opswatch("dlq", "list", "--config", config, "--json"),
    ):
        code, err = await asyncio.to_thread(closed_before_writing, argv)
        assert code in (0, SIGPIPE_EXIT) and b"Traceback" not in err and b"BrokenPipe" not in err, err


# --------------------------------------------------------------------------- database errors say where


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.parametrize("command", [["dlq", "list"], ["alert", "outbox"], ["audit"]])
def test_refused_names_host_port_and_database(tmp_path: Path, capsys: Any, command: list[str]) -> None:
    port = closed_port()
    config = write_config(tmp_path, f"postgresql://watcher:pa55word-x@127.0.0.1:{port}/posdb")
    assert main([*command, "--config", config]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err == f"opswatch: database unavailable: connection refused (database posdb on 127.0.0.1:{port})\n"


def test_unresolvable_host_names_it(tmp_path: Path, capsys: Any) -> None:
    config = write_config(
        tmp_path, "postgresql://watcher:pa55word-x@nonexistent.invalid/posdb?sslmode=disable"
    )
    assert main(["dlq", "list", "--config", config]) == 2
    err = capsys.readouterr().err
    assert err.startswith("opswatch: database unavailable: ")
    assert err.rstrip().endswith("(database posdb on nonexistent.invalid:5432)")
    assert "pa55word" not in err
