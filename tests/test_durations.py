"""core.durations: the prose and compact renderings (the exact one is tested with the config)."""

from __future__ import annotations

import pytest

from core.durations import format_duration_compact, format_duration_human


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0, "0s"),
        (-3, "0s"),
        (1.06, "1.1s"),
        (45, "45s"),
        (59.9, "59s"),
        (300, "5m"),
        (312, "5m 12s"),
        (3600, "1h"),
        (3660, "1h 1m"),
        (7260, "2h 1m"),
        (86400, "1d"),
        (90000, "1d 1h"),
    ],
)
def test_human(seconds: float, text: str) -> None:
    assert format_duration_human(seconds) == text


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0, "0s"),
        (-3, "0s"),
        (1.06, "1s"),
        (59.9, "59s"),
        (60, "1m00s"),
        (312, "5m12s"),
        (3900, "1h05m"),
        (86399, "23h59m"),
        (90000, "1d01h"),
    ],
)
def test_compact(seconds: float, text: str) -> None:
    assert format_duration_compact(seconds) == text
