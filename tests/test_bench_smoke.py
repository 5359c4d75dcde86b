"""Keeps bench/alerts.py from rotting: a tiny alert-latency run on 5 endpoints (a few seconds)."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from bench.alerts import AlertBenchOptions, measure_alerts
from bench.fleet import Fleet, free_port, tree_usage
from bench.sink import Sink, slack_match


def test_slack_match_tells_firing_from_resolved_and_repeats() -> None:
    firing = {"body": {"text": ":red_circle: CRITICAL: down on ep1 — Endpoint down. Value down"}}
    repeat = {"body": {"text": ":red_circle: CRITICAL (still firing): down on ep1 — Endpoint down"}}
    resolved = {"body": {"text": ":white_check_mark: RESOLVED: down on ep1 — Endpoint down (was CRITICAL)"}}
    grouped = {"body": {"text": ":red_circle: CRITICAL: 2 alerts firing — down on ep12, down on ep1"}}
    other = {"body": {"text": ":red_circle: CRITICAL: down on ep12 — Endpoint down"}}
    fires, clears = slack_match("firing", "down", "ep1"), slack_match("resolved", "down", "ep1")
    events = (firing, repeat, resolved, grouped, other)
    assert [fires(e) for e in events] == [True, False, False, True, False]
    assert [clears(e) for e in events] == [False, False, True, False, False]


def test_tree_usage_reads_this_process() -> None:
    cpu, pss = tree_usage(os.getpid())
    assert cpu > 0 and pss > 0


async def test_alert_latency_run_on_five_endpoints(db_dsn: str) -> None:
    opts = AlertBenchOptions(
        n=5, interval=0.5, timeout=1.0, for_s=1.0, window=0.5, warmup=0.1, trials=1, settle=0, jitter=False
    )
    with tempfile.TemporaryDirectory(prefix="opswatch-bench-smoke-") as tmp:
        fleet = Fleet(opts.n, free_port(), own=True)
        sink = Sink(free_port(), Path(tmp) / "sink.jsonl", own=True)
        try:
            fleet.wait_ready()
            sink.wait_ready()
            result = await measure_alerts(opts, fleet=fleet, sink=sink, dsn=db_dsn)
        finally:
            sink.stop()
            fleet.stop()
    latency = result["alert_latency"]
    assert latency["firing_after_for_s"]["n"] == 1
    assert latency["resolved_after_first_ok_s"]["n"] == 1
    # loose bounds: the machine is shared; the benchmark itself reports the real figures
    assert -0.1 <= latency["firing_after_for_s"]["max"] <= 3.0
    assert 0 <= latency["resolved_after_first_ok_s"]["max"] <= 3.0
    assert 0 <= latency["first_bad_after_t0_s"]["max"] <= opts.interval + 1.0
    assert result["steady"]["probes"] > 0 and result["steady"]["cpu_ms_per_probe"] is not None


async def test_recovery_run_with_one_short_outage(tmp_path: Path) -> None:
    """Keeps bench/recovery.py from rotting: one 1 s outage of its own embedded PostgreSQL."""
    from bench.recovery import RecoveryOptions, measure_recovery

    result = await measure_recovery(RecoveryOptions(outages=1, outage_s=1.0, settle_s=0.2), tmp_path)
    for face in ("agent", "console"):
        assert result[face]["n"] == 1
        assert 0 <= result[face]["p95_s"] <= 3.0  # loose: the machine is shared
