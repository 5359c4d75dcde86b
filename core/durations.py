"""Human-friendly durations and sizes: ``"500ms"``, ``"5m"``, ``"1h30m"`` and ``"5MB"``.

Durations are float seconds everywhere in opswatch; sizes are int bytes (binary units:
``1KB == 1024``, so the seed's ``5MB`` is Winston's ``maxsize: 5242880``).

Three duration renderings, each kept where its output is relied on: ``format_duration`` is the
exact form ``parse_duration`` reads back (config files); ``format_duration_human`` is for prose
(notifications, CLI messages: ``"5m 12s"``); ``format_duration_compact`` is for table cells and
ages on the console (``"5m12s"``, ``"1h05m"``).
"""

from __future__ import annotations

import itertools
import math
import re

__all__ = [
    "format_duration",
    "format_duration_compact",
    "format_duration_human",
    "format_size",
    "parse_duration",
    "parse_size",
]

_DURATION_UNITS: dict[str, float] = {
    "ms": 0.001,
    "s": 1.0,
    "m": 60.0,
    "h": 3600.0,
    "d": 86400.0,
    "w": 604800.0,
}
_NUMBER = r"(?:\d+(?:\.\d*)?|\.\d+)"
_DURATION_PART = re.compile(rf"({_NUMBER})\s*(ms|s|m|h|d|w)", re.IGNORECASE)
_DURATION_FULL = re.compile(rf"(?:{_NUMBER}\s*(?:ms|s|m|h|d|w)\s*)+", re.IGNORECASE)
_PLAIN_NUMBER = re.compile(rf"{_NUMBER}")

_SIZE_UNITS: dict[str, int] = {
    "": 1,
    "b": 1,
    "k": 1024,
    "kb": 1024,
    "kib": 1024,
    "m": 1024**2,
    "mb": 1024**2,
    "mib": 1024**2,
    "g": 1024**3,
    "gb": 1024**3,
    "gib": 1024**3,
    "t": 1024**4,
    "tb": 1024**4,
    "tib": 1024**4,
}
_SIZE = re.compile(rf"({_NUMBER})\s*([a-z]*)", re.IGNORECASE)


def parse_duration(value: object) -> float:
    """Seconds from ``"500ms"``, ``"30s"``, ``"5m"``, ``"1h"``, ``"1d"``, ``"1w"``, ``"1h30m"`` or a number.

    Plain numbers (``30``, ``"2.5"``) are seconds. A leading ``-`` is accepted so that callers
    can say "must be positive" rather than "invalid". Raises ``ValueError`` on anything else.
    """
    if isinstance(value, bool):
        raise ValueError(f"expected a duration like '30s' or '5m', got {value!r}")
    if isinstance(value, int | float):
        seconds = float(value)
    elif isinstance(value, str):
        seconds = _parse_duration_text(value)
    else:
        raise ValueError(f"expected a duration like '30s' or '5m', got {value!r}")
    if not math.isfinite(seconds):
        raise ValueError(f"duration must be finite, got {value!r}")
    return seconds


def _parse_duration_text(value: str) -> float:
    text = value.strip()
    sign = 1.0
    if text.startswith("-"):
        sign, text = -1.0, text[1:].strip()
    elif text.startswith("+"):
        text = text[1:].strip()
    if _PLAIN_NUMBER.fullmatch(text):
        return sign * float(text)
    if not text or not _DURATION_FULL.fullmatch(text):
        raise ValueError(
            f"invalid duration {value!r} (use a number of seconds or units ms, s, m, h, d, w: '500ms', '5m')"
        )
    total = sum(float(num) * _DURATION_UNITS[unit.lower()] for num, unit in _DURATION_PART.findall(text))
    return sign * total


def format_duration(seconds: float) -> str:
    """The shortest exact form: ``0.5 -> "500ms"``, ``300 -> "5m"``, ``90 -> "90s"``, ``86400 -> "1d"``."""
    if seconds == 0:
        return "0s"
    sign = "-" if seconds < 0 else ""
    magnitude = abs(seconds)
    for unit in ("d", "h", "m", "s"):
        count = magnitude / _DURATION_UNITS[unit]
        if count >= 1 and math.isclose(count, round(count), rel_tol=0, abs_tol=1e-9):
            return f"{sign}{round(count)}{unit}"
    millis = magnitude * 1000
    if math.isclose(millis, round(millis), rel_tol=0, abs_tol=1e-6):
        return f"{sign}{round(millis)}ms"
    return f"{sign}{magnitude:g}s"


_CLOCK_UNITS = ((86400, "d"), (3600, "h"), (60, "m"), (1, "s"))


def _leading_units(total: int) -> tuple[tuple[int, str], tuple[int, str] | None]:
    """The largest non-zero unit of ``total`` whole seconds and the unit below it (none under a minute)."""
    for (size, name), (low_size, low_name) in itertools.pairwise(_CLOCK_UNITS):
        if total >= size:
            return (total // size, name), ((total % size) // low_size, low_name)
    return (total, "s"), None


def format_duration_human(seconds: float) -> str:
    """``312 -> "5m 12s"``, ``7260 -> "2h 1m"``, ``300 -> "5m"``, ``45 -> "45s"``, ``1.06 -> "1.1s"``."""
    if 0 < seconds < 10 and seconds != int(seconds):
        return f"{seconds:.1f}s"
    (high, unit), low = _leading_units(max(0, int(seconds)))
    if low is None or low[0] == 0:
        return f"{high}{unit}"
    return f"{high}{unit} {low[0]}{low[1]}"


def format_duration_compact(seconds: float) -> str:
    """``45 -> "45s"``, ``312 -> "5m12s"``, ``3900 -> "1h05m"``, ``90000 -> "1d01h"`` (negatives are 0s)."""
    (high, unit), low = _leading_units(max(0, int(seconds)))
    if low is None:
        return f"{high}{unit}"
    return f"{high}{unit}{low[0]:02d}{low[1]}"


def parse_size(value: object) -> int:
    """Bytes from ``"5MB"``, ``"512KB"``, ``"1GB"``, ``"1.5GiB"`` or a plain integer number of bytes.

    Units are binary and case-insensitive (``KB``/``KiB``/``K`` = 1024). Raises ``ValueError``.
    """
    if isinstance(value, bool):
        raise ValueError(f"expected a size like '5MB', got {value!r}")
    if isinstance(value, int):
        size = float(value)
    elif isinstance(value, float):
        size = value
    elif isinstance(value, str):
        match = _SIZE.fullmatch(value.strip())
        if match is None or match.group(2).lower() not in _SIZE_UNITS:
            raise ValueError(f"invalid size {value!r} (use bytes or a unit: '512KB', '5MB', '1GB')")
        size = float(match.group(1)) * _SIZE_UNITS[match.group(2).lower()]
    else:
        raise ValueError(f"expected a size like '5MB', got {value!r}")
    if not math.isfinite(size) or size != int(size):
        raise ValueError(f"size must be a whole number of bytes, got {value!r}")
    return int(size)


def format_size(size: int) -> str:
    """The largest exact binary unit: ``5242880 -> "5MB"``, ``1536 -> "1536B"`` if not a whole KB."""
    for unit in ("TB", "GB", "MB", "KB"):
        factor = _SIZE_UNITS[unit.lower()]
        if size and size % factor == 0:
            return f"{size // factor}{unit}"
    return f"{size}B"
