"""Console benchmark: 50 probed endpoints and 1,000,000 dead letters behind the screens.

    .venv/bin/python -m bench.tui                 # embedded PostgreSQL in a temp dir (seeds ~2 min)
    .venv/bin/python -m bench.tui --idle 60 --presses 200
    OPSWATCH_BENCH_DSN=postgresql://... .venv/bin/python -m bench.tui   # a server you own
                                        # (creates database opswatch_bench_tui, reused if seeded)

Runs the real OpsWatchApp headless (``App.run_test``) on the real Monitor, with the indexes
``opswatch db advise`` recommends, and reports:

* idle CPU of this process in wall mode (process CPU time over the window, % of one core),
  measured after one full wall cycle, next to the same Monitor without any UI and an empty
  Textual app (Textual's own idle cost);
* key -> updated DLQ table: key sent through the driver, until the end of the first frame that
  started after the table changed (cursor moved or a page was written); j / k / page down;
* opening the dead-letter screen (first page painted) in fresh apps once the console has
  settled (screens pre-built, ``app.settled``), the same with pre-building off (``cold``), and
  re-opening it;
* RSS of the process (current and peak).

The 50 endpoints are served by a tiny HTTP server in a child process (its CPU is not counted),
with keep-alive like Node's http server.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import asyncpg

from bench.triage import seed, with_database
from core.config import Config, loads_config
from core.db import Database, PoolSettings
from core.embedded import free_port, running
from core.migrate import init_app_schema, migrate
from core.runtime import MonitorRole, build_services
from core.triage.advise import apply_advice

ENDPOINT_SERVER = """
import http.server, sys
class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, like Node's http server
    def do_GET(self):
        self.send_response(200); self.send_header("Content-Length", "2"); self.end_headers()
        self.wfile.write(b"ok")
    def log_message(self, *a): pass
http.server.ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), H).serve_forever()
"""


@contextmanager
def server() -> Iterator[str]:
    """An embedded PostgreSQL in a temporary directory, or $OPSWATCH_BENCH_DSN as is."""
    external = os.environ.get("OPSWATCH_BENCH_DSN")
    if external:
        yield external
        return
    with (
        tempfile.TemporaryDirectory(prefix="opswatch-bench-tui-pg-") as tmp,
        running(Path(tmp), progress=lambda m: print(f"# {m}", file=sys.stderr)) as pg,
    ):
        yield pg.dsn


def config_for(dsn: str, port: int, endpoints: int, log_dir: str) -> Config:
    lines = [
        "database:",
        f"  dsn: {dsn}",
        "probes:",
        "  interval: 10s",
        "ui:",
        "  refresh_interval: 1s",
        "  wall:",
        "    cycle_interval: 15s",
        "logging:",
        f"  directory: {log_dir}",
        "endpoints:",
    ]
    for i in range(endpoints):
        lines += [f"  - name: pos-{i:02d}", f"    url: http://127.0.0.1:{port}/ep/{i}"]
    return loads_config("\n".join(lines) + "\n")


def rss_mb() -> tuple[float, float]:
    """(current, peak) resident set size of this process in MB."""
    current = 0.0
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                current = int(line.split()[1]) / 1024
    return current, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def until(pilot: Any, check: Callable[[], object], limit: float = 30.0) -> None:
    """Poll without Pilot.pause (which forces a repaint and would distort the timings)."""
    deadline = time.perf_counter() + limit
    while not check():
        if time.perf_counter() > deadline:
            raise TimeoutError("benchmark step did not finish")
        await asyncio.sleep(0.0005)


def build(config: Config, *, wall: bool, prebuild: bool = True) -> tuple[Any, Database]:
    from tui.app import OpsWatchApp

    d = config.database
    assert d.dsn is not None
    db = Database(d.dsn, PoolSettings(min_size=1, max_size=d.pool_max))
    services = build_services(config, db, role=MonitorRole.WALL if wall else MonitorRole.CONSOLE)
    return OpsWatchApp(services, wall=wall, theme="dark", environ={}, prebuild=prebuild), db


async def measure_idle(config: Config, seconds: float) -> dict[str, float]:
    app, db = build(config, wall=True)
    try:
        async with app.run_test(headless=True, size=(200, 60)) as pilot:
            await until(pilot, lambda: app.snapshot.endpoints and app.snapshot.dlq is not None)
            await until(pilot, lambda: app.settled)
            # steady state: one full wall cycle first (each screen's first visit lays it out),
            # plus the first probe round
            wall = config.ui.wall
            await asyncio.sleep(len(wall.screens) * wall.cycle_interval + 5)
            cpu0, wall0 = time.process_time(), time.perf_counter()
            await asyncio.sleep(seconds)
            cpu = time.process_time() - cpu0
            elapsed = time.perf_counter() - wall0
            up = sum(1 for e in app.snapshot.endpoints if e.state.value == "up")
    finally:
        await db.close()
    return {"cpu_pct": 100 * cpu / elapsed, "seconds": elapsed, "endpoints_up": up}


async def measure_empty_app(seconds: float) -> float:
    """An empty Textual app at the same size: what Textual itself costs while idle."""
    from textual.app import App, ComposeResult
    from textual.widgets import Static

    class Empty(App[None]):
        def compose(self) -> ComposeResult:
            yield Static("idle")

    async with Empty().run_test(headless=True, size=(200, 60)):
        await asyncio.sleep(2)
        cpu0, wall0 = time.process_time(), time.perf_counter()
        await asyncio.sleep(seconds)
        return 100 * (time.process_time() - cpu0) / (time.perf_counter() - wall0)


async def measure_core_only(config: Config, seconds: float) -> float:
    """The same Monitor without any UI: the share of idle CPU that is not the console's."""
    d = config.database
    assert d.dsn is not None
    db = Database(d.dsn, PoolSettings(min_size=1, max_size=d.pool_max))
    monitor = build_services(config, db, read_only=True).monitor
    try:
        await monitor.start()
        await asyncio.sleep(12)
        cpu0, wall0 = time.process_time(), time.perf_counter()
        await asyncio.sleep(seconds)
        return 100 * (time.process_time() - cpu0) / (time.perf_counter() - wall0)
    finally:
        await monitor.stop()
        await db.close()


class PaintProbe:
    """Stamps when the DLQ table's visible state changes and when frames are painted.

    Key latency = key sent -> end of the first frame that *started* after the table changed
    (the cursor moved, or a page was written into the table).
    """

    def __init__(self, screen: Any) -> None:
        self.frames: list[tuple[float, float]] = []
        self.changed_at = 0.0
        refresh = screen._compositor_refresh

        def timed_refresh(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            result = refresh(*args, **kwargs)
            if screen.is_current:
                self.frames.append((started, time.perf_counter()))
            return result

        screen._compositor_refresh = timed_refresh
        table = screen.table
        sync, watch = table.sync, table.watch_cursor_coordinate

        def stamped_sync(*args: Any, **kwargs: Any) -> None:
            sync(*args, **kwargs)
            self.changed_at = time.perf_counter()

        def stamped_watch(old: Any, new: Any) -> None:
            watch(old, new)
            self.changed_at = time.perf_counter()

        table.sync = stamped_sync
        table.watch_cursor_coordinate = stamped_watch

    async def painted_after(self, since: float, limit: float = 10.0, *, changed: bool = True) -> float:
        """End of the first frame after the table changed (``changed=False``: or after ``since``)."""
        deadline = time.perf_counter() + limit
        while True:
            if self.changed_at >= since or not changed:
                after = max(since, self.changed_at)
                frame = next((end for start, end in self.frames if start >= after), None)
                if frame is not None:
                    return frame
            if time.perf_counter() > deadline:
                raise TimeoutError("the table did not change on screen")
            await asyncio.sleep(0.0005)


def send_key(app: Any, key: str) -> None:
    """Deliver a key the way the terminal driver does (Pilot.press also waits for idle, which
    would add its polling granularity to every measurement)."""
    from textual import events

    app._driver.send_message(events.Key(key, key if len(key) == 1 else None))


def page_loading(app: Any, screen: Any) -> bool:
    return any(w.node is screen and w.group == "page" and not w.is_finished for w in app.workers)


async def open_dead_letters(app: Any, pilot: Any) -> tuple[Any, Any, float]:
    """Press 3 on the overview; (screen, probe, ms until the first page is painted)."""
    from tui.screens.triage import DeadLettersScreen

    screen = app.built_screen("dead_letters")
    probe = PaintProbe(screen) if screen is not None else None
    started = time.perf_counter()
    send_key(app, "3")
    await until(pilot, lambda: isinstance(app.screen, DeadLettersScreen), limit=10)
    if screen is None:  # built now: probe it before its first page arrives
        screen = app.screen
        await until(pilot, lambda: screen.query("#triage-table"), limit=10)
        if screen.page_loads:
            raise RuntimeError("the first page arrived before the probe was installed")
        probe = PaintProbe(screen)
    assert probe is not None
    await until(pilot, lambda: screen.page_loads >= 1 and not page_loading(app, screen))
    return screen, probe, (await probe.painted_after(started, changed=False) - started) * 1000


async def measure_keys(config: Config, presses: int, opens: int) -> dict[str, Any]:
    open_ms: list[float] = []
    cold_ms: list[float] = []
    reopen_ms: list[float] = []
    key_ms: dict[str, list[float]] = {"j": [], "k": [], "pagedown": []}
    total = 0
    for attempt in range(opens):
        for prebuild in (False, True):
            app, db = build(config, wall=False, prebuild=prebuild)
            try:
                async with app.run_test(headless=True, size=(160, 48)) as pilot:
                    await until(pilot, lambda a=app: a.snapshot.dlq is not None)  # type: ignore[misc]
                    await until(pilot, lambda a=app: a.settled)  # type: ignore[misc]
                    await asyncio.sleep(0.5)
                    screen, probe, ms = await open_dead_letters(app, pilot)
                    (open_ms if prebuild else cold_ms).append(ms)
                    if not prebuild:
                        continue
                    send_key(app, "1")
                    await until(pilot, lambda s=screen: not s.is_current, limit=10)  # type: ignore[misc]
                    await asyncio.sleep(0.3)
                    started = time.perf_counter()
                    send_key(app, "3")
                    await until(pilot, lambda s=screen: s.is_current, limit=10)  # type: ignore[misc]
                    shown = time.perf_counter()
                    await until(pilot, lambda p=probe, t=shown: any(a >= t for a, _ in p.frames))  # type: ignore[misc]
                    reopen_ms.append((next(b for a, b in probe.frames if a >= shown) - started) * 1000)
                    if attempt:
                        continue
                    await asyncio.sleep(0.3)
                    pattern = ["j", "j", "j", "k", "pagedown"]
                    for i in range(presses):
                        key = pattern[i % len(pattern)]
                        t0 = time.perf_counter()
                        send_key(app, key)
                        key_ms[key].append((await probe.painted_after(t0) - t0) * 1000)
                        await asyncio.sleep(0.05)  # a fast typist, not a key-repeat flood
                    total = screen.page.total if screen.page else 0
            finally:
                await db.close()
    all_keys = [v for values in key_ms.values() for v in values]
    return {
        "open_ms": open_ms,
        "cold_ms": cold_ms,
        "reopen_ms": reopen_ms,
        "keys": key_ms,
        "all": all_keys,
        "pending": total,
    }


async def prepare(admin_dsn: str, rows: int, fresh: bool) -> str:
    name = "opswatch_bench_tui"
    admin = await asyncpg.connect(admin_dsn)
    try:
        exists = await admin.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name)
        if exists and fresh:
            await admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
            exists = None
        if not exists:
            await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    dsn = with_database(admin_dsn, name)
    conn = await asyncpg.connect(dsn)
    try:
        await init_app_schema(conn)
        await migrate(conn)
        have = await conn.fetchval("SELECT count(*) FROM dead_letter_messages")
        if have != rows:
            await conn.execute(
                "TRUNCATE dead_letter_messages, event_failures, social_messages, social_channels, businesses "
                "RESTART IDENTITY CASCADE"
            )
            await seed(conn, rows)
        config = loads_config(f"database:\n  dsn: {dsn}\n")
        for sql in await apply_advice(conn, config, progress=lambda s: print(f"# {s}", file=sys.stderr)):
            del sql
        await conn.execute("ANALYZE")
    finally:
        await conn.close()
    return dsn


async def run(args: argparse.Namespace) -> None:
    load_before = " ".join(f"{v:.2f}" for v in os.getloadavg())
    port = free_port()
    http = subprocess.Popen([sys.executable, "-c", ENDPOINT_SERVER, str(port)])
    try:
        with server() as admin_dsn, tempfile.TemporaryDirectory(prefix="opswatch-bench-tui-") as tmp:
            started = time.perf_counter()
            dsn = await prepare(admin_dsn, args.rows, args.fresh)
            print(f"# data ready in {time.perf_counter() - started:.1f}s", file=sys.stderr)
            config = config_for(dsn, port, args.endpoints, str(Path(tmp) / "logs"))
            keys = await measure_keys(config, args.presses, args.opens)
            idle = await measure_idle(config, args.idle)
            core_only = await measure_core_only(config, args.idle)
            empty = await measure_empty_app(min(args.idle, 30.0))
            current, peak = rss_mb()
    finally:
        http.terminate()
        http.wait()

    print(
        f"TUI benchmark: {args.endpoints} endpoints, {args.rows:,} dead letters "
        f"({keys['pending']:,} pending), python {sys.version.split()[0]}, {os.cpu_count()} cores"
    )
    print(
        f"idle CPU, wall mode, {idle['seconds']:.0f} s: {idle['cpu_pct']:.2f} % of one core "
        f"({idle['endpoints_up']:.0f}/{args.endpoints} endpoints up)   target <= 2 %"
    )
    print(f"  of which core (the same Monitor, no UI, {args.idle:.0f} s): {core_only:.2f} %")
    print(f"  an empty Textual app idles at {empty:.2f} %")
    load = " ".join(f"{v:.2f}" for v in os.getloadavg())
    print(f"  load average {load_before} at the start, {load} at the end (1, 5, 15 min)")
    every = keys["all"]
    print(
        f"key -> updated DLQ table, {len(every)} presses: p50 {statistics.median(every):.1f} ms, "
        f"p95 {pct(every, 0.95):.1f} ms, max {max(every):.1f} ms   target p95 <= 100 ms"
    )
    for key, values in keys["keys"].items():
        if values:
            print(
                f"  {key:<8} n={len(values):3d}  p50 {statistics.median(values):6.1f} ms  "
                f"p95 {pct(values, 0.95):6.1f} ms"
            )
    opened, cold = keys["open_ms"], keys["cold_ms"]
    print(
        f"open dead-letter screen (first page shown), {len(opened)} fresh apps: "
        f"median {statistics.median(opened):.0f} ms, max {max(opened):.0f} ms   target <= 300 ms"
    )
    print(
        f"  without pre-built screens (cold), {len(cold)} fresh apps: "
        f"median {statistics.median(cold):.0f} ms, max {max(cold):.0f} ms"
    )
    again = keys["reopen_ms"]
    print(f"re-open it (screen already built), {len(again)} times: median {statistics.median(again):.0f} ms")
    print(f"RSS: {current:.0f} MB now, {peak:.0f} MB peak   target <= 200 MB")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=1_000_000, help="dead letters to seed")
    parser.add_argument("--endpoints", type=int, default=50)
    parser.add_argument("--idle", type=float, default=60.0, help="idle window in seconds")
    parser.add_argument("--presses", type=int, default=200)
    parser.add_argument("--opens", type=int, default=5, help="fresh apps for the open-screen timing")
    parser.add_argument("--fresh", action="store_true", help="re-create the benchmark database")
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
