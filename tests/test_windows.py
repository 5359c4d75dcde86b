"""Rolling per-endpoint statistics: state, uptime buckets, quantiles, bounded memory."""

from __future__ import annotations

import random
import statistics
import sys
import time
from datetime import UTC, datetime, timedelta

import pytest

from core.probes import Outcome, ProbeSample
from core.snapshot import EndpointState
from core.windows import EndpointWindow, UptimeRing, quantile

T0 = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def sample(
    t: float, latency: float = 10.0, outcome: Outcome = Outcome.OK, status: int | None = 200
) -> ProbeSample:
    if outcome in (Outcome.TIMEOUT, Outcome.CONNECT_REFUSED, Outcome.DNS, Outcome.TLS):
        status = None
    return ProbeSample("api", at(t), latency, status, outcome, "" if outcome is Outcome.OK else "err")


def test_quantile_matches_statistics_inclusive() -> None:
    rng = random.Random(7)
    data = sorted(rng.uniform(1, 500) for _ in range(257))
    cuts = statistics.quantiles(data, n=100, method="inclusive")
    for q in (50, 95, 99):
        assert quantile(data, q / 100) == pytest.approx(cuts[q - 1])
    assert quantile([4.0], 0.99) == 4.0
    with pytest.raises(ValueError):
        quantile([], 0.5)


def test_state_and_down_since() -> None:
    w = EndpointWindow(clock=lambda: at(1000))
    assert w.state is EndpointState.UNKNOWN and w.down_for_s() == 0.0
    w.add(sample(0))
    assert w.state is EndpointState.UP and w.down_since is None
    w.add(sample(10, outcome=Outcome.HTTP_STATUS, status=503))
    assert w.state is EndpointState.FAILING and w.down_since == at(10)  # one failure: not yet DOWN
    w.add(sample(20, outcome=Outcome.TIMEOUT, latency=5000))
    assert w.state is EndpointState.DOWN and w.down_since == at(10)
    assert w.down_for_s(at(70)) == 60.0
    assert w.down_for_s() == 990.0  # injected clock
    w.add(sample(30))
    assert w.state is EndpointState.UP and w.down_since is None and w.down_for_s(at(70)) == 0.0
    assert [f.at for f in w.recent_failures()] == [at(10), at(20)]
    assert w.recent_failures()[0].status_code == 503


def test_a_single_failed_probe_is_failing_and_down_after_confirms() -> None:
    """A blip reads amber on the wall; the alert clock (down_for) still starts at the first failure."""
    w = EndpointWindow(down_after=3)
    for t in (0, 10, 20):
        w.add(sample(t))
    w.add(sample(30, outcome=Outcome.CONNECT_REFUSED))
    w.add(sample(40))
    assert w.state is EndpointState.UP and w.failures_in_a_row == 0
    states = []
    for t in (50, 60, 70):
        w.add(sample(t, outcome=Outcome.HTTP_STATUS, status=502))
        states.append(w.state)
    assert states == [EndpointState.FAILING, EndpointState.FAILING, EndpointState.DOWN]
    assert w.down_for_s(at(70)) == 20.0
    instant = EndpointWindow(down_after=1)
    instant.add(sample(0, outcome=Outcome.TIMEOUT))
    assert instant.state is EndpointState.DOWN


def test_restored_streak_that_began_earlier_is_down() -> None:
    """After a restart only recent samples are replayed; an older start of the streak confirms it."""
    w = EndpointWindow()
    w.add(sample(100, outcome=Outcome.HTTP_STATUS, status=503), count_uptime=False)
    assert w.state is EndpointState.FAILING
    w.restore_down_since(at(0))
    assert w.state is EndpointState.DOWN and w.down_for_s(at(160)) == 160.0


def test_older_sample_never_changes_state() -> None:
    w = EndpointWindow()
    w.add(sample(0))
    w.add(sample(20))
    w.add(sample(10, outcome=Outcome.HTTP_STATUS, status=500))
    assert w.state is EndpointState.UP and w.last is not None and w.last.at == at(20)
    assert w.error_rate(at(20)) == pytest.approx(1 / 3)


def test_window_quantiles_and_error_rate() -> None:
    w = EndpointWindow(window_s=60)
    for i in range(12):  # every 5 s for a minute: latencies 10, 20, ..., 120
        w.add(sample(i * 5, latency=10.0 * (i + 1)))
    now = at(55)
    data = [10.0 * (i + 1) for i in range(12)]
    assert w.p50_ms(now) == pytest.approx(quantile(data, 0.5))
    assert w.p95_ms(now) == pytest.approx(quantile(data, 0.95))
    assert w.p99_ms(now) == pytest.approx(quantile(data, 0.99))
    assert w.error_rate(now) == 0.0 and w.samples_in_window(now) == 12
    w.add(sample(60, outcome=Outcome.HTTP_STATUS, status=500, latency=1000))
    w.add(sample(62, outcome=Outcome.CONNECT_REFUSED, latency=0.1))
    now = at(62)  # samples at 0 s has left the window; 2 of 13 failed
    assert w.samples_in_window(now) == 13
    assert w.error_rate(now) == pytest.approx(2 / 13)
    # the refused connection does not count as a (fast) latency; the 500 does
    assert w.p99_ms(now) == pytest.approx(quantile(sorted([*data[1:], 1000.0]), 0.99))
    assert w.samples_in_window(at(200)) == 0 and w.error_rate(at(200)) is None and w.p95_ms(at(200)) is None


def test_timeouts_count_as_latency() -> None:
    w = EndpointWindow(window_s=60)
    w.add(sample(0, latency=20))
    w.add(sample(1, outcome=Outcome.TIMEOUT, latency=5000))
    assert w.p99_ms(at(1)) == pytest.approx(quantile([20.0, 5000.0], 0.99))


def test_cached_stats_follow_the_clock() -> None:
    w = EndpointWindow(window_s=10)
    w.add(sample(0, latency=100))
    w.add(sample(5, latency=10))
    assert w.p50_ms(at(5)) == pytest.approx(55)
    assert w.p50_ms(at(10)) == pytest.approx(55)
    assert w.p50_ms(at(10.5)) == pytest.approx(10)  # first sample left the window
    assert w.p50_ms(at(5)) == pytest.approx(55)  # asking about an earlier time recomputes


def test_uptime_buckets() -> None:
    w = EndpointWindow()
    for i in range(360):  # first hour all ok, second hour every other probe fails
        w.add(sample(i * 10))
    for i in range(360, 720):
        failed = i % 2 == 1
        w.add(sample(i * 10, outcome=Outcome.HTTP_STATUS if failed else Outcome.OK, status=500))
    now = at(7190)
    assert w.uptime_1h(now) == pytest.approx(0.5, abs=0.01)
    assert w.uptime_24h(now) == pytest.approx(0.75, abs=0.01)
    assert w.uptime_1h(now + timedelta(hours=2)) is None
    assert w.uptime_24h(now + timedelta(hours=23)) == pytest.approx(0.5, abs=0.01)  # first hour aged out
    assert w.uptime_24h(now + timedelta(hours=26)) is None


def test_uptime_ring_wraps_and_ignores_too_old() -> None:
    ring = UptimeRing(4, 10.0)
    ring.add(5, 1)
    ring.add(15, 0)
    assert ring.counts(19) == (1, 2)
    ring.add(65, 1)  # jumps past the whole ring: the old buckets are cleared
    assert ring.counts(65) == (1, 1)
    ring.add(25, 1)  # older than the ring holds: ignored
    assert ring.counts(65) == (1, 1)
    ring.add(45, 0, 3)
    assert ring.counts(65) == (1, 4)
    assert ring.counts(99) == (1, 1)  # the ring covers buckets [60, 100)
    assert ring.counts(100) == (0, 0)


def test_history_and_view() -> None:
    w = EndpointWindow(window_s=300, history=5)
    for i in range(8):
        w.add(sample(i, latency=float(i)))
    w.add(sample(8, outcome=Outcome.HTTP_STATUS, status=503, latency=8.0))
    view = w.view(name="api", url="http://host/***", service="pos", now=at(9))
    assert view.latency_history == (4.0, 5.0, 6.0, 7.0, 8.0)
    assert (view.name, view.url, view.service) == ("api", "http://host/***", "pos")
    assert view.state is EndpointState.FAILING and view.down_since == at(8)
    assert (view.last_status, view.last_outcome, view.last_error) == (503, "http_status", "err")
    assert view.last_checked == at(8) and view.last_latency_ms == 8.0
    assert view.samples_in_window == 9 and view.error_rate == pytest.approx(1 / 9)
    assert view.p50_ms == pytest.approx(4.0)
    assert view.uptime_1h == pytest.approx(8 / 9)
    empty = EndpointWindow().view(name="x", url="u", service="s", now=at(0))
    assert empty.state is EndpointState.UNKNOWN and empty.p95_ms is None and empty.uptime_24h is None


def test_memory_stays_bounded_after_a_million_samples() -> None:
    w = EndpointWindow(window_s=300, history=120, max_samples=4096)
    base = T0.timestamp()
    outcomes = [Outcome.OK] * 9 + [Outcome.HTTP_STATUS]
    started = time.perf_counter()
    for i in range(1_000_000):
        outcome = outcomes[i % 10]
        w.add(ProbeSample("api", datetime.fromtimestamp(base + i, UTC), float(i % 97), 200, outcome))
    elapsed = time.perf_counter() - started
    assert len(w._recent) == 301  # 1 s interval, 300 s window (both ends inclusive)
    assert len(w._history) == 120 and len(w._failures) == 20
    size = sum(sys.getsizeof(x) for x in (w._recent, w._history, w._failures, w._hour._ok, w._day._ok))
    assert size < 64 * 1024
    now = datetime.fromtimestamp(base + 999_999, UTC)
    assert w.error_rate(now) == pytest.approx(0.1, abs=0.01)
    assert w.uptime_24h(now) == pytest.approx(0.9, abs=0.001)
    assert elapsed < 30  # ~3 us per sample; generous for a loaded machine


def test_max_samples_caps_a_dense_window() -> None:
    w = EndpointWindow(window_s=3600, max_samples=100)
    for i in range(1000):
        w.add(sample(i * 0.5))
    assert w.samples_in_window(at(500)) == 100
