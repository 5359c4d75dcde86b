from __future__ import annotations

import itertools

import pytest

from core.demo.scenario import (
    CYCLE_S,
    DEFAULT_SPEED,
    DROP,
    PRODUCTS,
    SALES,
    TIMELINE,
    WORKER_STEPS,
    Scenario,
)


def test_same_seed_same_answers_and_another_seed_differs() -> None:
    a, b, c = Scenario(7, 30), Scenario(7, 30), Scenario(8, 30)
    times = [i * 0.37 for i in range(200)]
    for path in (SALES, WORKER_STEPS, PRODUCTS, "/test/health"):
        assert [a.behaviour(path, t) for t in times] == [b.behaviour(path, t) for t in times]
    assert [a.behaviour(SALES, t) for t in times] != [c.behaviour(SALES, t) for t in times]


def test_default_speed_fires_the_first_alerts_within_30_s_then_leaves_quiet_time() -> None:
    s = Scenario(1)
    assert s.speed == DEFAULT_SPEED == 30
    outage = next(i for i in TIMELINE if i.kind == "outage")
    # down for more than 5 scenario minutes, and that moment is within 30 s real of the start
    assert outage.end - outage.start > 300 + 60
    assert s.real_time(outage.start + 300) < 30
    assert s.real_time(outage.end) < 20  # and it resolves within the 20 s headless test
    # few, long incidents: a good part of every cycle is quiet
    assert max(i.end for i in TIMELINE) <= CYCLE_S * 0.6
    assert s.cycle_real_s >= 8 * 60


def test_phases_at_speed_30() -> None:
    s = Scenario(1, 30)
    assert s.phase_at(0.1) == "normal"
    assert s.behaviour(SALES, 0.1).status == 200
    assert s.behaviour(SALES, 0.1).delay_s < 0.5

    phase = s.phase_at(5.0)
    assert "worker steps down" in phase and "sales slow" in phase and "products errors ~8 %" in phase
    for i in range(20):
        status, delay = s.behaviour(SALES, 5.0 + i / 10)
        assert status == 200 and 2.2 <= delay <= 2.9  # the latency itself is real, not compressed
    outage = {s.behaviour(WORKER_STEPS, 5.0 + i / 10).status for i in range(40)}
    assert outage == {503, DROP}

    assert s.behaviour(WORKER_STEPS, 15.0).status == 200
    assert s.phase_at(30.0) == "products errors ~8 %"
    assert s.phase_at(90.0) == "products errors 25 %"
    assert s.phase_at(120.0) == "normal"
    assert s.phase_at(s.cycle_real_s + 5.0) == phase  # cycles repeat
    assert s.cycle_real_s == CYCLE_S / 30


def test_sales_latency_flaps_around_2_s_for_half_a_minute() -> None:
    s = Scenario(1, 30)
    flapping = next(i for i in TIMELINE if i.pulse is not None)
    assert flapping.endpoint == SALES and "flapping" in flapping.label
    start = s.real_time(flapping.start)
    slow = [s.behaviour(SALES, start + k * 0.5).delay_s >= 2.0 for k in range(int(36 / 0.5))]
    flips = sum(1 for a, b in itertools.pairwise(slow) if a != b)
    assert slow[0] and flips >= 8  # slow 3 s, fast 3 s, ... for 36 s
    assert s.behaviour(SALES, s.real_time(flapping.end) + 1).delay_s < 0.5
    assert "3 s on, 3 s off" in s.describe()


def test_latency_is_not_compressed_but_phases_are() -> None:
    slow = Scenario(1, 1.0)
    assert slow.phase_at(5.0) == "normal"  # 5 scenario seconds: before anything happens
    assert "sales slow" in slow.phase_at(60.0)
    assert 2.2 <= slow.behaviour(SALES, 60.0).delay_s <= 2.9


def test_error_bursts_cross_5_and_10_percent_exactly_with_request_numbers() -> None:
    s = Scenario(1, 30)
    warn = [s.behaviour(PRODUCTS, 10.0, seq).status for seq in range(130)]
    assert warn.count(500) == 10  # 7.7 %: above 5 %, below 10 %
    crit = [s.behaviour(PRODUCTS, 90.0, seq).status for seq in range(100)]
    assert crit.count(500) == 25
    calm = [s.behaviour(PRODUCTS, 120.0, seq).status for seq in range(100)]
    assert calm.count(500) == 0
    sampled = [s.behaviour(PRODUCTS, 90.0 + i / 1000).status for i in range(2000)]
    assert 0.18 < sampled.count(500) / 2000 < 0.32  # without request numbers: the same rate on average


def test_unknown_endpoint_is_healthy_and_bad_speed_is_refused() -> None:
    s = Scenario(1, 30)
    assert s.behaviour("/api/v1/unknown/", 5.0).status == 200
    assert s.behaviour("/api/v1/sales/?page=2", 5.0).delay_s >= 2.2  # normalised path
    with pytest.raises(ValueError, match="speed"):
        Scenario(1, 0)
    assert "speed 30x" in s.describe() and "/api/v1/worker/steps" in s.describe()
