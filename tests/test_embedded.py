"""The embedded PostgreSQL is a child of opswatch: it starts, keeps data, and dies with us."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import asyncpg
import pytest

from core.embedded import EmbeddedError, EmbeddedPostgres

ROOT = Path(__file__).resolve().parent.parent


def _port_open(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.2)
        return sock.connect_ex(("127.0.0.1", port)) == 0


async def test_data_survives_a_restart_of_the_server(tmp_path: Path) -> None:
    server = EmbeddedPostgres(tmp_path).start()
    try:
        conn = await asyncpg.connect(server.dsn)
        await conn.execute("CREATE TABLE kept (v int); INSERT INTO kept VALUES (42)")
        await conn.close()
    finally:
        server.stop()
    assert not _port_open(server.port)
    again = EmbeddedPostgres(tmp_path).start()  # reuses the data directory: no initdb
    try:
        conn = await asyncpg.connect(again.dsn)
        assert await conn.fetchval("SELECT v FROM kept") == 42
        await conn.close()
    finally:
        again.stop()


@pytest.mark.parametrize("how", [signal.SIGKILL, signal.SIGINT])
def test_server_stops_when_opswatch_is_killed_or_interrupted(tmp_path: Path, how: signal.Signals) -> None:
    script = (
        "import signal, sys, time\n"
        "from pathlib import Path\n"
        "from core.embedded import EmbeddedPostgres\n"
        f"pg = EmbeddedPostgres(Path({str(tmp_path)!r})).start()\n"
        "signal.signal(signal.SIGINT, lambda *a: (pg.stop(), sys.exit(0)))\n"
        "print(pg.port, flush=True)\n"
        "time.sleep(60)\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True, cwd=ROOT)
    try:
        assert proc.stdout is not None
        port = int(proc.stdout.readline())
        assert _port_open(port)
        os.kill(proc.pid, how)
        proc.wait(timeout=10)
        deadline = time.monotonic() + 10
        while _port_open(port) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not _port_open(port), f"PostgreSQL still listening after {how.name} of its parent"
        assert not (tmp_path / "pgdata" / "postmaster.pid").exists()
    finally:
        if proc.poll() is None:
            proc.kill()


def test_unusable_data_directory_is_one_clear_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    with pytest.raises(EmbeddedError, match=r"data directory .* is unusable"):
        EmbeddedPostgres(blocker / "demo").start()
