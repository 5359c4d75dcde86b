"""Alert-latency benchmark: a real Monitor on N endpoints; one endpoint flipped to 503 and back.

Run from the repository root (about 2 x interval + window + 100 s per trial)::

    .venv/bin/python -m bench.alerts --n 1000 --trials 3 --seed 1

Same work and semantics as the peer harness (``../shared/peers/prom_bench.py``): the fleet
and the webhook sink are the peer's ``fleet_server.py`` and ``webhook_sink.py`` when they
exist (otherwise equivalents from ``bench.probes --serve-fleet`` / ``bench.alerts
--serve-sink``), each in its own process; every timestamp is CLOCK_MONOTONIC, comparable
across the three processes. opswatch runs in this process: ``core.monitor.Monitor`` with
its own embedded PostgreSQL in a temporary directory (or ``--dsn``), probes every
``--interval`` s with a ``--timeout`` s timeout, rule ``down`` = ``endpoint.up < 1`` and
rule ``slow`` = ``endpoint.latency_ms > 2000``, both ``for: --for`` s, ``group_wait`` 0,
Slack webhook = the sink's ``/slack``.

Per trial: flip one endpoint to 503 at T0 (the fleet's stamp), wait for the firing Slack
message, restore it at T1, wait for the resolved message. Reported:

* firing after ``for``: webhook received - first failed probe served - ``for`` (target <= 1 s);
* firing after T0: webhook received - T0 (what the peer reports, ~39-40 s with for = 30 s);
* resolved after first good probe: webhook received - first good probe served (target <= 1 s);
* resolved after T1: webhook received - T1 (the peer's figure, ~11.5 s).

Before the trials, a steady window without faults measures CPU per probe and RSS of this
process, and CPU and PSS of its PostgreSQL (embedded only).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import random
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.alert_trials import AlertBenchOptions, describe, run_trial
from bench.alert_trials import rounded as _r
from bench.fleet import (
    ROOT,
    Fleet,
    cpu_seconds,
    emit,
    free_port,
    load_average,
    postmaster_pid,
    prepare_database,
    rss_mb,
    tree_usage,
)
from bench.sink import Sink, serve_sink

DOWN_RULE, SLOW_RULE = "down", "slow"
TARGETS = {"firing_after_for_s": 1.0, "resolved_after_first_ok_s": 1.0}
# ../shared/peers/README.md: N = 1000 and N = 100, interval 10 s, for 30 s, group_wait 0 s.
PEER = {
    "name": "Prometheus 2.42 + blackbox_exporter 0.23 + Alertmanager 0.25",
    "firing_after_t0_s": (39.2, 40.0),
    "resolved_after_t1_s": (11.5, 11.5),
}


# --------------------------------------------------------------------------- configuration


def bench_config(
    *, n: int, fleet: str, sink: str, dsn: str, interval: float, timeout: float, for_s: float,
    slow_ms: float = 2000.0, flush_interval: float = 5.0,
) -> dict[str, Any]:  # fmt: skip
    """opswatch configured like the peer: probe, rules down/slow with ``for``, group_wait 0, Slack = sink."""
    return {
        "database": {"dsn": dsn, "pool_min": 1, "pool_max": 5},
        "endpoints": [
            {"name": f"ep{i}", "url": f"{fleet}/ep/{i}", "interval": interval, "timeout": timeout}
            for i in range(n)
        ],
        "probes": {"interval": interval, "timeout": timeout, "max_concurrency": 200,
                   "flush_interval": flush_interval},
        "alerts": {
            "evaluation_interval": interval,
            "group_wait": 0,
            "repeat_interval": 86400.0,
            "rules": [
                {"name": DOWN_RULE, "metric": "endpoint.up", "op": "<", "critical": 1, "for": for_s,
                 "description": "Endpoint down"},
                {"name": SLOW_RULE, "metric": "endpoint.latency_ms", "warning": slow_ms, "for": for_s,
                 "description": "Endpoint slow"},
            ],
        },
        "notifications": {"slack": {"enabled": True, "webhooks": {"default": f"{sink}/slack"}}},
    }  # fmt: skip


# --------------------------------------------------------------------------- measurement


class _Timed:
    """Counts and times ``Monitor.metric_samples`` and ``AlertEngine.evaluate`` (wall time)."""

    def __init__(self, monitor: Any) -> None:
        self.samples_s = 0.0
        self.samples_calls = 0
        self.evaluate_s = 0.0
        self.evaluate_calls = 0
        build, evaluate = monitor.metric_samples, monitor.engine.evaluate

        def timed_build(*args: Any, **kw: Any) -> Any:
            t = time.perf_counter()
            try:
                return build(*args, **kw)
            finally:
                self.samples_s += time.perf_counter() - t
                self.samples_calls += 1

        async def timed_evaluate(*args: Any, **kw: Any) -> Any:
            t = time.perf_counter()
            try:
                return await evaluate(*args, **kw)
            finally:
                self.evaluate_s += time.perf_counter() - t
                self.evaluate_calls += 1

        monitor.metric_samples = timed_build
        monitor.engine.evaluate = timed_evaluate

    def snapshot(self) -> tuple[float, int, float, int]:
        return self.samples_s, self.samples_calls, self.evaluate_s, self.evaluate_calls


async def measure_alerts(
    opts: AlertBenchOptions, *, fleet: Fleet, sink: Sink, dsn: str, pg_pid: int | None = None
) -> dict[str, Any]:
    """Run a Monitor against ``fleet`` and return the steady-state and alert-latency figures."""
    from loguru import logger

    from core.config import Config
    from core.db import Database, PoolSettings
    from core.runtime import build_services
    from core.snapshot import EndpointState

    log = opts.log
    rng = random.Random(opts.seed)
    warmup = 2 * opts.interval if opts.warmup is None else opts.warmup
    config = Config.model_validate(bench_config(
        n=opts.n, fleet=fleet.base, sink=sink.base, dsn=dsn, interval=opts.interval, timeout=opts.timeout,
        for_s=opts.for_s, slow_ms=opts.slow_threshold_ms, flush_interval=opts.flush_interval,
    ))  # fmt: skip
    db = Database(dsn, PoolSettings(min_size=config.database.pool_min, max_size=config.database.pool_max))
    monitor = build_services(config, db, actor="bench").monitor
    timed = _Timed(monitor)
    wall_to_mono = time.time() - time.monotonic()
    rss: list[float] = []
    result: dict[str, Any] = {
        "bench": "alerts", "n": opts.n, "interval_s": opts.interval, "timeout_s": opts.timeout,
        "for_s": opts.for_s, "group_wait_s": 0.0, "fleet": fleet.kind, "sink": sink.kind,
        "pg": "embedded" if pg_pid else "external", "source": source_state(),
    }  # fmt: skip

    async def sample_rss() -> None:
        while True:
            rss.append(rss_mb())
            await asyncio.sleep(1.0)

    rss_task = asyncio.create_task(sample_rss())
    started = time.monotonic()
    await monitor.start()
    try:
        # ---- warm-up: every endpoint probed at least once, then settle
        deadline = time.monotonic() + 3 * opts.interval + 30
        while time.monotonic() < deadline:
            if all(w.state is not EndpointState.UNKNOWN for w in monitor.windows.values()):
                break
            await asyncio.sleep(0.2)
        up = sum(1 for w in monitor.windows.values() if w.state is EndpointState.UP)
        result["all_up_after_s"] = round(time.monotonic() - started, 1)
        log(f"{up}/{opts.n} endpoints up {result['all_up_after_s']} s after start; settling {warmup:g} s")
        if up < opts.n:
            raise RuntimeError(f"only {up}/{opts.n} endpoints up after warm-up")
        await asyncio.sleep(warmup)

        # ---- steady window, no faults
        if opts.window > 0:
            result["steady"] = await _steady(opts, monitor, timed, rss, pg_pid, log)

        # ---- fault trials
        step = max(1, opts.n // (opts.trials + 2))
        trials = []
        for i in range(opts.trials):
            ep = (step * (i + 1) + i) % opts.n
            log(f"trial {i + 1}/{opts.trials}: ep{ep} -> 503")
            trials.append(await run_trial(opts, rng, monitor, fleet, sink, ep, DOWN_RULE, {"status": 503},
                                       wall_to_mono, log))  # fmt: skip
            await asyncio.sleep(opts.settle)
        slow = None
        if opts.latency_trial:
            ep = (opts.n - 1 - step // 2) % opts.n
            log(f"latency trial: ep{ep} -> +{opts.slow_delay_ms:g} ms")
            slow = await run_trial(opts, rng, monitor, fleet, sink, ep, SLOW_RULE,
                                {"delay_ms": opts.slow_delay_ms}, wall_to_mono, log)  # fmt: skip
        keys = ("firing_after_for_s", "firing_after_first_bad_s", "firing_after_t0_s", "first_bad_after_t0_s",
                "resolved_after_first_ok_s", "resolved_after_t1_s", "first_ok_after_t1_s")  # fmt: skip
        result["alert_latency"] = {k: describe([t[k] for t in trials]) for k in keys}
        result["trials"] = trials
        result["slow_trial"] = slow
        samples_s, samples_calls, evaluate_s, evaluate_calls = timed.snapshot()
        result["rule_passes"] = {
            "calls": evaluate_calls,
            "metric_samples_ms_mean": _r(1000 * samples_s / samples_calls) if samples_calls else None,
            "evaluate_ms_mean": _r(1000 * evaluate_s / evaluate_calls) if evaluate_calls else None,
        }
        stats = monitor.scheduler.stats() if monitor.scheduler is not None else None
        result["probes_total"] = stats.probes if stats else None
        result["skipped_ticks"] = stats.skipped_ticks if stats else None
    finally:
        rss_task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await rss_task
        with contextlib.suppress(Exception):
            await monitor.stop()
        await db.close()
        logger.complete()
    result["rss_peak_mb"] = round(max(rss), 1) if rss else None
    result["ru_maxrss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    result["targets"] = {k: _met(result, k) for k in TARGETS}
    return result


def source_state() -> dict[str, Any]:
    """Which code was measured: HEAD and the uncommitted files under core/ (read-only git calls)."""

    def git(*args: str) -> str:
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            done = subprocess.run(["git", "-C", str(ROOT), *args], capture_output=True, text=True, timeout=10)
            return done.stdout.rstrip("\n") if done.returncode == 0 else ""
        return ""

    dirty = [line[3:] for line in git("status", "--porcelain", "--", "core").splitlines() if line]
    return {"head": git("rev-parse", "--short", "HEAD") or None, "core_uncommitted": dirty}


def _met(result: dict[str, Any], key: str) -> bool | None:
    worst = result.get("alert_latency", {}).get(key, {}).get("max")
    return None if worst is None else bool(worst <= TARGETS[key])


async def _steady(
    opts: AlertBenchOptions, monitor: Any, timed: _Timed, rss: list[float], pg_pid: int | None,
    log: Callable[[str], None],
) -> dict[str, Any]:  # fmt: skip
    assert monitor.scheduler is not None
    log(f"steady window {opts.window:g} s ...")
    load0 = load_average()
    probes0 = monitor.scheduler.stats().probes
    pg0 = tree_usage(pg_pid) if pg_pid else None
    t0 = timed.snapshot()
    rss_from = len(rss)
    cpu0, wall0 = cpu_seconds(), time.monotonic()
    await asyncio.sleep(opts.window)
    cpu1, wall1 = cpu_seconds(), time.monotonic()
    probes = monitor.scheduler.stats().probes - probes0
    pg1 = tree_usage(pg_pid) if pg_pid else None
    t1 = timed.snapshot()
    seconds = wall1 - wall0
    window_rss = rss[rss_from:] or [rss_mb()]
    cpu = cpu1 - cpu0
    out: dict[str, Any] = {
        "seconds": round(seconds, 2),
        "probes": probes,
        "probes_per_s": round(probes / seconds, 2),
        "cpu_s": round(cpu, 3),
        "cpu_pct_one_core": round(100 * cpu / seconds, 2),
        "cpu_ms_per_probe": round(1000 * cpu / probes, 4) if probes else None,
        "rss_mb_mean": round(statistics.fmean(window_rss), 1),
        "rss_mb_max": round(max(window_rss), 1),
        "rule_passes_per_s": round((t1[3] - t0[3]) / seconds, 2),
        "metric_samples_ms_mean": _r(1000 * (t1[0] - t0[0]) / (t1[1] - t0[1])) if t1[1] > t0[1] else None,
        "evaluate_ms_mean": _r(1000 * (t1[2] - t0[2]) / (t1[3] - t0[3])) if t1[3] > t0[3] else None,
        "loadavg_1m": [load0, load_average()],
    }
    if pg0 is not None and pg1 is not None:
        pg_cpu = pg1[0] - pg0[0]
        out["pg_cpu_s"] = round(pg_cpu, 3)
        out["pg_pss_mb"] = round(pg1[1], 1)
        out["with_pg_cpu_ms_per_probe"] = round(1000 * (cpu + pg_cpu) / probes, 4) if probes else None
        out["with_pg_cpu_pct_one_core"] = round(100 * (cpu + pg_cpu) / seconds, 2)
    log(f"steady: {out['cpu_pct_one_core']} % of one core, {out['cpu_ms_per_probe']} ms CPU/probe, "
        f"RSS {out['rss_mb_mean']} MB; PostgreSQL +{out.get('pg_cpu_s')} s CPU; "
        f"load {out['loadavg_1m']}")  # fmt: skip
    return out


# --------------------------------------------------------------------------- report


def _fmt(value: Any) -> str:
    return "-" if value is None else str(value)


def print_report(r: dict[str, Any]) -> None:
    st = r.get("steady", {})
    al = r.get("alert_latency", {})
    print(f"opswatch Monitor: n={r['n']} interval={r['interval_s']}s timeout={r['timeout_s']}s "
          f"for={r['for_s']}s group_wait=0 fleet={r['fleet']} sink={r['sink']} pg={r['pg']}")  # fmt: skip
    if st:
        print(f"steady {st['seconds']} s (load {st['loadavg_1m'][0]} -> {st['loadavg_1m'][1]}): "
              f"{st['probes_per_s']} probes/s, CPU {st['cpu_ms_per_probe']} ms/probe "
              f"({st['cpu_pct_one_core']} % of one core), "
              f"RSS {st['rss_mb_mean']} MB (max {st['rss_mb_max']}); "
              f"with PostgreSQL {_fmt(st.get('with_pg_cpu_ms_per_probe'))} ms/probe, "
              f"PG PSS {_fmt(st.get('pg_pss_mb'))} MB; rule passes {st['rule_passes_per_s']}/s, "
              f"metric_samples {st['metric_samples_ms_mean']} ms, "
              f"evaluate {st['evaluate_ms_mean']} ms")  # fmt: skip
    rows = [
        ("firing after first failed probe - for (s)", "firing_after_for_s", "<= 1", "~10 (39.2-40.0 - 30)"),
        ("firing after T0 (s)", "firing_after_t0_s", "", "39.2-40.0"),
        ("first failed probe after T0 (s)", "first_bad_after_t0_s", "", ""),
        ("resolved after first good probe (s)", "resolved_after_first_ok_s", "<= 1", ""),
        ("resolved after T1 (s)", "resolved_after_t1_s", "", "11.5"),
        ("first good probe after T1 (s)", "first_ok_after_t1_s", "", ""),
    ]
    table = [("metric", "median", "max", "target", "peer (median)")]
    for label, key, target, peer in rows:
        d = al.get(key, {})
        table.append((label, _fmt(d.get("median")), _fmt(d.get("max")), target, peer))
    widths = [max(len(row[i]) for row in table) for i in range(5)]
    for row in table:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())
    for t in r.get("trials", []) + ([r["slow_trial"]] if r.get("slow_trial") else []):
        g = t.get
        print(f"  {t['rule']} ep{t['ep']}: first bad +{g('first_bad_after_t0_s')} s, "
              f"pending +{g('pending_after_first_bad_s')} s, "
              f"firing after pending {g('firing_after_pending_s')} s, "
              f"webhook +{g('webhook_after_firing_s')} s; "
              f"resolved: first ok +{g('first_ok_after_t1_s')} s, "
              f"state +{g('state_resolved_after_first_ok_s')} s, webhook +{g('webhook_after_resolved_s')} s "
              f"(load {g('loadavg_1m_at_t0')} / {g('loadavg_1m_at_t1')})")  # fmt: skip
    print(f"targets met: {r['targets']}")


# --------------------------------------------------------------------------- main


def run(
    opts: AlertBenchOptions, *, dsn: str | None, own_fleet: bool, own_sink: bool, port: int = 0
) -> dict[str, Any]:
    """Start the fleet, the sink and (without ``dsn``) an embedded PostgreSQL; measure; stop all by pid."""
    from core.embedded import EmbeddedPostgres

    with tempfile.TemporaryDirectory(prefix="opswatch-bench-alerts-") as tmp:
        fleet = Fleet(opts.n, port or free_port(), own=own_fleet)
        sink = Sink(free_port(), Path(tmp) / "sink.jsonl", own=own_sink)
        server: EmbeddedPostgres | None = None
        try:
            fleet.wait_ready()
            sink.wait_ready()
            pg_pid = None
            if dsn is None:
                server = EmbeddedPostgres(Path(tmp) / "pg")
                server.start()
                dsn = server.dsn
                pg_pid = postmaster_pid(server.data_dir)
            asyncio.run(prepare_database(dsn))
            fleet.control(all=True, status=200, delay_ms=0)
            result = asyncio.run(measure_alerts(opts, fleet=fleet, sink=sink, dsn=dsn, pg_pid=pg_pid))
        finally:
            if server is not None:
                server.stop()
            sink.stop()
            fleet.stop()
    return result


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="bench.alerts", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    p.add_argument("--n", type=int, default=1000, help="endpoints (default 1000)")
    p.add_argument("--interval", type=float, default=10.0, help="probe interval, s (default 10)")
    p.add_argument("--timeout", type=float, default=5.0, help="probe timeout, s (default 5)")
    p.add_argument("--for", dest="for_s", type=float, default=30.0, help="rules' for, s (default 30)")
    p.add_argument("--window", type=float, default=60.0, help="steady window before the trials, s (0: skip)")
    p.add_argument("--warmup", type=float, default=None, help="settle once all are up, s (2 x interval)")
    p.add_argument("--trials", type=int, default=3, help="503 down/up trials, one endpoint each (default 3)")
    p.add_argument("--latency-trial", action=argparse.BooleanOptionalAction, default=False,
                   help="also one slow-endpoint trial (rule slow, +--slow-delay-ms)")  # fmt: skip
    p.add_argument("--slow-delay-ms", type=float, default=3000.0, help="delay of the latency trial, ms")
    p.add_argument("--settle", type=float, default=5.0, help="pause between trials, s")
    p.add_argument(
        "--jitter",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="sleep U(0, interval) before each flip (random probe phase at T0; default on)",
    )
    p.add_argument("--seed", type=int, default=None, help="RNG seed for --jitter")
    p.add_argument("--dsn", default=None, help="use this database instead of an embedded PostgreSQL")
    p.add_argument("--port", type=int, default=0, help="fleet port (default: a free one)")
    p.add_argument("--own-fleet", action="store_true", help="aiohttp fleet even if the shared one exists")
    p.add_argument("--own-sink", action="store_true", help="aiohttp sink even if the shared one exists")
    p.add_argument("--json-out", default=None, help="also write the full JSON result to this file")
    p.add_argument("--json-only", action="store_true", help="print only the JSON line")
    p.add_argument("--log-level", default="WARNING", help="opswatch log level on stderr (default WARNING)")
    p.add_argument("--serve-sink", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--out", default=None, help=argparse.SUPPRESS)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.serve_sink:
        serve_sink(args.port, Path(args.out))
        return 0
    if args.n < args.trials + 2:
        raise SystemExit("--n too small for the number of trials")
    from loguru import logger

    logger.remove()
    logger.add(sys.stderr, level=args.log_level.upper())

    def log(message: str) -> None:
        print(f"{time.strftime('%H:%M:%S')} {message}", file=sys.stderr, flush=True)

    opts = AlertBenchOptions(
        n=args.n, interval=args.interval, timeout=args.timeout, for_s=args.for_s, window=args.window,
        warmup=args.warmup, trials=args.trials, latency_trial=args.latency_trial,
        slow_delay_ms=args.slow_delay_ms, settle=args.settle, jitter=args.jitter, seed=args.seed, log=log,
    )  # fmt: skip
    result = run(opts, dsn=args.dsn, own_fleet=args.own_fleet, own_sink=args.own_sink, port=args.port)
    if args.json_out:
        Path(args.json_out).write_text(json.dumps(result, indent=1))
    return emit(result, print_report, json_only=args.json_only)


if __name__ == "__main__":
    raise SystemExit(main())
