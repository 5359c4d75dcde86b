"""Probe history in ``opswatch.probe_samples``: batched writes, retention, restore after restart.

Samples are buffered in memory and written with COPY, every ``flush()`` (the Monitor
calls it each ``probes.flush_interval``) or as soon as ``batch_rows`` are waiting. When
the database is unavailable the rows stay buffered and are retried on the next flush;
the buffer is bounded (``max_buffer``): beyond it the oldest rows are dropped and counted.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from loguru import logger

from core.clock import Clock, utcnow
from core.db import Database, DatabaseUnavailable
from core.probes import Outcome, ProbeSample
from core.safe_text import display_text

if TYPE_CHECKING:
    from core.windows import EndpointWindow

__all__ = ["BucketCount", "ProbeStore"]

_COLUMNS = ("endpoint", "at", "latency_ms", "status_code", "outcome", "error")
_OUTCOMES = {o.value: o for o in Outcome}


@dataclass(frozen=True)
class BucketCount:
    endpoint: str
    start: datetime
    ok: int
    total: int


class ProbeStore:
    def __init__(
        self,
        db: Database,
        *,
        retention_s: float = 7 * 86400.0,
        batch_rows: int = 1000,
        max_buffer: int = 100_000,
        purge_batch: int = 10_000,
        purge_max_batches: int = 100,
        clock: Clock = utcnow,
    ) -> None:
        self.db = db
        self.retention_s = retention_s
        self.batch_rows = batch_rows
        self.max_buffer = max_buffer
        self.purge_batch = purge_batch
        self.purge_max_batches = purge_max_batches
        self._clock = clock
        self._buffer: deque[ProbeSample] = deque()
        self._lock = asyncio.Lock()
        self._kick: asyncio.Task[None] | None = None
        self.written = 0
        self.dropped = 0
        self.last_error: str | None = None

    @property
    def pending(self) -> int:
        return len(self._buffer)

    def add(self, sample: ProbeSample) -> None:
        self._buffer.append(sample)
        if len(self._buffer) > self.max_buffer:
            self._buffer.popleft()
            self.dropped += 1
        if len(self._buffer) >= self.batch_rows and not self._lock.locked() and self.last_error is None:
            self._start_kick()

    def _start_kick(self) -> None:
        if self._kick is not None and not self._kick.done():
            return
        try:
            self._kick = asyncio.get_running_loop().create_task(self._flush_quietly())
        except RuntimeError:  # no running loop: the next scheduled flush writes them
            self._kick = None

    async def _flush_quietly(self) -> None:
        with contextlib.suppress(Exception):  # flush() recorded it; the next scheduled flush retries
            await self.flush()

    async def flush(self) -> int:
        """Write everything buffered; returns rows written.

        On failure the unwritten rows go back to the front of the buffer and the error is
        raised (``DatabaseUnavailable`` for connection loss).
        """
        written = 0
        async with self._lock:
            remaining = len(self._buffer)  # rows arriving meanwhile wait for the next flush
            while remaining > 0 and self._buffer:
                count = min(self.batch_rows, len(self._buffer), remaining)
                rows = [self._buffer.popleft() for _ in range(count)]
                try:
                    await self._write(rows)
                except BaseException as exc:
                    self._requeue(rows)
                    if not isinstance(exc, asyncio.CancelledError):
                        if isinstance(exc, DatabaseUnavailable):
                            self.last_error = exc.reason
                        else:
                            self.last_error = display_text(exc, 200, redact_secrets=True)
                            logger.opt(exception=exc).warning("writing probe samples failed")
                    raise
                written += count
                remaining -= count
                self.written += count
            self.last_error = None
        return written

    def _requeue(self, rows: Sequence[ProbeSample]) -> None:
        self._buffer.extendleft(reversed(rows))
        excess = len(self._buffer) - self.max_buffer
        for _ in range(max(0, excess)):
            self._buffer.popleft()
            self.dropped += 1

    async def _write(self, rows: Sequence[ProbeSample]) -> None:
        records = [
            (s.endpoint, s.at, s.latency_ms, s.status_code, s.outcome.value, s.error or None) for s in rows
        ]
        async with self.db.acquire() as conn:
            await conn.copy_records_to_table(
                "probe_samples", schema_name="opswatch", columns=_COLUMNS, records=records
            )

    async def enforce_retention(self, now: datetime | None = None) -> int:
        """Delete samples older than the retention period, ``purge_batch`` rows at a time."""
        cutoff = (now or self._clock()) - timedelta(seconds=self.retention_s)
        deleted = 0
        for _ in range(self.purge_max_batches):
            status = await self.db.execute(
                "DELETE FROM opswatch.probe_samples WHERE ctid = ANY(ARRAY("
                "SELECT ctid FROM opswatch.probe_samples WHERE at < $1 LIMIT $2))",
                cutoff,
                self.purge_batch,
            )
            count = int(status.rsplit(" ", 1)[-1])
            deleted += count
            if count < self.purge_batch:
                break
        return deleted

    async def load_recent(
        self, since: datetime, *, endpoints: Sequence[str] | None = None
    ) -> list[ProbeSample]:
        """Samples at or after ``since``, oldest first."""
        sql = (
            "SELECT endpoint, at, latency_ms, status_code, outcome, error FROM opswatch.probe_samples "
            "WHERE at >= $1"
        )
        args: list[Any] = [since]
        if endpoints is not None:
            sql += " AND endpoint = ANY($2::text[])"
            args.append(list(endpoints))
        rows = await self.db.fetch(sql + " ORDER BY at", *args)
        return [
            ProbeSample(
                r["endpoint"],
                r["at"],
                float(r["latency_ms"] or 0.0),
                r["status_code"],
                _OUTCOMES.get(r["outcome"], Outcome.OTHER),
                r["error"] or "",
            )
            for r in rows
        ]

    async def load_bucket_counts(self, since: datetime, bucket_s: float) -> list[BucketCount]:
        """(ok, total) per endpoint per ``bucket_s`` bucket (aligned to the Unix epoch)."""
        rows = await self.db.fetch(
            "SELECT endpoint, floor(extract(epoch FROM at) / $2)::bigint AS bucket, "
            "count(*) FILTER (WHERE outcome = 'ok') AS ok, count(*) AS total "
            "FROM opswatch.probe_samples WHERE at >= $1 GROUP BY 1, 2 ORDER BY 2",
            since,
            float(bucket_s),
        )
        return [
            BucketCount(
                r["endpoint"], datetime.fromtimestamp(r["bucket"] * bucket_s, UTC), r["ok"], r["total"]
            )
            for r in rows
        ]

    async def restore(
        self,
        windows: Mapping[str, EndpointWindow],
        *,
        now: datetime | None = None,
        recent_s: float | None = None,
    ) -> int:
        """Rebuild windows after a restart without replaying 24 h of raw samples.

        Uptime rings get per-bucket counts aggregated in SQL; only the last ``recent_s``
        (default: the largest window, at least 1 h) are replayed as samples. Returns the
        number of samples replayed.
        """
        now = now or self._clock()
        day_start = now - timedelta(days=1)
        for count in await self.load_bucket_counts(day_start, 60.0):
            window = windows.get(count.endpoint)
            if window is not None:
                window.seed_uptime(count.start.timestamp(), count.ok, count.total)
        span = recent_s or max([3600.0, *(w.window_s for w in windows.values())])
        samples = await self.load_recent(now - timedelta(seconds=span), endpoints=list(windows))
        for sample in samples:
            windows[sample.endpoint].add(sample, count_uptime=False)
        down = [name for name, w in windows.items() if w.last is not None and not w.last.ok]
        if down:
            rows = await self.db.fetch(
                "SELECT s.endpoint, min(s.at) AS since FROM opswatch.probe_samples s "
                "WHERE s.endpoint = ANY($1::text[]) AND s.at > coalesce(("
                "SELECT max(o.at) FROM opswatch.probe_samples o "
                "WHERE o.endpoint = s.endpoint AND o.outcome = 'ok'), '-infinity') "
                "GROUP BY s.endpoint",
                down,
            )
            for r in rows:
                windows[r["endpoint"]].restore_down_since(r["since"])
        return len(samples)
