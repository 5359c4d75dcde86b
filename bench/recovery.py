"""Recovery benchmark: how soon opswatch sees the database again after an outage.

Run from the repository root (about ``outages x (outage + 5 s)``; the default is ~3 minutes)::

    .venv/bin/python -m bench.recovery --outages 5 --outage 30

An embedded PostgreSQL in a temporary directory (this benchmark stops and starts it, so never an
external server) and two opswatch Monitors in this process, each on its own pool like two
processes: a headless agent (``agent=True``, nobody subscribed) and a console-like one with a
snapshot subscriber, both with the default settings (``ui.refresh_interval`` 1 s). Per outage:
stop the server, wait ``--outage`` s while both keep running, start it again. Reported, per face:

* recovery = the moment opswatch reports the database reachable (the console: the first snapshot
  it publishes with ``db.up``; the agent: its health view, polled every 10 ms) - the moment the
  server accepts connections again (the first ``asyncpg.connect`` + ``SELECT 1`` that succeeds,
  tried every 10 ms from the start of the server).

Target (issue 11): p95 <= 3 s for both. Before the young-outage backoff cap and the TCP probe, the
same outage took 10-25 s (the backoff grew to 30 s with jitter).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
from loguru import logger

from bench.fleet import prepare_database
from core.config import Config
from core.db import Database, PoolSettings
from core.embedded import EmbeddedPostgres
from core.monitor import Monitor
from core.runtime import MonitorRole, build_services
from core.snapshot import Snapshot

POLL_S = 0.01


@dataclass
class RecoveryOptions:
    outages: int = 5
    outage_s: float = 30.0
    settle_s: float = 3.0
    timeout_s: float = 90.0
    log: Callable[[str], None] = field(default=lambda _m: None, repr=False)


def quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if len(ordered) == 1:
        return ordered[0]
    pos = q * (len(ordered) - 1)
    low = int(pos)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (pos - low)


def summary(values: list[float]) -> dict[str, Any]:
    return {
        "n": len(values),
        "p50_s": round(statistics.median(values), 3),
        "p95_s": round(quantile(values, 0.95), 3),
        "max_s": round(max(values), 3),
        "samples": [round(v, 3) for v in values],
    }


def bench_config(dsn: str) -> Config:
    return Config.model_validate(
        {
            "database": {"dsn": dsn},
            "alerts": {"rules": [{"name": "db-unreachable", "metric": "db.unreachable", "critical": 0}]},
        }
    )


async def _accepting(dsn: str) -> float:
    """Monotonic time of the first successful connection + query (tried every 10 ms)."""
    while True:
        try:
            conn = await asyncpg.connect(dsn, timeout=1.0)
        except (OSError, asyncpg.PostgresError, TimeoutError):
            await asyncio.sleep(POLL_S)
            continue
        try:
            await conn.fetchval("SELECT 1")
            return time.monotonic()
        except (OSError, asyncpg.PostgresError):
            await asyncio.sleep(POLL_S)
        finally:
            with contextlib.suppress(Exception):
                await conn.close()


def _agent_up(monitor: Monitor) -> bool:
    db = monitor.build_snapshot().db
    return db is not None and db.up


def _console_up(monitor: Monitor) -> bool:
    return monitor.snapshot.db is not None and monitor.snapshot.db.up


async def _until(check: Callable[[], bool]) -> float:
    """Monotonic time at which ``check()`` first holds (polled every 10 ms)."""
    while True:
        if check():
            return time.monotonic()
        await asyncio.sleep(POLL_S)


async def _agent_back(monitor: Monitor) -> float:
    return await _until(lambda: _agent_up(monitor))


async def measure_recovery(opts: RecoveryOptions, data_dir: Path) -> dict[str, Any]:
    server = EmbeddedPostgres(data_dir / "pg").start()
    agent_db = console_db = None
    monitors: list[Monitor] = []
    try:
        await prepare_database(server.dsn)
        config = bench_config(server.dsn)
        agent_db = Database(server.dsn, PoolSettings())
        console_db = Database(server.dsn, PoolSettings())
        spool = data_dir / "spool"
        agent = build_services(config, agent_db, role=MonitorRole.AGENT, spool_dir=spool).monitor
        console = build_services(config, console_db, spool_dir=spool).monitor
        monitors = [agent, console]
        console_up: asyncio.Event = asyncio.Event()
        console_at: list[float] = []

        def on_snapshot(snap: Snapshot) -> None:
            if snap.db is not None and snap.db.up and not console_up.is_set():
                console_at.append(time.monotonic())
                console_up.set()

        console.subscribe(on_snapshot)
        for m in monitors:
            await m.start()
        results: dict[str, list[float]] = {"agent": [], "console": []}
        for n in range(opts.outages):
            await asyncio.wait_for(asyncio.gather(console_up.wait(), _agent_back(agent)), opts.timeout_s)
            await asyncio.sleep(opts.settle_s)
            await asyncio.to_thread(server.stop)
            await _until(lambda: not _agent_up(agent) and not _console_up(console))  # both noticed
            console_up.clear()
            console_at.clear()
            await asyncio.sleep(opts.outage_s)
            accepting = asyncio.create_task(_accepting(server.dsn))
            await asyncio.to_thread(server.start)
            ready_at = await asyncio.wait_for(accepting, opts.timeout_s)
            agent_at = await asyncio.wait_for(_agent_back(agent), opts.timeout_s)
            await asyncio.wait_for(console_up.wait(), opts.timeout_s)
            results["agent"].append(max(0.0, agent_at - ready_at))
            results["console"].append(max(0.0, console_at[0] - ready_at))
            opts.log(
                f"outage {n + 1}/{opts.outages}: agent {results['agent'][-1]:.2f} s,"
                f" console {results['console'][-1]:.2f} s after the server accepted connections"
            )
        return {
            "bench": "recovery",
            "outages": opts.outages,
            "outage_s": opts.outage_s,
            "agent": summary(results["agent"]),
            "console": summary(results["console"]),
        }
    finally:
        for m in monitors:
            with contextlib.suppress(Exception):
                await m.stop()
        for db in (agent_db, console_db):
            if db is not None:
                await db.close()
        server.stop()


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="bench.recovery", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    p.add_argument("--outages", type=int, default=5, help="outages to measure (default 5)")
    p.add_argument("--outage", dest="outage_s", type=float, default=30.0, help="outage, s (default 30)")
    p.add_argument("--settle", dest="settle_s", type=float, default=3.0, help="pause between outages, s")
    p.add_argument("--json-only", action="store_true", help="print only the JSON line")
    p.add_argument("--log-level", default="ERROR", help="opswatch log level on stderr (default ERROR)")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.outages < 1 or args.outage_s <= 0 or args.settle_s < 0:
        print("bench.recovery: --outages must be >= 1 and --outage > 0", file=sys.stderr)
        return 2
    logger.remove()
    logger.add(sys.stderr, level=args.log_level.upper())
    say = (lambda _m: None) if args.json_only else (lambda m: print(m, flush=True))
    opts = RecoveryOptions(args.outages, args.outage_s, args.settle_s, log=say)
    with tempfile.TemporaryDirectory(prefix="opswatch-bench-recovery-") as tmp:
        result = asyncio.run(measure_recovery(opts, Path(tmp)))
    if not args.json_only:
        print(f"\nrecovery after a {args.outage_s:g} s outage, {args.outages} outage(s):")
        print("| face | p50 | p95 | max |\n|---|---|---|---|")
        for face in ("console", "agent"):
            s = result[face]
            print(f"| {face} | {s['p50_s']:.2f} s | {s['p95_s']:.2f} s | {s['max_s']:.2f} s |")
    print(json.dumps(result, separators=(",", ":")))
    return 0


if __name__ == "__main__":
    sys.exit(main())
