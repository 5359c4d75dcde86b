"""Endpoint probes: what to check (ProbeSpec), what was seen (ProbeSample), and the scheduler.

Every endpoint runs on its own fixed-rate timeline ``origin + phase + k * interval``; a
probe still running at its next tick makes the scheduler skip (and count) that tick, so
a slow endpoint never delays another one. Phases are spread so N endpoints start at most
``min(interval / N, spread_gap_s)`` apart: a large fleet is spread evenly over the whole
interval (no thundering herd) while three endpoints still all report within a second.
Phases are then rounded down to a ``slot_s`` grid, so a large fleet starts a few probes
per event-loop wake-up instead of one: at 1,000 endpoints every 10 s that is 5 probes
every 50 ms, which cuts the CPU per probe by about a third (bench/README.md).
"""

from __future__ import annotations

import asyncio
import contextlib
import http
import json
import math
import time
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from loguru import logger

from core.clock import Clock, utcnow
from core.http_client import HttpClient, HttpResult, classify_error
from core.safe_text import display_text

if TYPE_CHECKING:
    from core.config import Config, Endpoint

__all__ = [
    "Outcome",
    "ProbeSample",
    "ProbeScheduler",
    "ProbeSpec",
    "SchedulerStats",
    "probe_all",
    "probe_once",
    "specs_from_config",
]

JsonScalar = str | int | float | bool | None


class Outcome(StrEnum):
    OK = "ok"
    HTTP_STATUS = "http_status"
    TIMEOUT = "timeout"
    CONNECT_REFUSED = "connect_refused"
    DNS = "dns"
    TLS = "tls"
    BODY_MISMATCH = "body_mismatch"
    OTHER = "other"


@dataclass(frozen=True)
class ProbeSpec:
    name: str
    url: str
    method: str = "GET"
    headers: tuple[tuple[str, str], ...] = ()
    interval_s: float = 30.0
    timeout_s: float = 5.0
    expect_status: frozenset[int] = frozenset(range(200, 300))
    body_contains: str | None = None
    json_path: str | None = None  # None: no JSON check
    json_equals: JsonScalar = None
    verify_tls: bool = True
    follow_redirects: bool = False
    service: str = "api"

    @classmethod
    def from_endpoint(cls, endpoint: Endpoint) -> ProbeSpec:
        check = endpoint.json_field
        return cls(
            name=endpoint.name,
            url=str(endpoint.url),
            method=endpoint.method,
            headers=tuple(endpoint.headers.items()),
            interval_s=float(endpoint.interval),
            timeout_s=float(endpoint.timeout),
            expect_status=frozenset(endpoint.expect_status),
            body_contains=endpoint.body_contains or None,
            json_path=check.path if check is not None else None,
            json_equals=check.equals if check is not None else None,
            verify_tls=endpoint.verify_tls,
            follow_redirects=endpoint.follow_redirects,
            service=endpoint.service,
        )


def specs_from_config(config: Config) -> list[ProbeSpec]:
    return [ProbeSpec.from_endpoint(endpoint) for endpoint in config.endpoints]


@dataclass(frozen=True)
class ProbeSample:
    endpoint: str
    at: datetime  # UTC, when the probe started
    latency_ms: float  # monotonic clock, until the body was read or the request failed
    status_code: int | None
    outcome: Outcome
    error: str = ""  # short, redacted, terminal-safe

    @property
    def ok(self) -> bool:
        return self.outcome is Outcome.OK


# --------------------------------------------------------------------------- one probe


async def probe_once(spec: ProbeSpec, client: HttpClient, *, clock: Clock = utcnow) -> ProbeSample:
    """Run one probe; never raises except on cancellation."""
    at = clock()
    started = time.perf_counter()
    try:
        result = await client.request(
            spec.method,
            spec.url,
            headers=spec.headers or None,
            timeout_s=spec.timeout_s,
            verify_tls=spec.verify_tls,
            follow_redirects=spec.follow_redirects,
        )
    except asyncio.CancelledError:
        raise
    except Exception as exc:
        latency_ms = (time.perf_counter() - started) * 1000.0
        kind, message = classify_error(exc, spec.timeout_s)
        return ProbeSample(spec.name, at, latency_ms, None, Outcome(kind), message)
    latency_ms = (time.perf_counter() - started) * 1000.0
    outcome, error = judge(spec, result)
    return ProbeSample(spec.name, at, latency_ms, result.status, outcome, error)


def judge(spec: ProbeSpec, result: HttpResult) -> tuple[Outcome, str]:
    """Outcome of a response that arrived: status first, then the body checks."""
    if result.status not in spec.expect_status:
        return Outcome.HTTP_STATUS, _status_text(result.status)
    if spec.body_contains and spec.body_contains.encode() not in result.body:
        return Outcome.BODY_MISMATCH, f"body does not contain {_quote(spec.body_contains)}"
    if spec.json_path is not None:
        return _judge_json(spec.json_path, spec.json_equals, result.body)
    return Outcome.OK, ""


def _judge_json(path: str, expected: JsonScalar, body: bytes) -> tuple[Outcome, str]:
    try:
        document = json.loads(body)
    except ValueError:
        return Outcome.BODY_MISMATCH, "body is not valid JSON"
    found, actual = _lookup(document, path)
    if not found:
        return Outcome.BODY_MISMATCH, f"JSON field {_quote(path)} is missing"
    if not _json_equal(actual, expected):
        return (
            Outcome.BODY_MISMATCH,
            f"JSON field {_quote(path)} is {_json_text(actual)}, expected {_json_text(expected)}",
        )
    return Outcome.OK, ""


def _lookup(document: Any, path: str) -> tuple[bool, Any]:
    node = document
    for part in path.split("."):
        if isinstance(node, dict) and part in node:
            node = node[part]
        elif isinstance(node, list) and part.lstrip("-").isdigit() and -len(node) <= int(part) < len(node):
            node = node[int(part)]
        else:
            return False, None
    return True, node


def _json_equal(actual: Any, expected: JsonScalar) -> bool:
    if isinstance(actual, bool) or isinstance(expected, bool):
        return type(actual) is type(expected) and actual == expected
    if isinstance(expected, int | float) and isinstance(actual, int | float):
        return float(actual) == float(expected)
    return type(actual) is type(expected) and bool(actual == expected)


def _json_text(value: Any) -> str:
    try:
        text = json.dumps(value, ensure_ascii=False)
    except (TypeError, ValueError):
        text = type(value).__name__
    return display_text(text, 60, redact_secrets=True)


def _quote(text: str) -> str:
    return "'" + display_text(text, 60, redact_secrets=True) + "'"


def _status_text(status: int) -> str:
    try:
        return f"HTTP {status} {http.HTTPStatus(status).phrase}"
    except ValueError:
        return f"HTTP {status}"


async def probe_all(
    specs: Iterable[ProbeSpec],
    *,
    max_concurrency: int = 50,
    client: HttpClient | None = None,
    clock: Clock = utcnow,
) -> list[ProbeSample]:
    """Probe every endpoint once (for ``opswatch check``); results in ``specs`` order."""
    own = client is None
    http_client = client or HttpClient(max_connections=max_concurrency)
    gate = asyncio.Semaphore(max_concurrency)

    async def one(spec: ProbeSpec) -> ProbeSample:
        async with gate:
            return await probe_once(spec, http_client, clock=clock)

    try:
        return list(await asyncio.gather(*(one(spec) for spec in specs)))
    finally:
        if own:
            await http_client.close()


# --------------------------------------------------------------------------- scheduler


@dataclass(frozen=True)
class SchedulerStats:
    endpoints: int
    probes: int  # probes completed
    skipped_ticks: int  # ticks skipped because the endpoint's previous probe still ran
    in_flight: int
    callback_errors: int


@dataclass
class _Lane:
    spec: ProbeSpec
    task: asyncio.Task[None] | None = None


@dataclass
class _Counters:
    probes: int = 0
    skipped: int = 0
    in_flight: int = 0
    callback_errors: int = 0
    lanes: dict[str, _Lane] = field(default_factory=dict)
    skipped_by_name: dict[str, int] = field(default_factory=dict)


class ProbeScheduler:
    """Runs every spec on its own timeline and hands each :class:`ProbeSample` to ``on_sample``.

    ``drift_ms`` keeps the most recent scheduling drifts (actual start, after waiting for a
    concurrency slot, minus planned start) for benchmarks and diagnostics.
    """

    def __init__(
        self,
        specs: Sequence[ProbeSpec],
        on_sample: Callable[[ProbeSample], None],
        *,
        max_concurrency: int = 200,
        client: HttpClient | None = None,
        clock: Clock = utcnow,
        spread_gap_s: float = 0.1,
        slot_s: float = 0.05,
        drift_capacity: int = 10_000,
    ) -> None:
        names = [spec.name for spec in specs]
        if len(set(names)) != len(names):
            raise ValueError("probe spec names must be unique")
        self._specs = list(specs)
        self._on_sample = on_sample
        self._own_client = client is None
        self._client = client or HttpClient(max_connections=max_concurrency)
        self._clock = clock
        self._gap = spread_gap_s
        self._slot = slot_s
        self._gate = asyncio.Semaphore(max_concurrency)
        self._origin: float | None = None
        self._c = _Counters()
        self.drift_ms: deque[float] = deque(maxlen=drift_capacity)

    @property
    def running(self) -> bool:
        return self._origin is not None

    @property
    def specs(self) -> list[ProbeSpec]:
        return list(self._specs)

    def stats(self) -> SchedulerStats:
        c = self._c
        return SchedulerStats(len(c.lanes), c.probes, c.skipped, c.in_flight, c.callback_errors)

    def skipped_for(self, name: str) -> int:
        return self._c.skipped_by_name.get(name, 0)

    async def start(self) -> None:
        if self._origin is not None:
            return
        self._origin = asyncio.get_running_loop().time()
        self._launch(self._specs, self._origin)

    async def stop(self) -> None:
        lanes = list(self._c.lanes.values())
        self._c.lanes.clear()
        self._origin = None
        await _cancel([lane.task for lane in lanes if lane.task is not None])
        if self._own_client:
            await self._client.close()

    async def update(self, specs: Sequence[ProbeSpec]) -> None:
        """Replace the spec list; unchanged endpoints keep their timeline, others restart."""
        new = list(specs)
        names = {spec.name for spec in new}
        if len(names) != len(new):
            raise ValueError("probe spec names must be unique")
        self._specs = new
        if self._origin is None:
            return
        lanes = self._c.lanes
        stale = [name for name, lane in lanes.items() if name not in names or lane.spec not in new]
        await _cancel([t for name in stale if (t := lanes.pop(name).task) is not None])
        self._launch([spec for spec in new if spec.name not in lanes], asyncio.get_running_loop().time())

    def _launch(self, specs: Sequence[ProbeSpec], now: float) -> None:
        assert self._origin is not None
        count = len(self._specs)
        index = {spec.name: i for i, spec in enumerate(self._specs)}
        for spec in specs:
            phase = index[spec.name] * min(spec.interval_s / count, self._gap)
            if self._slot > 0:
                phase = math.floor(phase / self._slot + 1e-9) * self._slot
            origin = self._origin + phase
            first_tick = max(0, math.ceil((now - origin) / spec.interval_s))
            lane = _Lane(spec)
            lane.task = asyncio.create_task(self._run(lane, origin, first_tick), name=f"probe:{spec.name}")
            self._c.lanes[spec.name] = lane

    async def _run(self, lane: _Lane, origin: float, tick: int) -> None:
        loop = asyncio.get_running_loop()
        spec = lane.spec
        interval = spec.interval_s
        counters = self._c
        while True:
            planned = origin + tick * interval
            delay = planned - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            async with self._gate:
                self.drift_ms.append((loop.time() - planned) * 1000.0)
                counters.in_flight += 1
                try:
                    sample = await probe_once(spec, self._client, clock=self._clock)
                finally:
                    counters.in_flight -= 1
            counters.probes += 1
            try:
                self._on_sample(sample)
            except Exception:
                counters.callback_errors += 1
                logger.exception("probe sample handler failed for {}", spec.name)
            finished = loop.time()
            tick += 1
            if origin + tick * interval <= finished:
                next_tick = math.floor((finished - origin) / interval) + 1
                missed = next_tick - tick
                counters.skipped += missed
                counters.skipped_by_name[spec.name] = counters.skipped_by_name.get(spec.name, 0) + missed
                tick = next_tick


async def _cancel(tasks: Sequence[asyncio.Task[None]]) -> None:
    for task in tasks:
        task.cancel()
    for task in tasks:
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task
