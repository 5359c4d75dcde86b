"""Endpoint probes against real HTTP servers on 127.0.0.1: outcome classes and the scheduler."""

from __future__ import annotations

import asyncio
import itertools
import shutil
import socket
import ssl
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import aiohttp.abc
import pytest
import pytest_asyncio
from aiohttp import web

from core.config import Config
from core.http_client import HttpClient
from core.probes import (
    Outcome,
    ProbeSample,
    ProbeScheduler,
    ProbeSpec,
    probe_all,
    probe_once,
    specs_from_config,
)
from tests.servers import FleetServer
from tests.waiting import until


@pytest_asyncio.fixture(scope="module")
async def fleet() -> AsyncIterator[FleetServer]:
    async with FleetServer() as server:
        yield server


@pytest_asyncio.fixture(scope="module")
async def client() -> AsyncIterator[HttpClient]:
    http = HttpClient(max_connections=20)
    yield http
    await http.close()


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


async def probe(client: HttpClient, url: str, **kw: Any) -> ProbeSample:
    return await probe_once(ProbeSpec(name="t", url=url, **{"timeout_s": 2.0, **kw}), client)


# --------------------------------------------------------------------------- outcome classes


async def test_ok(fleet: FleetServer, client: HttpClient) -> None:
    fleet.set("ok")
    sample = await probe(client, fleet.url("ok"))
    assert sample.outcome is Outcome.OK and sample.ok
    assert sample.status_code == 200 and sample.error == ""
    assert 0 < sample.latency_ms < 1000
    assert sample.at.tzinfo is not None


async def test_bad_status(fleet: FleetServer, client: HttpClient) -> None:
    fleet.set("down", status=503, body="maintenance\x1b[2J")
    sample = await probe(client, fleet.url("down"))
    assert (sample.outcome, sample.status_code) == (Outcome.HTTP_STATUS, 503)
    assert sample.error == "HTTP 503 Service Unavailable"


async def test_expect_status_set(fleet: FleetServer, client: HttpClient) -> None:
    fleet.set("created", status=201)
    assert (await probe(client, fleet.url("created"), expect_status=frozenset({200}))).outcome is (
        Outcome.HTTP_STATUS
    )
    assert (await probe(client, fleet.url("created"), expect_status=frozenset({201}))).ok
    head = await probe(client, fleet.url("created"), method="HEAD", expect_status=frozenset({201}))
    assert head.ok


async def test_timeout(fleet: FleetServer, client: HttpClient) -> None:
    fleet.set("slow", delay_s=1.0)
    sample = await probe(client, fleet.url("slow"), timeout_s=0.2)
    assert sample.outcome is Outcome.TIMEOUT and sample.status_code is None
    assert sample.error == "timed out after 0.2 s"
    assert 150 <= sample.latency_ms < 900


async def test_connect_refused(client: HttpClient) -> None:
    sample = await probe(client, f"http://127.0.0.1:{closed_port()}/health")
    assert sample.outcome is Outcome.CONNECT_REFUSED
    assert sample.error == "connection refused"


async def test_body_contains(fleet: FleetServer, client: HttpClient) -> None:
    fleet.set("body", body='{"status":"degraded"}')
    assert (await probe(client, fleet.url("body"), body_contains="degraded")).ok
    sample = await probe(client, fleet.url("body"), body_contains='"ok"')
    assert sample.outcome is Outcome.BODY_MISMATCH and sample.status_code == 200
    assert sample.error == "body does not contain '\"ok\"'"


@pytest.mark.parametrize(
    ("body", "path", "equals", "error"),
    [
        ('{"status":"ok"}', "status", "ok", ""),
        ('{"checks":{"db":{"status":"up"}}}', "checks.db.status", "up", ""),
        ('{"items":[{"n":1},{"n":2}]}', "items.1.n", 2, ""),
        ('{"ready":true}', "ready", True, ""),
        ('{"ready":1}', "ready", True, "JSON field 'ready' is 1, expected true"),
        ('{"v":null}', "v", None, ""),
        ('{"status":"degraded"}', "status", "ok", 'JSON field \'status\' is "degraded", expected "ok"'),
        ('{"status":"ok"}', "checks.db", "ok", "JSON field 'checks.db' is missing"),
        ("<html>oops</html>", "status", "ok", "body is not valid JSON"),
        ('{"s":"\\u001b[31mred"}', "s", "ok", 'JSON field \'s\' is "\\u001b[31mred", expected "ok"'),
        ('{"status":"\u202eko"}', "status", "ok", 'JSON field \'status\' is "ko", expected "ok"'),
    ],
)
async def test_json_field(
    fleet: FleetServer, client: HttpClient, body: str, path: str, equals: Any, error: str
) -> None:
    fleet.set("json", body=body)
    sample = await probe(client, fleet.url("json"), json_path=path, json_equals=equals)
    assert sample.outcome is (Outcome.OK if not error else Outcome.BODY_MISMATCH)
    assert sample.error == error


class _NoSuchHost(aiohttp.abc.AbstractResolver):
    """Answers every lookup with NXDOMAIN, so the DNS path runs without any network traffic."""

    async def resolve(self, host: str, port: int = 0, family: int = socket.AF_INET) -> Any:
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    async def close(self) -> None:
        return None


async def test_dns_failure() -> None:
    http = HttpClient(resolver=_NoSuchHost())
    try:
        sample = await probe(http, "http://pos-backend.invalid/health")
    finally:
        await http.close()
    assert sample.outcome is Outcome.DNS and sample.error == "DNS lookup failed"


async def test_tls_to_plain_http_port(fleet: FleetServer, client: HttpClient) -> None:
    sample = await probe(client, f"https://127.0.0.1:{fleet.port}/ep/ok")
    assert sample.outcome is Outcome.TLS
    assert sample.error.startswith("TLS error")


@pytest.fixture(scope="module")
def tls_cert(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("openssl not installed")
    folder: Path = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        [
            openssl,
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-keyout",
            str(key),
            "-out",
            str(cert),
            "-days",
            "1",
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
        ],
        check=True,
        capture_output=True,
    )
    return cert, key


@pytest_asyncio.fixture(scope="module")
async def tls_url(tls_cert: tuple[Path, Path]) -> AsyncIterator[str]:
    cert, key = tls_cert
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    app = web.Application()

    async def health(_: web.Request) -> web.Response:
        return web.Response(text="ok")

    app.router.add_get("/health", health)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    port = closed_port()
    await web.TCPSite(runner, "127.0.0.1", port, ssl_context=context).start()
    yield f"https://127.0.0.1:{port}/health"
    await runner.cleanup()


async def test_tls_self_signed(tls_url: str, client: HttpClient) -> None:
    rejected = await probe(client, tls_url)
    assert rejected.outcome is Outcome.TLS
    assert "certificate" in rejected.error
    accepted = await probe(client, tls_url, verify_tls=False, body_contains="ok")
    assert accepted.ok


async def test_errors_carry_no_secrets(client: HttpClient) -> None:
    url = f"http://ops:hunter22@127.0.0.1:{closed_port()}/x?token=abcdef123456"
    sample = await probe(client, url, headers=(("Authorization", "Bearer abcdef123456"),))
    assert "hunter22" not in sample.error and "abcdef123456" not in sample.error


async def test_redirects(fleet: FleetServer, client: HttpClient) -> None:
    app = web.Application()
    target = fleet.url("ok")

    async def moved(_: web.Request) -> web.Response:
        raise web.HTTPFound(target)

    app.router.add_get("/old", moved)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    port = closed_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        url = f"http://127.0.0.1:{port}/old"
        judged = await probe(client, url)
        assert (judged.outcome, judged.status_code) == (Outcome.HTTP_STATUS, 302)
        followed = await probe(client, url, follow_redirects=True)
        assert (followed.outcome, followed.status_code) == (Outcome.OK, 200)
    finally:
        await runner.cleanup()


async def test_probe_all_keeps_order(fleet: FleetServer) -> None:
    fleet.set("a")
    fleet.set("b", status=500)
    specs = [ProbeSpec(name=n, url=fleet.url(n)) for n in ("a", "b")]
    samples = await probe_all(specs)
    assert [(s.endpoint, s.outcome) for s in samples] == [("a", Outcome.OK), ("b", Outcome.HTTP_STATUS)]


def test_specs_from_config() -> None:
    config = Config.model_validate(
        {
            "probes": {"interval": "10s", "timeout": "2s"},
            "endpoints": [
                {
                    "name": "health",
                    "url": "http://127.0.0.1:3000/test/health",
                    "expect_status": [200],
                    "json_field": {"path": "status", "equals": "ok"},
                    "headers": {"X-Key": "v"},
                },
                {
                    "name": "sales",
                    "url": "https://pos.example/api/v1/sales",
                    "expect_status": "2xx",
                    "interval": "1m",
                    "verify_tls": False,
                    "service": "worker",
                    "method": "HEAD",
                },
            ],
        }
    )
    health, sales = specs_from_config(config)
    assert health == ProbeSpec(
        name="health",
        url="http://127.0.0.1:3000/test/health",
        headers=(("X-Key", "v"),),
        interval_s=10.0,
        timeout_s=2.0,
        expect_status=frozenset({200}),
        json_path="status",
        json_equals="ok",
        service="api",
    )
    assert (sales.interval_s, sales.timeout_s, sales.verify_tls, sales.method) == (60.0, 2.0, False, "HEAD")
    assert sales.expect_status == frozenset(range(200, 300)) and sales.service == "worker"


# --------------------------------------------------------------------------- scheduler


async def run_for(scheduler: ProbeScheduler, seconds: float) -> None:
    await scheduler.start()
    try:
        await asyncio.sleep(seconds)  # time under test: how many probes a window of time holds
    finally:
        await scheduler.stop()


async def test_slow_endpoint_does_not_delay_others(fleet: FleetServer) -> None:
    fleet.set("fast1")
    fleet.set("fast2")
    fleet.set("sloth", delay_s=0.75)
    specs = [
        ProbeSpec(name="sloth", url=fleet.url("sloth"), interval_s=0.2, timeout_s=2.0),
        ProbeSpec(name="fast1", url=fleet.url("fast1"), interval_s=0.2),
        ProbeSpec(name="fast2", url=fleet.url("fast2"), interval_s=0.2),
    ]
    samples: list[ProbeSample] = []
    scheduler = ProbeScheduler(specs, samples.append, max_concurrency=10, spread_gap_s=0.05)
    await run_for(scheduler, 1.25)
    fast = [s.at.timestamp() for s in samples if s.endpoint == "fast1"]
    assert len(fast) >= 5
    gaps = [b - a for a, b in itertools.pairwise(fast)]
    assert all(0.1 < g < 0.35 for g in gaps), gaps
    assert len([s for s in samples if s.endpoint == "sloth"]) == 1
    assert scheduler.skipped_for("sloth") >= 3
    assert scheduler.skipped_for("fast1") == 0
    stats = scheduler.stats()
    assert stats.skipped_ticks == scheduler.skipped_for("sloth")
    assert stats.probes == len(samples)
    assert 0 <= len(scheduler.drift_ms) - stats.probes <= 3  # drift is recorded at start; stop() cut some
    assert max(scheduler.drift_ms) < 100


async def test_first_probes_are_spread(fleet: FleetServer) -> None:
    names = [f"spread{i}" for i in range(10)]
    specs = [ProbeSpec(name=n, url=fleet.url(n), interval_s=0.5) for n in names]
    first: dict[str, float] = {}

    def record(sample: ProbeSample) -> None:
        first.setdefault(sample.endpoint, sample.at.timestamp())

    scheduler = ProbeScheduler(specs, record, spread_gap_s=1.0)
    await run_for(scheduler, 0.6)
    offsets = [first[n] - first[names[0]] for n in names]
    assert offsets == sorted(offsets)
    gaps = [b - a for a, b in itertools.pairwise(offsets)]
    assert all(0.02 < g < 0.09 for g in gaps), gaps  # 0.5 s / 10 endpoints = 0.05 s apart


async def test_starts_share_slots(fleet: FleetServer) -> None:
    names = [f"slot{i}" for i in range(8)]
    specs = [ProbeSpec(name=n, url=fleet.url(n), interval_s=0.4) for n in names]
    first: dict[str, float] = {}
    scheduler = ProbeScheduler(specs, lambda s: first.setdefault(s.endpoint, s.at.timestamp()), slot_s=0.1)
    await run_for(scheduler, 0.45)
    starts = [first[n] - first[names[0]] for n in names]
    for i in range(0, 8, 2):  # 0.05 s apart, rounded down to a 0.1 s grid: two per slot
        assert abs(starts[i + 1] - starts[i]) < 0.02, starts
        assert abs(starts[i] - i * 0.05) < 0.03, starts
    assert max(scheduler.drift_ms) < 100  # planned at the slot, so starting there is not drift


async def test_small_fleet_reports_quickly(fleet: FleetServer) -> None:
    specs = [ProbeSpec(name=f"q{i}", url=fleet.url(f"q{i}"), interval_s=30.0) for i in range(3)]
    seen: list[ProbeSample] = []
    scheduler = ProbeScheduler(specs, seen.append, spread_gap_s=0.05)
    await run_for(scheduler, 0.4)
    assert sorted(s.endpoint for s in seen) == ["q0", "q1", "q2"]


async def test_concurrency_cap(fleet: FleetServer) -> None:
    names = [f"cap{i}" for i in range(6)]
    for n in names:
        fleet.set(n, delay_s=0.15)
    specs = [ProbeSpec(name=n, url=fleet.url(n), interval_s=5.0) for n in names]
    done: list[ProbeSample] = []
    scheduler = ProbeScheduler(specs, done.append, max_concurrency=2, spread_gap_s=0.001)
    peak = 0
    await scheduler.start()
    try:
        for _ in range(100):
            peak = max(peak, scheduler.stats().in_flight)
            if len(done) == len(names):
                break
            await asyncio.sleep(0.01)
    finally:
        await scheduler.stop()
    assert peak == 2 and len(done) == 6
    assert max(scheduler.drift_ms) > 250  # the last ones waited for a slot; drift shows it


async def test_update_keeps_unchanged_and_stops_removed(fleet: FleetServer) -> None:
    seen: list[ProbeSample] = []
    keep = ProbeSpec(name="keep", url=fleet.url("keep"), interval_s=0.1)
    gone = ProbeSpec(name="gone", url=fleet.url("gone"), interval_s=0.1)
    scheduler = ProbeScheduler([keep, gone], seen.append, spread_gap_s=0.01)
    await scheduler.start()
    try:
        await until(lambda: {"keep", "gone"} <= {s.endpoint for s in seen}, what="both probed")
        await scheduler.update([keep, ProbeSpec(name="new", url=fleet.url("new"), interval_s=0.1)])
        cut = len(seen)
        await asyncio.sleep(0.3)  # time under test: three intervals in which "gone" must not run
    finally:
        await scheduler.stop()
    after = {s.endpoint for s in seen[cut:]}
    assert after == {"keep", "new"}
    assert scheduler.stats().endpoints == 0


async def test_failing_handler_does_not_stop_probing(fleet: FleetServer) -> None:
    calls: list[str] = []

    def handler(sample: ProbeSample) -> None:
        calls.append(sample.endpoint)
        raise RuntimeError("boom")

    scheduler = ProbeScheduler([ProbeSpec(name="h", url=fleet.url("h"), interval_s=0.1)], handler)
    await run_for(scheduler, 0.35)
    assert len(calls) >= 3 and scheduler.stats().callback_errors == len(calls)


def test_duplicate_names_rejected() -> None:
    spec = ProbeSpec(name="x", url="http://127.0.0.1/")
    with pytest.raises(ValueError, match="unique"):
        ProbeScheduler([spec, spec], lambda _: None)
