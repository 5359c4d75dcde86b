"""One fault trial of the alert benchmark: flip an endpoint, time the firing and resolved Slack
messages against the probes and opswatch's alert history (all on CLOCK_MONOTONIC).
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from bench.fleet import Fleet, http_json, load_average
from bench.sink import Sink, slack_match

__all__ = ["AlertBenchOptions", "describe", "rounded", "run_trial"]


@dataclass
class AlertBenchOptions:
    n: int = 1000
    interval: float = 10.0
    timeout: float = 5.0
    for_s: float = 30.0
    window: float = 60.0
    warmup: float | None = None  # default 2 x interval, like the peer
    trials: int = 3
    latency_trial: bool = False
    slow_delay_ms: float = 3000.0
    slow_threshold_ms: float = 2000.0
    settle: float = 5.0
    jitter: bool = True
    seed: int | None = None
    flush_interval: float = 5.0
    log: Callable[[str], None] = field(default=lambda _m: None, repr=False)


def rounded(value: float | None, digits: int = 3) -> float | None:
    return None if value is None else round(value, digits)


def describe(values: list[float | None]) -> dict[str, Any]:
    got = [v for v in values if v is not None]
    if not got:
        return {"n": 0, "missing": len(values)}
    return {"n": len(got), "missing": len(values) - len(got), "min": rounded(min(got)),
            "median": rounded(statistics.median(got)), "max": rounded(max(got)),
            "samples": [rounded(v) for v in got]}  # fmt: skip


async def _history_mono(monitor: Any, rule: str, scope: str, wall_to_mono: float) -> dict[str, float]:
    """The latest time (as CLOCK_MONOTONIC) each state was entered, from opswatch.alert_history."""
    seen: dict[str, float] = {}
    for entry in await monitor.alerts.history(20, rule=rule, scope=scope):
        if entry.to_state not in seen:
            seen[entry.to_state] = _mono(entry.at, wall_to_mono)
    return seen


def _mono(at: datetime, wall_to_mono: float) -> float:
    return at.timestamp() - wall_to_mono


async def _first_hit(fleet: Fleet, ep: int, since: float, ok: Callable[[int], bool]) -> float | None:
    hits = await asyncio.to_thread(http_json, f"{fleet.base}/hits/{ep}")
    return next((mono for _ts, mono, status in hits if mono >= since and ok(status)), None)


class _SampleLog:
    """(received, started, latency_ms) of every sample of one endpoint, on CLOCK_MONOTONIC.

    The fleet logs a reply when it is sent and a delayed reply keeps the delay it started
    with, so for a delay fault the server's log cannot tell the last slow reply after T1 from
    the first fast one; the samples opswatch received can.
    """

    def __init__(self, monitor: Any, name: str, wall_to_mono: float) -> None:
        self.entries: list[tuple[float, float, float]] = []
        window = monitor.windows[name]
        add = window.add

        def logged(sample: Any, *args: Any, **kw: Any) -> None:
            self.entries.append((time.monotonic(), _mono(sample.at, wall_to_mono), sample.latency_ms))
            add(sample, *args, **kw)

        window.add = logged
        self._window = window

    def first(self, since: float, pred: Callable[[float, float], bool]) -> float | None:
        """Received time of the first sample started at/after ``since`` with ``pred(latency, started)``."""
        found = (got for got, started, ms in self.entries if started >= since and pred(ms, started))
        return next(found, None)

    def close(self) -> None:
        with contextlib.suppress(AttributeError):
            del self._window.add


async def run_trial(
    opts: AlertBenchOptions, rng: random.Random, monitor: Any, fleet: Fleet, sink: Sink, ep: int, rule: str,
    fault: dict[str, Any], wall_to_mono: float, log: Callable[[str], None],
) -> dict[str, Any]:  # fmt: skip
    scope = f"ep{ep}"
    res: dict[str, Any] = {"rule": rule, "ep": ep, "fault": fault}
    samples = _SampleLog(monitor, scope, wall_to_mono) if "delay_ms" in fault else None
    try:
        return await _flip(opts, rng, monitor, fleet, sink, ep, rule, fault, wall_to_mono, log, res, samples)
    finally:
        if samples is not None:
            samples.close()


async def _flip(
    opts: AlertBenchOptions, rng: random.Random, monitor: Any, fleet: Fleet, sink: Sink, ep: int, rule: str,
    fault: dict[str, Any], wall_to_mono: float, log: Callable[[str], None], res: dict[str, Any],
    samples: _SampleLog | None,
) -> dict[str, Any]:  # fmt: skip
    scope = f"ep{ep}"
    fire_timeout = opts.for_s + 3 * opts.interval + 60
    resolve_timeout = 3 * opts.interval + 60
    slow_ms = opts.slow_threshold_ms

    if opts.jitter:
        await asyncio.sleep(rng.uniform(0, opts.interval))  # T0 at a random probe phase
    sink.poll()
    start = len(sink.events)
    res["loadavg_1m_at_t0"] = load_average()
    t0 = (await asyncio.to_thread(fleet.control, ep=ep, **fault))["mono"]
    fired = await sink.wait_for(slack_match("firing", rule, scope), start, fire_timeout)
    if samples is None:
        first_bad = await _first_hit(fleet, ep, t0, lambda s: s == fault["status"])
    else:
        first_bad = samples.first(t0, lambda ms, _started: ms > slow_ms)
    states = await _history_mono(monitor, rule, scope, wall_to_mono)
    recv = fired["recv_mono"] if fired else None
    res["first_bad_after_t0_s"] = rounded(first_bad - t0) if first_bad else None
    res["firing_after_t0_s"] = rounded(recv - t0) if recv else None
    res["firing_after_first_bad_s"] = rounded(recv - first_bad) if recv and first_bad else None
    res["firing_after_for_s"] = rounded(recv - first_bad - opts.for_s) if recv and first_bad else None
    if first_bad and "pending" in states:
        res["pending_after_first_bad_s"] = rounded(states["pending"] - first_bad)
    if "pending" in states and "firing" in states:
        res["firing_after_pending_s"] = rounded(states["firing"] - states["pending"])
    if recv and "firing" in states:
        res["webhook_after_firing_s"] = rounded(recv - states["firing"])
    log(f"  {rule} on {scope}: firing webhook {res['firing_after_t0_s']} s after T0, "
        f"{res['firing_after_for_s']} s after first failed probe + for "
        f"(first failed probe +{res['first_bad_after_t0_s']} s)")  # fmt: skip

    if opts.jitter:
        await asyncio.sleep(rng.uniform(0, opts.interval))
    sink.poll()
    start = len(sink.events)
    res["loadavg_1m_at_t1"] = load_average()
    t1 = (await asyncio.to_thread(fleet.control, ep=ep, status=200, delay_ms=0))["mono"]
    resolved = await sink.wait_for(slack_match("resolved", rule, scope), start, resolve_timeout)
    if samples is None:
        first_ok = await _first_hit(fleet, ep, t1, lambda s: s == 200)
    else:
        first_ok = samples.first(t1, lambda ms, _started: ms <= slow_ms)
    states = await _history_mono(monitor, rule, scope, wall_to_mono)
    recv = resolved["recv_mono"] if resolved else None
    res["first_ok_after_t1_s"] = rounded(first_ok - t1) if first_ok else None
    res["resolved_after_t1_s"] = rounded(recv - t1) if recv else None
    res["resolved_after_first_ok_s"] = rounded(recv - first_ok) if recv and first_ok else None
    if first_ok and "resolved" in states:
        res["state_resolved_after_first_ok_s"] = rounded(states["resolved"] - first_ok)
    if recv and "resolved" in states:
        res["webhook_after_resolved_s"] = rounded(recv - states["resolved"])
    log(f"  {rule} on {scope}: resolved webhook {res['resolved_after_t1_s']} s after T1, "
        f"{res['resolved_after_first_ok_s']} s after first good probe "
        f"(first good probe +{res['first_ok_after_t1_s']} s)")  # fmt: skip
    return res
