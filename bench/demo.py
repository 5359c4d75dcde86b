"""Demo start-up: `opswatch demo` from launch to a full first paint of the overview.

    .venv/bin/python -m bench.demo                     # 3 first runs + 5 second runs, both ways (~4 min)
    .venv/bin/python -m bench.demo --first 1 --second 3 --breakdown 1
    .venv/bin/python -m bench.demo --no-breakdown      # terminal runs only

"Full first paint": the console shows the overview with real data, i.e. an endpoint tile with
a probe result (state and a measured latency), the dead-letter tile with a count and the
database tile up; not just the first frame. A first run gets an empty data directory (initdb);
second runs reuse it (after a first run that lasted ``--first-dwell`` seconds).

Terminal runs (what a user sees): ``opswatch demo --data-dir D`` in a detached tmux session on a
private socket at 160x48; ``tmux capture-pane`` is polled every 50 ms from the moment tmux is asked
to start, until the screen shows the full paint. Progress lines are stamped when they appear.
After ``--dwell`` seconds the bench presses q and times quit -> process exit.

Breakdown runs: a new ``python -m bench.demo --breakdown-once D`` process per run executes the
code path of cli/commands/demo.py (CLI parser, DemoEnvironment.start, start_observability,
core.runtime.running_services, OpsWatchApp) with ``App.run_test`` (headless, 160x48) in place of the terminal
driver, and stamps every step from the moment the parent launched it. On a second run, the first paint
may show the probe results restored from the previous run; "full paint with a probe of this
run" waits for a tile with a probe taken by this process.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
SIZE = (160, 48)
POLL_S = 0.05
TARGET_FIRST_S = 15.0
TARGET_SECOND_S = 5.0

OVERVIEW = re.compile(r"opswatch · Overview")
DLQ_COUNT = re.compile(r"[│┃╏] pending \d")
ENDPOINT_RESULT = re.compile(r"now \d[\d.]*m?s ")
DB_UP = re.compile(r"● UP  rtt \d")
EXIT_MARK = re.compile(r"\[bench exit (\d+)\]")

BREAKDOWN_STEPS = (
    ("cli", "interpreter + imports + CLI parser"),
    ("pg_start", "PostgreSQL: initdb (first run) + start"),
    ("initdb", "  of which initdb"),
    ("schema", "database + app schema + migrations"),
    ("parts", "fake backend, Slack sink, simulator"),
    ("env_up", "= environment up"),
    ("app_built", "logging, Monitor, OpsWatchApp built"),
    ("first_frame", "first frame (empty overview)"),
    ("monitor_started", "Monitor.start() returned (restore done)"),
    ("dlq_snapshot", "first snapshot with the DLQ summary"),
    ("fresh_probe", "first probe of this run in a snapshot"),
    ("paint", "= full first paint"),
    ("paint_fresh", "full paint with a probe of this run"),
)


# -- shared helpers --------------------------------------------------------------------------------


def loadavg() -> float:
    with open("/proc/loadavg") as f:
        return float(f.read().split()[0])


def summarize(values: list[float]) -> dict[str, float | int | None]:
    if not values:
        return {"n": 0, "median": None, "max": None, "min": None}
    return {
        "n": len(values),
        "median": round(statistics.median(values), 2),
        "max": round(max(values), 2),
        "min": round(min(values), 2),
    }


def fmt(stats: dict[str, Any]) -> str:
    if not stats["n"]:
        return "-"
    return f"{stats['median']:6.2f} s  (max {stats['max']:.2f}, n={stats['n']})"


# -- terminal runs (tmux) --------------------------------------------------------------------------


def require_tmux() -> None:
    if shutil.which("tmux") is None:
        raise SystemExit("bench.demo: tmux is not installed (apt-get install tmux), or use --no-terminal")


class Tmux:
    runs = 0

    def __init__(self) -> None:
        require_tmux()
        Tmux.runs += 1
        # one server per run: a new session on a server that is still shutting down fails
        self.socket = f"opswatch-bench-demo-{os.getpid()}-{Tmux.runs}"

    def __call__(self, *args: str, check: bool = True) -> str:
        result = subprocess.run(
            ["tmux", "-L", self.socket, "-f", "/dev/null", *args], capture_output=True, text=True, check=False
        )
        if check and result.returncode != 0:
            raise RuntimeError(f"tmux {args[0]} failed: {result.stderr.strip()}")
        return result.stdout

    def capture(self) -> str:
        return self("capture-pane", "-p", "-t", "demo", check=False)

    def kill(self) -> None:
        path = self("display-message", "-p", "#{socket_path}", check=False).strip()
        self("kill-server", check=False)
        if path:
            Path(path).unlink(missing_ok=True)


def painted(screen: str) -> dict[str, bool]:
    return {
        "overview": bool(OVERVIEW.search(screen)),
        "endpoint": bool(ENDPOINT_RESULT.search(screen)),
        "dlq": bool(DLQ_COUNT.search(screen)),
        "db": bool(DB_UP.search(screen)),
    }


def terminal_run(data_dir: Path, dwell: float, timeout: float = 90.0) -> dict[str, Any]:
    tmux = Tmux()
    opswatch = Path(sys.executable).parent / "opswatch"
    command = [str(opswatch), "demo", "--data-dir", str(data_dir)]
    # keep the pane after exit so the last screen (and any error) can be read
    shell = f'{shlex.join(command)}; echo "[bench exit $?]"; sleep 600'
    width, height = SIZE
    load0 = loadavg()
    marks: dict[str, float] = {}
    progress: dict[str, float] = {}
    screen = ""
    t0 = time.monotonic()
    subprocess.run(
        ["tmux", "-L", tmux.socket, "-f", "/dev/null", "new-session", "-d", "-s", "demo",
         "-x", str(width), "-y", str(height), "-c", str(REPO), shell],
        check=True,
    )  # fmt: skip
    try:
        while True:
            now = time.monotonic() - t0
            screen = tmux.capture()
            for line in screen.splitlines():
                if line.startswith("opswatch demo: ") and line not in progress:
                    progress[line] = now
            seen = painted(screen)
            for name, ok in seen.items():
                if ok and name not in marks:
                    marks[name] = now
            if all(seen.values()):
                marks["paint"] = now
                break
            if EXIT_MARK.search(screen):
                raise RuntimeError("opswatch demo exited before the first paint:\n" + screen)
            if now > timeout:
                raise RuntimeError(f"no full paint within {timeout:.0f}s; last screen:\n" + screen)
            time.sleep(POLL_S)
        painted_screen = screen
        time.sleep(dwell)
        tmux("send-keys", "-t", "demo", "q")
        quit_at = time.monotonic()
        while True:
            screen = tmux.capture()
            match = EXIT_MARK.search(screen)
            if match:
                exit_s = time.monotonic() - quit_at
                code = int(match.group(1))
                break
            if time.monotonic() - quit_at > 60:
                raise RuntimeError("opswatch demo did not exit within 60 s of q:\n" + screen)
            time.sleep(POLL_S)
    finally:
        tmux.kill()
    first_progress = min(progress.values(), default=None)
    env_up = next((t for line, t in progress.items() if "environment up" in line), None)
    return {
        "paint_s": round(marks["paint"], 3),
        "first_progress_s": None if first_progress is None else round(first_progress, 3),
        "env_up_line_s": None if env_up is None else round(env_up, 3),
        "overview_s": round(marks["overview"], 3),
        "quit_to_exit_s": round(exit_s, 3),
        "exit_code": code,
        "progress": [{"at_s": round(t, 3), "line": ln} for ln, t in sorted(progress.items(), key=_second)],
        "load": [load0, loadavg()],
        "screen": painted_screen,
    }


def _second(item: tuple[str, float]) -> float:
    return item[1]


# -- breakdown runs (in-process, one new process per run) -----------------------------------------


class Marks:
    def __init__(self, launched_at: float) -> None:
        self.launched_at = launched_at
        self.at: dict[str, float] = {}

    def stamp(self, name: str, when: float | None = None) -> None:
        if name not in self.at:
            self.at[name] = (time.monotonic() if when is None else when) - self.launched_at


async def breakdown_once(data_dir: Path, launched_at: float, dwell: float) -> dict[str, Any]:
    marks = Marks(launched_at)
    launched_wall = datetime.now(UTC) - timedelta(seconds=time.monotonic() - launched_at)

    from cli.main import build_parser

    args = build_parser().parse_args(["demo", "--data-dir", str(data_dir)])
    marks.stamp("cli")

    from core.demo.environment import DemoEnvironment
    from core.runtime import running_services, start_observability

    def progress(message: str) -> None:
        now = time.monotonic()
        for prefix, mark in (
            ("initialising a new PostgreSQL", "initdb_start"),
            ("starting PostgreSQL", "initdb_end"),
            ("preparing the demo database", "pg_start"),
            ("fake POS backend", "schema"),
            ("traffic simulator running", "parts"),
        ):
            if message.startswith(prefix):
                marks.stamp(mark, now)

    env = DemoEnvironment(args.data_dir, seed=args.seed, speed=args.speed, progress=progress)
    await env.start()
    marks.stamp("env_up")
    try:
        config = env.config()
        buffer = start_observability(config, console=False, log_dir=env.data_dir / "logs")
        from tui.app import OpsWatchApp

        async with running_services(config, env.dsn, log_buffer=buffer) as services:
            app = OpsWatchApp(services, wall=False, theme=None)
            marks.stamp("app_built")
            quit_at = await _run_app(app, marks, launched_wall, dwell)
    finally:
        await env.stop()
    marks.at["quit_to_exit"] = time.monotonic() - quit_at
    at = marks.at
    steps = {
        "cli": at["cli"],
        "initdb": at["initdb_end"] - at["initdb_start"] if "initdb_start" in at else 0.0,
        "pg_start": at["pg_start"] - at["cli"],
        "schema": at["schema"] - at["pg_start"],
        "parts": at["parts"] - at["schema"],
    }
    stamps = ("env_up", "app_built", "first_frame", "monitor_started", "dlq_snapshot", "fresh_probe",
              "paint", "paint_fresh", "quit_to_exit")  # fmt: skip
    return {
        "steps": {k: round(v, 3) for k, v in steps.items()},
        "at": {k: round(at[k], 3) for k in stamps},
    }


async def _run_app(app: Any, marks: Marks, launched_wall: datetime, dwell: float) -> float:
    """Run ``app`` headless until the overview is painted with data; returns when quit was asked."""
    from textual.screen import Screen

    from core.snapshot import EndpointState, Snapshot
    from tui.screens.overview import OverviewScreen
    from tui.widgets.endpoint_tile import EndpointTile

    monitor = app.monitor

    def fresh(view: Any) -> bool:
        return view.last_checked is not None and view.last_checked >= launched_wall

    def on_snapshot(snapshot: Snapshot) -> None:
        if snapshot.dlq is not None:
            marks.stamp("dlq_snapshot")
        if any(fresh(e) for e in snapshot.endpoints):
            marks.stamp("fresh_probe")

    monitor.subscribe(on_snapshot)
    start = monitor.start

    async def timed_start() -> None:
        await start()
        marks.stamp("monitor_started")

    monitor.start = timed_start

    def overview_state(screen: Any) -> tuple[bool, bool]:
        """(data painted, data painted with a probe of this run) for what the overview holds now."""
        if not isinstance(screen, OverviewScreen) or screen.applied is None:
            return False, False
        snap = screen.applied
        if snap.dlq is None or snap.db is None or not snap.db.up:
            return False, False
        views: list[Any] = [t._key[0] for t in screen.query(EndpointTile) if t._key is not None]
        shown = [v for v in views if v.state is not EndpointState.UNKNOWN and v.last_latency_ms is not None]
        return bool(shown), any(fresh(v) for v in shown)

    refresh: Callable[..., Any] = Screen._compositor_refresh

    def timed_refresh(self: Any) -> None:
        current = self is self.app.screen
        data, data_fresh = overview_state(self) if current else (False, False)
        refresh(self)
        if current:
            marks.stamp("first_frame")
            if data:
                marks.stamp("paint")
            if data_fresh:
                marks.stamp("paint_fresh")

    Screen._compositor_refresh = timed_refresh  # type: ignore[method-assign]
    try:
        async with app.run_test(headless=True, size=SIZE):
            deadline = time.monotonic() + 60
            while "paint_fresh" not in marks.at or "paint" not in marks.at:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"no full paint within 60 s: {marks.at}")
                await asyncio.sleep(0.005)
            await asyncio.sleep(dwell)
            quit_at = time.monotonic()
            app.exit()
    finally:
        Screen._compositor_refresh = refresh  # type: ignore[method-assign]
    return quit_at


def breakdown_run(data_dir: Path, dwell: float) -> dict[str, Any]:
    load0 = loadavg()
    launched_at = time.monotonic()
    result = subprocess.run(
        [sys.executable, "-m", "bench.demo", "--breakdown-once", str(data_dir),
         "--launched-at", repr(launched_at), "--dwell", str(dwell)],
        capture_output=True, text=True, cwd=REPO, check=False,
    )  # fmt: skip
    wall = time.monotonic() - launched_at
    lines = [line for line in result.stdout.splitlines() if line.startswith("{")]
    if result.returncode != 0 or not lines:
        raise RuntimeError(f"breakdown run failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")
    out: dict[str, Any] = json.loads(lines[-1])
    out["process_s"] = round(wall, 3)
    out["load"] = [load0, loadavg()]
    return out


# -- orchestration --------------------------------------------------------------------------------


def run_series(
    kind: str,
    runner: Callable[[Path, float], dict[str, Any]],
    base: Path,
    first: int,
    second: int,
    first_dwell: float,
    dwell: float,
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    firsts: list[dict[str, Any]] = []
    seconds: list[dict[str, Any]] = []
    data_dir = base / f"{kind}-0"
    for i in range(max(first, 1 if second else 0)):
        data_dir = base / f"{kind}-{i}"
        shutil.rmtree(data_dir, ignore_errors=True)
        result = runner(data_dir, first_dwell)
        print(f"# {kind} first run {i + 1}: {describe(result)}", file=sys.stderr, flush=True)
        if i < first:
            firsts.append(result)
    for i in range(second):
        result = runner(data_dir, dwell)
        print(f"# {kind} second run {i + 1}: {describe(result)}", file=sys.stderr, flush=True)
        seconds.append(result)
    return firsts, seconds


def describe(result: dict[str, Any]) -> str:
    load = f"load {result['load'][0]:.2f}->{result['load'][1]:.2f}"
    if "paint_s" in result:
        return (
            f"paint {result['paint_s']:.2f}s (environment-up line {result['env_up_line_s']}s, "
            f"overview {result['overview_s']:.2f}s), quit->exit {result['quit_to_exit_s']:.2f}s, {load}"
        )
    at = result["at"]
    return (
        f"paint {at['paint']:.2f}s, fresh {at['paint_fresh']:.2f}s, env up {at['env_up']:.2f}s, "
        f"steps {result['steps']}, {load}"
    )


def report(results: dict[str, Any]) -> None:
    loads = [x for series in results.values() for run in series for x in run["load"]]
    print(
        f"Demo start-up, python {sys.version.split()[0]}, {os.cpu_count()} cores, "
        f"terminal {SIZE[0]}x{SIZE[1]}, "
        f"load average {min(loads, default=0):.2f}-{max(loads, default=0):.2f}"
    )
    figures: dict[str, Any] = {}
    for which, target in (("first", TARGET_FIRST_S), ("second", TARGET_SECOND_S)):
        runs = results.get(f"terminal_{which}", [])
        if runs:
            paint = summarize([r["paint_s"] for r in runs])
            figures[f"terminal_{which}"] = {
                "paint": paint,
                "first_progress": summarize([r["first_progress_s"] for r in runs if r["first_progress_s"]]),
                "env_up_line": summarize([r["env_up_line_s"] for r in runs if r["env_up_line_s"]]),
                "overview": summarize([r["overview_s"] for r in runs]),
                "quit_to_exit": summarize([r["quit_to_exit_s"] for r in runs]),
            }
            f = figures[f"terminal_{which}"]
            print(f"\n{which} run{'s' if len(runs) > 1 else ''}, terminal (tmux):   target < {target:g} s")
            print(f"  launch -> first progress line      {fmt(f['first_progress'])}")
            print(f"  launch -> 'environment up' line    {fmt(f['env_up_line'])}")
            print(f"  launch -> overview on screen       {fmt(f['overview'])}")
            print(f"  launch -> full first paint         {fmt(paint)}")
            print(f"  q -> process exit                  {fmt(f['quit_to_exit'])}")
        runs = results.get(f"breakdown_{which}", [])
        if runs:
            rows: dict[str, dict[str, Any]] = {}
            for key, _ in BREAKDOWN_STEPS:
                source = "steps" if key in runs[0]["steps"] else "at"
                rows[key] = summarize([r[source][key] for r in runs])
            rows["quit_to_exit"] = summarize([r["at"]["quit_to_exit"] for r in runs])
            figures[f"breakdown_{which}"] = rows
            plural = "s" if len(runs) > 1 else ""
            print(f"\n{which} run{plural}, in-process breakdown (run_test), median (max):")
            for key, label in BREAKDOWN_STEPS:
                kind = "step " if key in runs[0]["steps"] else "at   "
                s = rows[key]
                print(f"  {kind} {label:<42} {s['median']:6.2f} s  ({s['max']:.2f})")
            s = rows["quit_to_exit"]
            print(f"  step  {'quit -> environment stopped':<42} {s['median']:6.2f} s  ({s['max']:.2f})")
    load_range = [min(loads, default=0), max(loads, default=0)]
    print(json.dumps({"bench": "demo", "loadavg_1m": load_range, **figures}, separators=(",", ":")))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--first", type=int, default=3, help="first runs (fresh data directory) per kind")
    parser.add_argument("--second", type=int, default=5, help="second runs (reused data directory) per kind")
    parser.add_argument(
        "--breakdown",
        type=int,
        default=None,
        help="breakdown runs of each kind (default: the same counts as the terminal runs)",
    )
    parser.add_argument("--no-terminal", action="store_true", help="skip the tmux runs")
    parser.add_argument("--no-breakdown", action="store_true", help="skip the in-process breakdown")
    parser.add_argument("--dwell", type=float, default=3.0, help="seconds the demo runs after the paint")
    parser.add_argument(
        "--first-dwell",
        type=float,
        default=15.0,
        help="seconds a first run lasts after the paint (the data a second run finds)",
    )
    parser.add_argument(
        "--dir",
        type=Path,
        default=None,
        help="where the data directories go (default: a temporary directory)",
    )
    parser.add_argument("--show-screen", action="store_true", help="print the painted screen of the last run")
    parser.add_argument("--breakdown-once", type=Path, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--launched-at", type=float, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.breakdown_once is not None:
        launched = args.launched_at if args.launched_at is not None else time.monotonic()
        print(json.dumps(asyncio.run(breakdown_once(args.breakdown_once, launched, args.dwell))))
        return

    with tempfile.TemporaryDirectory(prefix="opswatch-bench-demo-") as tmp:
        base = args.dir or Path(tmp)
        base.mkdir(parents=True, exist_ok=True)
        results: dict[str, Any] = {}
        if not args.no_terminal:
            require_tmux()
            firsts, seconds = run_series("terminal", terminal_run, base, args.first, args.second,
                                         args.first_dwell, args.dwell)  # fmt: skip
            results["terminal_first"], results["terminal_second"] = firsts, seconds
            if args.show_screen and (seconds or firsts):
                print((seconds or firsts)[-1]["screen"], file=sys.stderr)
        if not args.no_breakdown:
            n_first = args.first if args.breakdown is None else args.breakdown
            n_second = args.second if args.breakdown is None else args.breakdown
            firsts, seconds = run_series("breakdown", breakdown_run, base, n_first, n_second,
                                         args.first_dwell, args.dwell)  # fmt: skip
            results["breakdown_first"], results["breakdown_second"] = firsts, seconds
    report(results)


if __name__ == "__main__":
    main()
