"""README screenshots from the live demo: docs/overview.svg and docs/dead-letters.svg.

    .venv/bin/python -m bench.screenshots                 # ~20 s: a fresh demo (seed 1), 160x30
    .venv/bin/python -m bench.screenshots --out /tmp/shots --size 160x48

Starts the real demo environment (embedded PostgreSQL in a temporary directory, fake backend,
simulator, Slack sink) and the console with ``App.run_test``; waits until the overview shows
probe results, the dead-letter count and a firing critical alert next to a warning, saves it,
then opens the dead-letter screen (3), moves the cursor to a row (one with a WhatsApp template
error if there is one) so the detail pane shows its error and payload, and saves that.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent


def log(message: str) -> None:
    print(f"# {message}", file=sys.stderr, flush=True)


async def until(check: Callable[[], object], what: str, limit: float) -> None:
    deadline = time.monotonic() + limit
    while not check():
        if time.monotonic() > deadline:
            raise TimeoutError(f"gave up waiting for {what} after {limit:.0f}s")
        await asyncio.sleep(0.1)


def alert_moment(app: Any) -> bool:
    """Probe results on every tile, the DLQ count, a firing critical alert and a warning."""
    snap = app.snapshot
    firing = [a for a in snap.alerts if a.state in ("firing", "flapping")]
    return (
        bool(snap.endpoints)
        and all(e.last_checked is not None for e in snap.endpoints)
        and snap.dlq is not None
        and snap.dlq.pending > 0
        and snap.events is not None
        and snap.db_stats is not None
        and any(a.severity.value == "critical" and a.rule == "api-down" for a in firing)
        and any(a.severity.value == "warning" for a in firing)
    )


def pick_row(rows: Any, fallback: int) -> int:
    """The first row (within the first screenful) whose error is about a WhatsApp template:
    its payload carries the template and its parameters; else row ``fallback``."""
    for i, r in enumerate(rows[:20]):
        if "template" in r.error_first_line.lower():
            return int(i)
    return min(fallback, len(rows) - 1)


def settled(app: Any) -> bool:
    """Every tile has been painted from the newest snapshot and none is marked stale."""
    screen = app.screen
    return screen.applied is app.snapshot and not screen.query(".-stale")


def save(app: Any, path: Path, title: str) -> None:
    path.write_text(app.export_screenshot(title=title), encoding="utf-8")
    log(f"wrote {path.relative_to(REPO) if path.is_relative_to(REPO) else path}")


async def take(out: Path, size: tuple[int, int], seed: int, speed: float, row: int) -> None:
    from core.demo.environment import DemoEnvironment
    from core.runtime import build_services, database_for, start_observability
    from tui.app import OpsWatchApp
    from tui.screens.triage import DeadLettersScreen

    with tempfile.TemporaryDirectory(prefix="opswatch-screenshots-") as tmp:
        env = DemoEnvironment(Path(tmp) / "demo", seed=seed, speed=speed, progress=log)
        await env.start()
        try:
            config = env.config()
            buffer = start_observability(config, console=False, log_dir=Path(tmp) / "logs")
            db = database_for(config, env.dsn)
            app = OpsWatchApp(build_services(config, db, log_buffer=buffer), theme="dark", environ={})
            try:
                async with app.run_test(headless=True, size=size) as pilot:
                    await until(lambda: alert_moment(app), "an alert on the overview", 60)
                    await until(lambda: settled(app), "every overview panel current", 15)
                    await pilot.pause()
                    save(app, out / "overview.svg", "opswatch demo · overview")

                    await pilot.press("3")
                    await until(lambda: isinstance(app.screen, DeadLettersScreen), "the DLQ screen", 10)
                    screen = app.screen
                    assert isinstance(screen, DeadLettersScreen)
                    await until(lambda: screen.page_loads >= 1 and screen.page, "the first DLQ page", 10)
                    assert screen.page is not None
                    index = pick_row(screen.page.rows, row)
                    target = screen.page.rows[index]
                    for _ in range(3 * len(screen.page.rows)):  # the live page may shift under us
                        ids = [r.id for r in screen.page.rows]
                        here = screen.current_id()
                        if here == target.id or target.id not in ids:
                            break
                        down = here not in ids or ids.index(here) < ids.index(target.id)
                        await pilot.press("j" if down else "k")
                    await until(
                        lambda: screen.detail is not None and screen.detail.row.id == target.id,
                        f"the detail of dead letter #{target.id}",
                        10,
                    )
                    await asyncio.sleep(0.3)
                    await pilot.pause()
                    save(app, out / "dead-letters.svg", "opswatch demo · dead letters")
            finally:
                await db.close()
        finally:
            await env.stop()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--out", type=Path, default=REPO / "docs", help="output directory (default docs/)")
    parser.add_argument("--size", default="160x30", help="terminal size, COLSxROWS (default 160x30)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--speed", type=float, default=30.0)
    parser.add_argument("--row", type=int, default=2, help="DLQ row to show (0-based)")
    args = parser.parse_args()
    cols, _, rows = args.size.partition("x")
    args.out.mkdir(parents=True, exist_ok=True)
    asyncio.run(take(args.out.resolve(), (int(cols), int(rows)), args.seed, args.speed, args.row))


if __name__ == "__main__":
    main()
