"""Probe-engine benchmark: N endpoints on 127.0.0.1, one probe each per interval.

Run from the repository root (about ``duration`` + 5 seconds)::

    .venv/bin/python -m bench.probes --n 1000 --interval 10 --duration 60 --delay-ms 20

The fleet is ``../shared/peers/fleet_server.py`` (the peer harness's fake fleet, stdlib
only) when that file exists, otherwise an equivalent aiohttp fleet from this module
(``--serve-fleet``); either way it runs in its own process so its CPU is not counted.
This process runs the real scheduler, HTTP client and per-endpoint windows (and, with
``--dsn``, the batched sample store) and reports:

* CPU per probe: process CPU time (user + system) over the run / probes completed;
* RSS: peak of VmRSS sampled every second, and the final value;
* scheduling drift: actual start minus planned start (p50 / p99 / max);
* latency error: measured latency minus the delay the fleet injected (p50 / p99).

``--clients`` instead compares HTTP clients on the same fleet (CPU per request).
``--alerts`` runs the alert-latency half instead (``bench.alerts``: a full Monitor, one
endpoint flipped to 503 and back, firing / resolved webhook latency); ``bench.peer`` runs
the Prometheus peer and then ``bench.alerts`` side by side.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import resource
import sys
import time
from collections import Counter
from typing import Any

from bench.fleet import Fleet, cpu_seconds, emit, free_port, load_average, rss_mb
from core.http_client import HttpClient
from core.probes import ProbeSample, ProbeScheduler, ProbeSpec
from core.windows import EndpointWindow, quantile

# /work/shared/peers/README.md, same kind of fleet on this machine (interval 10 s).
PEER = {
    "name": "Prometheus 2.42 + blackbox_exporter 0.23 + Alertmanager 0.25",
    "cpu_ms_per_probe": (2.0, 2.6),  # N=1000, N=100
    "rss_mb": (112.0, 253.0),  # N=100, N=1000
}
TARGETS = {"cpu_ms_per_probe": 0.3, "rss_peak_mb": 150.0, "drift_p99_ms": 50.0, "latency_error_p99_ms": 5.0}


# --------------------------------------------------------------------------- helpers


def pct(values: list[float], q: float) -> float | None:
    return quantile(sorted(values), q) if values else None


# --------------------------------------------------------------------------- probe engine run


async def run_engine(args: argparse.Namespace, fleet: Fleet) -> dict[str, Any]:
    specs = [
        ProbeSpec(name=f"ep{i}", url=f"{fleet.base}/ep/{i}", interval_s=args.interval, timeout_s=args.timeout)
        for i in range(args.n)
    ]
    windows = {spec.name: EndpointWindow(window_s=300.0) for spec in specs}
    errors: list[float] = []
    outcomes: Counter[str] = Counter()
    delay = args.delay_ms
    store = None
    if args.dsn:
        from core.db import Database
        from core.probe_store import ProbeStore

        store = ProbeStore(Database(args.dsn))

    def on_sample(sample: ProbeSample) -> None:
        windows[sample.endpoint].add(sample)
        outcomes[sample.outcome.value] += 1
        if sample.ok:
            errors.append(sample.latency_ms - delay)
        if store is not None:
            store.add(sample)

    expected = int(args.n * (args.duration / args.interval + 1)) + args.n
    scheduler = ProbeScheduler(
        specs, on_sample, max_concurrency=args.concurrency, drift_capacity=expected, slot_s=args.slot_ms / 1e3
    )
    rss_samples: list[float] = []

    async def sample_rss() -> None:
        while True:
            rss_samples.append(rss_mb())
            await asyncio.sleep(1.0)

    async def flush_store() -> None:
        assert store is not None
        while True:
            await asyncio.sleep(5.0)
            with contextlib.suppress(Exception):
                await store.flush()

    rss_task = asyncio.create_task(sample_rss())
    flush_task = asyncio.create_task(flush_store()) if store is not None else None
    load0 = load_average()
    cpu0, wall0 = cpu_seconds(), time.monotonic()
    await scheduler.start()
    await asyncio.sleep(args.duration)
    await scheduler.stop()
    cpu1, wall1 = cpu_seconds(), time.monotonic()
    rss_samples.append(rss_mb())
    for task in (rss_task, flush_task):
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
    if store is not None:
        with contextlib.suppress(Exception):
            await store.flush()
        await store.db.close()
    stats = scheduler.stats()
    drift = list(scheduler.drift_ms)
    cpu = cpu1 - cpu0
    up = sum(1 for w in windows.values() if w.state.value == "up")
    return {
        "bench": "probes",
        "n": args.n,
        "interval_s": args.interval,
        "duration_s": round(wall1 - wall0, 2),
        "delay_ms": delay,
        "max_concurrency": args.concurrency,
        "slot_ms": args.slot_ms,
        "fleet": fleet.kind,
        "store": bool(store),
        "probes": stats.probes,
        "probes_per_s": round(stats.probes / (wall1 - wall0), 1),
        "skipped_ticks": stats.skipped_ticks,
        "outcomes": dict(outcomes),
        "endpoints_up": up,
        "cpu_s": round(cpu, 3),
        "cpu_ms_per_probe": round(1000 * cpu / stats.probes, 4) if stats.probes else None,
        "cpu_pct_one_core": round(100 * cpu / (wall1 - wall0), 2),
        "rss_peak_mb": round(max(rss_samples), 1),
        "rss_final_mb": round(rss_samples[-1], 1),
        "ru_maxrss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "drift_p50_ms": _r(pct(drift, 0.5)),
        "drift_p99_ms": _r(pct(drift, 0.99)),
        "drift_max_ms": _r(max(drift) if drift else None),
        "latency_error_p50_ms": _r(pct(errors, 0.5)),
        "latency_error_p99_ms": _r(pct(errors, 0.99)),
        "latency_error_max_ms": _r(max(errors) if errors else None),
        "latency_error_min_ms": _r(min(errors) if errors else None),
        "stored_rows": store.written if store is not None else None,
        "loadavg_1m": [load0, load_average()],
    }


def _r(value: float | None, digits: int = 3) -> float | None:
    return round(value, digits) if value is not None else None


def print_report(r: dict[str, Any]) -> None:
    peer_cpu, peer_rss = PEER["cpu_ms_per_probe"], PEER["rss_mb"]

    def ratio(value: float | None, peer: tuple[float, float]) -> str:
        if not value:
            return "-"
        return f"{value / peer[1]:.3f}-{value / peer[0]:.3f}x"

    rows = [
        (
            "CPU per probe (ms)",
            r["cpu_ms_per_probe"],
            "<= 0.3",
            f"{peer_cpu[0]}-{peer_cpu[1]}",
            ratio(r["cpu_ms_per_probe"], peer_cpu),
        ),
        (
            "RSS peak (MB)",
            r["rss_peak_mb"],
            "<= 150",
            f"{peer_rss[0]:.0f}-{peer_rss[1]:.0f}",
            ratio(r["rss_peak_mb"], peer_rss),
        ),
        ("drift p99 (ms)", r["drift_p99_ms"], "<= 50", "-", "-"),
        ("latency error p99 (ms)", r["latency_error_p99_ms"], "<= 5", "-", "-"),
        ("drift p50 / max (ms)", f"{r['drift_p50_ms']} / {r['drift_max_ms']}", "", "", ""),
        (
            "latency error p50 / max (ms)",
            f"{r['latency_error_p50_ms']} / {r['latency_error_max_ms']}",
            "",
            "",
            "",
        ),
        ("CPU % of one core", r["cpu_pct_one_core"], "", "", ""),
        ("probes (per s)", f"{r['probes']} ({r['probes_per_s']})", "", "", ""),
        ("skipped ticks", r["skipped_ticks"], "", "", ""),
        ("outcomes", ", ".join(f"{k}={v}" for k, v in sorted(r["outcomes"].items())), "", "", ""),
    ]
    print(
        f"opswatch probe engine: n={r['n']} interval={r['interval_s']}s duration={r['duration_s']}s "
        f"delay={r['delay_ms']}ms slot={r['slot_ms']}ms concurrency={r['max_concurrency']} store={r['store']}"
        f" fleet={r['fleet']} load average (1 min) {r['loadavg_1m'][0]} -> {r['loadavg_1m'][1]}"
    )
    header = ("metric", "opswatch", "target", "peer", "opswatch/peer")
    widths = [max(len(str(row[i])) for row in [header, *rows]) for i in range(5)]
    for row in [header, *rows]:
        print("  ".join(str(cell).ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())
    print(f"peer: {PEER['name']} (../shared/peers/README.md)")


# --------------------------------------------------------------------------- HTTP client comparison


async def compare_clients(base: str, n: int, rounds: int = 3, in_flight: int = 100) -> list[dict[str, Any]]:
    import aiohttp
    import httpx

    urls = [f"{base}/ep/{i}" for i in range(n)]

    class AiohttpTransport(httpx.AsyncBaseTransport):
        def __init__(self) -> None:
            self.session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=200), trust_env=False)

        async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
            headers = [(k.decode(), v.decode()) for k, v in request.headers.raw]
            async with self.session.request(
                request.method,
                str(request.url),
                headers=headers,
                data=request.content or None,
                allow_redirects=False,
            ) as response:
                body = await response.read()
                return httpx.Response(response.status, headers=response.raw_headers, content=body)

        async def aclose(self) -> None:
            await self.session.close()

    async def measure(name: str, get: Any, close: Any) -> dict[str, Any]:
        gate = asyncio.Semaphore(in_flight)

        async def one(url: str) -> None:
            async with gate:
                await get(url)

        await asyncio.gather(*(one(u) for u in urls[: min(200, n)]))  # warm the pool
        cpu0, wall0 = cpu_seconds(), time.monotonic()
        for _ in range(rounds):
            await asyncio.gather(*(one(u) for u in urls))
        cpu, wall = cpu_seconds() - cpu0, time.monotonic() - wall0
        await close()
        per_request = round(1000 * cpu / (rounds * n), 3)
        return {
            "client": name,
            "requests": rounds * n,
            "cpu_ms_per_request": per_request,
            "wall_s": round(wall, 2),
        }

    results = []
    session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=200), trust_env=False)

    async def aio_get(url: str) -> None:
        async with session.get(url) as response:
            await response.read()

    results.append(await measure("aiohttp.ClientSession", aio_get, session.close))
    plain = httpx.AsyncClient(
        timeout=5, trust_env=False, limits=httpx.Limits(max_connections=200, max_keepalive_connections=200)
    )
    results.append(await measure("httpx.AsyncClient", plain.get, plain.aclose))
    bridged = httpx.AsyncClient(timeout=5, transport=AiohttpTransport())
    results.append(await measure("httpx over aiohttp transport", bridged.get, bridged.aclose))
    probe_client = HttpClient(max_connections=200)

    async def probe_get(url: str) -> None:
        await probe_client.request("GET", url, headers=None, timeout_s=5.0)

    results.append(await measure("opswatch HttpClient (core.http1)", probe_get, probe_client.close))
    return results


# --------------------------------------------------------------------------- fallback fleet


def serve_fleet(n: int, port: int) -> None:
    """Same protocol subset as fleet_server.py: /ep/<i>, POST /control, /hits/<i>, /healthz, /stats."""
    from collections import deque

    from aiohttp import web

    status = [200] * n
    delay_ms = [0.0] * n
    served = Counter[int]()
    hits: dict[int, deque[tuple[float, float, int]]] = {}

    async def endpoint(request: web.Request) -> web.Response:
        try:
            i = int(request.match_info["i"])
            if not 0 <= i < n:
                raise ValueError
        except ValueError:
            return web.Response(status=404, text="no such endpoint")
        if delay_ms[i]:
            await asyncio.sleep(delay_ms[i] / 1000)
        served[status[i]] += 1
        hits.setdefault(i, deque(maxlen=64)).append((time.time(), time.monotonic(), status[i]))
        return web.Response(status=status[i], text=f"ok ep {i}\n" if status[i] < 300 else f"ep {i}\n")

    async def hit_log(request: web.Request) -> web.Response:
        try:
            i = int(request.match_info["i"])
        except ValueError:
            return web.Response(status=404, text="bad ep")
        return web.json_response([list(h) for h in hits.get(i, ())])

    async def control(request: web.Request) -> web.Response:
        spec = await request.json()
        idx = range(n) if spec.get("all") else ([spec["ep"]] if isinstance(spec["ep"], int) else spec["ep"])
        for i in idx:
            if spec.get("status") is not None:
                status[i] = int(spec["status"])
            if spec.get("delay_ms") is not None:
                delay_ms[i] = float(spec["delay_ms"])
        reply = {"ok": True, "changed": len(idx), "ts": time.time(), "mono": time.monotonic()}
        return web.json_response(reply)

    async def healthz(_: web.Request) -> web.Response:
        return web.Response(text="ok")

    async def stats(_: web.Request) -> web.Response:
        by_status = {str(k): v for k, v in served.items()}
        return web.json_response({"n": n, "ep_requests": sum(served.values()), "by_status": by_status})

    app = web.Application()
    app.router.add_route("GET", "/ep/{i}", endpoint)
    app.router.add_post("/control", control)
    app.router.add_get("/hits/{i}", hit_log)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/stats", stats)
    web.run_app(app, host="127.0.0.1", port=port, access_log=None, print=None, backlog=4096)


# --------------------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> int:
    args_in = sys.argv[1:] if argv is None else list(argv)
    if "--alerts" in args_in:
        from bench.alerts import main as alerts_main

        return alerts_main([a for a in args_in if a != "--alerts"])
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--n", type=int, default=1000, help="endpoints (default 1000)")
    p.add_argument("--interval", type=float, default=10.0, help="probe interval per endpoint, s (default 10)")
    p.add_argument("--duration", type=float, default=60.0, help="measured run, s (default 60)")
    p.add_argument("--delay-ms", type=float, default=20.0, help="server-side delay injected in every reply")
    p.add_argument("--timeout", type=float, default=5.0, help="probe timeout, s (default 5)")
    p.add_argument("--concurrency", type=int, default=200, help="probes.max_concurrency (default 200)")
    p.add_argument("--slot-ms", type=float, default=50.0, help="scheduler start-slot grid, ms (default 50)")
    p.add_argument("--port", type=int, default=0, help="fleet port (default: a free one)")
    p.add_argument("--own-fleet", action="store_true", help="aiohttp fleet even if the shared one exists")
    p.add_argument("--dsn", default=None, help="also store samples (opswatch.probe_samples)")
    p.add_argument("--clients", action="store_true", help="compare HTTP clients instead (CPU per request)")
    p.add_argument("--json-only", action="store_true", help="print only the JSON line")
    p.add_argument("--alerts", action="store_true",
                   help="run the alert-latency benchmark instead (bench.alerts; see its --help)")  # fmt: skip
    p.add_argument("--serve-fleet", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args(args_in)
    port = args.port or free_port()
    if args.serve_fleet:
        serve_fleet(args.n, port)
        return 0

    fleet = Fleet(args.n, port, own=args.own_fleet)
    try:
        fleet.wait_ready()
        if args.clients:
            results = asyncio.run(compare_clients(fleet.base, args.n))
            for row in results:
                print(
                    f"{row['client']:<32} {row['cpu_ms_per_request']:>7.3f} ms CPU/request  "
                    f"({row['requests']} requests, {row['wall_s']} s, 100 in flight)"
                )
            print(json.dumps({"bench": "http_clients", "n": args.n, "fleet": fleet.kind, "results": results}))
            return 0
        fleet.control(all=True, status=200, delay_ms=args.delay_ms)
        result = asyncio.run(run_engine(args, fleet))
    finally:
        fleet.stop()
    return emit(result, print_report, json_only=args.json_only)


if __name__ == "__main__":
    raise SystemExit(main())
