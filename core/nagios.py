"""The Monitoring Plugins conventions ``opswatch check`` speaks: states, ranges, performance data.

See the Monitoring Plugins development guidelines: output is ``SERVICE STATE - text | perfdata``
on the first line (long output on later lines), perfdata items are
``'label'=value[UOM];[warn];[crit];[min];[max]`` and thresholds are ranges (``10``, ``10:``,
``~:10``, ``10:20``, ``@10:20``).
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass

OK, WARNING, CRITICAL, UNKNOWN = 0, 1, 2, 3
STATE_NAMES = {OK: "OK", WARNING: "WARNING", CRITICAL: "CRITICAL", UNKNOWN: "UNKNOWN"}
_SEVERITY_ORDER = (OK, UNKNOWN, WARNING, CRITICAL)  # max_state_alt: critical > warning > unknown > ok


def worst(*states: int) -> int:
    """The state that wins when several apply (CRITICAL > WARNING > UNKNOWN > OK)."""
    return max(states, key=_SEVERITY_ORDER.index, default=OK)


def format_number(value: float) -> str:
    """Plain decimal (perfdata allows no exponent): ``2``, ``0.123``, ``1048576``."""
    if not math.isfinite(value):
        raise ValueError(f"not a finite number: {value!r}")
    if value == int(value) and abs(value) < 1e15:
        return str(int(value))
    text = f"{value:.6f}".rstrip("0").rstrip(".")
    return "0" if text in ("", "-0") else text


@dataclass(frozen=True)
class Range:
    """A threshold range: alert when the value is outside ``start..end`` (inside with ``@``)."""

    start: float = 0.0
    end: float = math.inf
    inside: bool = False

    @classmethod
    def parse(cls, text: str) -> Range:
        """``10`` (outside 0..10), ``10:`` (< 10), ``~:10`` (> 10), ``10:20``, ``@10:20`` (inside)."""
        raw = text.strip()
        inside = raw.startswith("@")
        body = raw[1:] if inside else raw
        if not body:
            raise ValueError(f"empty range {text!r}")
        if ":" in body:
            start_text, end_text = body.split(":", 1)
            start = -math.inf if start_text == "~" else _finite(start_text or "0", text)
            end = math.inf if end_text == "" else _finite(end_text, text)
        else:
            start, end = 0.0, _finite(body, text)
        if start > end:
            raise ValueError(f"range {text!r}: start is greater than end")
        return cls(start, end, inside)

    @classmethod
    def from_rule(cls, op: str, threshold: float, *, non_negative: bool) -> Range:
        """The range that alerts exactly when ``value op threshold``."""
        if op == ">":
            return cls(0.0 if non_negative and threshold >= 0 else -math.inf, threshold)
        if op == ">=":
            return cls(threshold, math.inf, inside=True)
        if op == "<":
            return cls(threshold, math.inf)
        return cls(-math.inf, threshold, inside=True)

    def alerts(self, value: float) -> bool:
        within = self.start <= value <= self.end
        return within if self.inside else not within

    def scaled(self, factor: float) -> Range:
        return Range(self.start * factor, self.end * factor, self.inside)

    def __str__(self) -> str:
        prefix = "@" if self.inside else ""
        if self.start == 0 and self.end != math.inf:
            return prefix + format_number(self.end)
        start = "~" if self.start == -math.inf else format_number(self.start)
        end = "" if self.end == math.inf else format_number(self.end)
        return f"{prefix}{start}:{end}"


def _finite(number: str, text: str) -> float:
    try:
        value = float(number)
    except ValueError:
        raise ValueError(f"range {text!r}: {number!r} is not a number") from None
    if not math.isfinite(value) or not re.fullmatch(r"[-+]?(\d+\.?\d*|\.\d+)", number.strip()):
        raise ValueError(f"range {text!r}: {number!r} is not a plain decimal number")
    return value


_LABEL_UNSAFE = re.compile(r"['=|\s\x00-\x1f\x7f-\x9f]")


def perf_label(text: str) -> str:
    """A label without ``'``, ``=``, ``|``, whitespace or control characters."""
    return _LABEL_UNSAFE.sub("_", text)[:120] or "_"


@dataclass(frozen=True)
class PerfDatum:
    label: str
    value: float | None  # None: undetermined ("U")
    uom: str = ""  # "", "s", "%", "B" or "c"
    warn: Range | None = None
    crit: Range | None = None
    min: float | None = None
    max: float | None = None

    def __str__(self) -> str:
        value = "U" if self.value is None or not math.isfinite(self.value) else format_number(self.value)
        unit = "" if value == "U" else self.uom
        fields = [
            "" if self.warn is None else str(self.warn),
            "" if self.crit is None else str(self.crit),
            "" if self.min is None else format_number(self.min),
            "" if self.max is None else format_number(self.max),
        ]
        return f"'{perf_label(self.label)}'={value}{unit};" + ";".join(fields)


_TEXT_UNSAFE = re.compile(r"[|\x00-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def plugin_text(text: str, limit: int = 300) -> str:
    """One line of plugin output: no ``|`` (it starts perfdata), no control characters."""
    cleaned = _TEXT_UNSAFE.sub(lambda m: "/" if m.group() == "|" else " ", text)
    return cleaned[:limit]


def status_line(service: str, state: int, text: str, perfdata: Sequence[PerfDatum] = ()) -> str:
    """``SERVICE STATE - text | perfdata`` (the first line of plugin output)."""
    line = f"{service} {STATE_NAMES[state]} - {plugin_text(text, 2000)}"
    if perfdata:
        line += " | " + " ".join(map(str, perfdata))
    return line
