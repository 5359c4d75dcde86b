"""Rolling per-endpoint statistics with memory bounded whatever the run time.

* state / down since: from the latest sample (down on any failed sample);
* uptime over 1 h and 24 h: fixed rings of counters (1-minute buckets for the hour,
  5-minute buckets for the day: 60 + 288 slots), so the 24 h edge is exact to 5 minutes;
* latency p50/p95/p99 and error rate over ``window_s``: a ring of recent samples capped at
  ``max_samples`` (when the window holds more, the most recent ``max_samples`` count);
* latency history for sparklines: the last ``history`` latencies.

Latency quantiles cover samples that got a response or timed out: a refused connection
answers in microseconds and would otherwise make a dead endpoint look fast.
"""

from __future__ import annotations

import math
from array import array
from collections import deque
from dataclasses import dataclass
from datetime import datetime

from core.clock import Clock, utcnow
from core.probes import Outcome, ProbeSample
from core.snapshot import EndpointState, EndpointView, ProbeFailure

__all__ = ["EndpointWindow", "UptimeRing", "quantile"]


def quantile(ordered: list[float], q: float) -> float:
    """Linear interpolation between closest ranks (numpy's default) on sorted data."""
    if not ordered:
        raise ValueError("quantile of no data")
    pos = q * (len(ordered) - 1)
    lo = math.floor(pos)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


class UptimeRing:
    """``size`` buckets of ``span_s`` seconds each: (ok, total) counters per bucket.

    Running sums over all buckets make :meth:`counts` O(1) while ``now`` is in the newest
    bucket (rules and snapshots ask several times a second for every endpoint).
    """

    __slots__ = ("_head", "_ok", "_sum_ok", "_sum_total", "_total", "size", "span_s")

    def __init__(self, size: int, span_s: float) -> None:
        self.size = size
        self.span_s = span_s
        self._ok = array("I", bytes(4 * size))
        self._total = array("I", bytes(4 * size))
        self._sum_ok = 0
        self._sum_total = 0
        self._head: int | None = None  # absolute index of the newest bucket written

    def add(self, ts: float, ok: int, total: int = 1) -> None:
        bucket = int(ts // self.span_s)
        head = self._head
        if head is None or bucket > head:
            self._advance(bucket)
        elif bucket <= head - self.size:
            return
        slot = bucket % self.size
        self._ok[slot] += ok
        self._total[slot] += total
        self._sum_ok += ok
        self._sum_total += total

    def _advance(self, bucket: int) -> None:
        head = self._head
        if head is not None and bucket - head < self.size:
            for b in range(head + 1, bucket + 1):
                slot = b % self.size
                self._sum_ok -= self._ok[slot]
                self._sum_total -= self._total[slot]
                self._ok[slot] = 0
                self._total[slot] = 0
        elif head is not None:
            self._ok = array("I", bytes(4 * self.size))
            self._total = array("I", bytes(4 * self.size))
            self._sum_ok = self._sum_total = 0
        self._head = bucket

    def counts(self, now_ts: float) -> tuple[int, int]:
        """(ok, total) over the ``size`` buckets ending with the one holding ``now_ts``."""
        if self._head is None:
            return 0, 0
        now_bucket = int(now_ts // self.span_s)
        if now_bucket == self._head:
            return self._sum_ok, self._sum_total
        lo = now_bucket - self.size + 1
        hi = min(self._head, now_bucket)
        ok = total = 0
        for b in range(max(lo, self._head - self.size + 1), hi + 1):
            slot = b % self.size
            ok += self._ok[slot]
            total += self._total[slot]
        return ok, total

    def ratio(self, now_ts: float) -> float | None:
        ok, total = self.counts(now_ts)
        return ok / total if total else None


class EndpointWindow:
    def __init__(
        self,
        window_s: float = 300.0,
        *,
        history: int = 120,
        max_samples: int = 4096,
        failures: int = 20,
        down_after: int = 2,
        clock: Clock = utcnow,
    ) -> None:
        self.window_s = window_s
        self.down_after = down_after
        self.max_samples = max_samples
        self._clock = clock
        # (timestamp, latency or None if it does not count for quantiles, ok)
        self._recent: deque[tuple[float, float | None, bool]] = deque()
        self._history: deque[float] = deque(maxlen=history)
        self._failures: deque[ProbeFailure] = deque(maxlen=failures)
        self._hour = UptimeRing(60, 60.0)
        self._day = UptimeRing(288, 300.0)
        self.last: ProbeSample | None = None
        self.down_since: datetime | None = None
        self.failures_in_a_row = 0
        self._version = 0
        self._cache: tuple[int, float, _Stats] | None = None
        self._view_cache: tuple[tuple[object, ...], EndpointView] | None = None

    # -- input ---------------------------------------------------------------------------------

    def add(self, sample: ProbeSample, *, count_uptime: bool = True) -> None:
        """Record one sample (``count_uptime=False`` when the uptime rings were seeded separately)."""
        ts = sample.at.timestamp()
        ok = sample.outcome is Outcome.OK
        if count_uptime:
            self._hour.add(ts, ok)
            self._day.add(ts, ok)
        last = self.last
        if last is not None and sample.at < last.at:
            self._insert_old(ts, sample, ok)
            return
        self.last = sample
        if ok:
            self.down_since = None
            self.failures_in_a_row = 0
        else:
            self.failures_in_a_row += 1
            if self.down_since is None:
                self.down_since = sample.at
            self._failures.append(
                ProbeFailure(
                    sample.at, str(sample.outcome), sample.status_code, sample.error, sample.latency_ms
                )
            )
        counted = sample.status_code is not None or sample.outcome is Outcome.TIMEOUT
        recent = self._recent
        recent.append((ts, sample.latency_ms if counted else None, ok))
        horizon = ts - self.window_s
        while recent and (recent[0][0] < horizon or len(recent) > self.max_samples):
            recent.popleft()
        self._history.append(sample.latency_ms)
        self._version += 1

    def _insert_old(self, ts: float, sample: ProbeSample, ok: bool) -> None:
        """A sample older than the latest one only feeds the statistics, never the state."""
        if not self._recent or ts < self._recent[0][0]:
            return
        counted = sample.status_code is not None or sample.outcome is Outcome.TIMEOUT
        items = list(self._recent)
        items.append((ts, sample.latency_ms if counted else None, ok))
        items.sort(key=lambda item: item[0])
        self._recent = deque(items[-self.max_samples :])
        self._version += 1

    def seed_uptime(self, ts: float, ok: int, total: int) -> None:
        """Add pre-aggregated counts (from the database) to both uptime rings."""
        self._hour.add(ts, ok, total)
        self._day.add(ts, ok, total)
        self._version += 1

    def restore_down_since(self, at: datetime) -> None:
        """After a restart: the failure streak began before the replayed samples did."""
        if self.last is not None and not self.last.ok and (self.down_since is None or at < self.down_since):
            self.down_since = at
            self.failures_in_a_row = max(self.failures_in_a_row, self.down_after)
            self._version += 1

    # -- numbers for rules and views -----------------------------------------------------------

    @property
    def state(self) -> EndpointState:
        if self.last is None:
            return EndpointState.UNKNOWN
        if self.last.ok:
            return EndpointState.UP
        return EndpointState.DOWN if self.failures_in_a_row >= self.down_after else EndpointState.FAILING

    @property
    def last_latency_ms(self) -> float | None:
        return self.last.latency_ms if self.last is not None else None

    @property
    def latency_ms(self) -> float | None:
        return self.last_latency_ms

    def down_for_s(self, now: datetime | None = None) -> float:
        if self.down_since is None:
            return 0.0
        return max(0.0, ((now or self._clock()) - self.down_since).total_seconds())

    def error_rate(self, now: datetime | None = None) -> float | None:
        return self._stats(now).error_rate

    def p50_ms(self, now: datetime | None = None) -> float | None:
        return self._stats(now).p50

    def p95_ms(self, now: datetime | None = None) -> float | None:
        return self._stats(now).p95

    def p99_ms(self, now: datetime | None = None) -> float | None:
        return self._stats(now).p99

    def samples_in_window(self, now: datetime | None = None) -> int:
        return self._stats(now).count

    def uptime_1h(self, now: datetime | None = None) -> float | None:
        return self._hour.ratio((now or self._clock()).timestamp())

    def uptime_24h(self, now: datetime | None = None) -> float | None:
        return self._day.ratio((now or self._clock()).timestamp())

    def history(self) -> tuple[float, ...]:
        return tuple(self._history)

    def recent_failures(self) -> tuple[ProbeFailure, ...]:
        """Most recent last."""
        return tuple(self._failures)

    def view(self, *, name: str, url: str, service: str, now: datetime | None = None) -> EndpointView:
        """``url`` must already be masked for display.

        Cached: snapshots are built several times a second, an endpoint gets a sample every few
        seconds. The view depends on the samples (version), the uptime buckets (they roll over on
        minute marks) and the window statistics (a new object once a sample leaves the window).
        """
        now = now or self._clock()
        stats = self._stats(now)
        key = (name, url, service, self._version, int(now.timestamp() // 60), stats)
        if self._view_cache is not None and self._view_cache[0] == key:
            return self._view_cache[1]
        last = self.last
        view = EndpointView(
            name=name,
            url=url,
            service=service,
            state=self.state,
            last_status=last.status_code if last else None,
            last_outcome=str(last.outcome) if last else "",
            last_error=last.error if last else "",
            last_latency_ms=last.latency_ms if last else None,
            p50_ms=stats.p50,
            p95_ms=stats.p95,
            p99_ms=stats.p99,
            error_rate=stats.error_rate,
            uptime_1h=self.uptime_1h(now),
            uptime_24h=self.uptime_24h(now),
            down_since=self.down_since,
            last_checked=last.at if last else None,
            latency_history=tuple(self._history),
            samples_in_window=stats.count,
        )
        self._view_cache = (key, view)
        return view

    def _stats(self, now: datetime | None) -> _Stats:
        now_ts = (now or self._clock()).timestamp()
        cache = self._cache
        if cache is not None and cache[0] == self._version and cache[2].at <= now_ts < cache[1]:
            return cache[2]
        horizon = now_ts - self.window_s
        latencies: list[float] = []
        count = failed = 0
        oldest = upcoming = math.inf
        for ts, latency, ok in self._recent:
            if ts > now_ts:
                upcoming = min(upcoming, ts)
                continue
            if ts < horizon:
                continue
            oldest = min(oldest, ts)
            count += 1
            if not ok:
                failed += 1
            if latency is not None:
                latencies.append(latency)
        latencies.sort()
        stats = _Stats(
            at=now_ts,
            count=count,
            error_rate=failed / count if count else None,
            p50=quantile(latencies, 0.50) if latencies else None,
            p95=quantile(latencies, 0.95) if latencies else None,
            p99=quantile(latencies, 0.99) if latencies else None,
        )
        # unchanged until the oldest counted sample leaves the window or a newer one enters it
        self._cache = (self._version, min(oldest + self.window_s, upcoming), stats)
        return stats


@dataclass(frozen=True, slots=True)
class _Stats:
    at: float
    count: int
    error_rate: float | None
    p50: float | None
    p95: float | None
    p99: float | None
