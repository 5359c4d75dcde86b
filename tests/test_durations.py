"""core.durations: the prose and compact renderings side by side (the exact one is tested with the config)."""

from __future__ import annotations

import pytest

from core.durations import format_duration_compact, format_duration_human


@pytest.mark.parametrize(
    ("seconds", "human", "compact"),
    [
        (0, "0s", "0s"),
        (-3, "0s", "0s"),
        (1.06, "1.1s", "1s"),
        (45, "45s", "45s"),
        (59.9, "59s", "59s"),
        (60, "1m", "1m00s"),
        (312, "5m 12s", "5m12s"),
        (3600, "1h", "1h00m"),
        (3660, "1h 1m", "1h01m"),
        (3900, "1h 5m", "1h05m"),
        (7260, "2h 1m", "2h01m"),
        (86399, "23h 59m", "23h59m"),
        (86400, "1d", "1d00h"),
        (90000, "1d 1h", "1d01h"),
    ],
)
def test_human_and_compact(seconds: float, human: str, compact: str) -> None:
    assert (format_duration_human(seconds), format_duration_compact(seconds)) == (human, compact)
