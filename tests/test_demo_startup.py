"""Demo start-up stays fast, and bench/demo.py keeps measuring what a user sees.

Two real `opswatch demo` start-ups (first run with initdb, then a reuse of the data directory)
through the benchmark's in-process breakdown, each in its own process, about 8 s in all.
Bounds are loose (the machine is shared); bench/README.md has the real figures.
"""

from __future__ import annotations

from pathlib import Path

from bench.demo import breakdown_run, painted

BEFORE_DATA = """\
 opswatch · Overview                                                         updated 16:03:00  16:03:00
 ┏━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━┓ ╭─────────────────────────────────────╮ ╭────────────────────────╮
 ┃ Alerts                             ┃ │ Dead letters                        │ │ Database               │
 ┃ ✖ 0 crit  ▲ 0 warn  … 0 pending    ┃ │ no data yet                         │ │ checking...            │
 ┃ ✔ no active alerts                 ┃ │                                     │ │                        │
 ╭────────────────────────────────────╮
 │ health  ? UNKNOWN                  │
 │ now —  p95 —                       │
"""

WITH_DATA = """\
 opswatch · Overview                                                         updated 16:03:05  16:03:05
 ┏━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━┓ ╭─────────────────────────────────────╮ ╭────────────────────────╮
 ┃ Alerts                             ┃ │ Dead letters                        │ │ Database               │
 ┃ ✖ 1 crit  ▲ 2 warn  … 0 pending    ┃ │ pending 26                          │ │ ● UP  rtt 1.1ms        │
 ╭────────────────────────────────────╮ ┏━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━┓
 │ health  ● UP                       │ ┃ worker-steps  ✖ DOWN 5s             ┃
 │ now 6.9ms  p95 85ms                │ ┃ now 7.0ms  p95 32ms                 ┃
"""


def test_paint_detector_waits_for_real_data() -> None:
    assert painted(BEFORE_DATA) == {"overview": True, "endpoint": False, "dlq": False, "db": False}
    assert all(painted(WITH_DATA).values())
    stale = WITH_DATA.replace("│ pending 26", "╏ pending 26")  # a stale tile has a dashed border
    assert painted(stale)["dlq"]


def test_first_and_second_start_paint_the_overview_in_time(tmp_path: Path) -> None:
    data_dir = tmp_path / "demo"
    first = breakdown_run(data_dir, 0.0)
    second = breakdown_run(data_dir, 0.0)
    for run in (first, second):
        at = run["at"]
        assert 0 < at["env_up"] < at["first_frame"] <= at["paint"] <= at["paint_fresh"], at
    assert first["steps"]["initdb"] > 0
    assert second["steps"]["initdb"] == 0
    assert first["at"]["paint_fresh"] < 15.0, first
    assert second["at"]["paint_fresh"] < 10.0, second
