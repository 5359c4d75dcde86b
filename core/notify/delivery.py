"""Deliverer: the background loop that sends what the outbox holds.

Each pass claims due rows under a lease, sends them concurrently (one per route, oldest
first), and records the outcome: delivered after a 2xx; otherwise retried with exponential
backoff and jitter (``429/503 Retry-After`` wins), or dead-lettered after ``max_attempts``
or a permanent error. One long-lived HTTP client serves every notifier. An instance claims only
rows whose route and destination it has (see :mod:`core.notify.outbox`).
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections.abc import Collection, Mapping
from dataclasses import replace

import httpx
from loguru import logger

from core.aio import wait_event
from core.config import Config
from core.db import Database, DatabaseUnavailable
from core.notify.base import Notifier, SendResult, log_fields
from core.notify.offline import OfflineEntry, OfflineOutbox
from core.notify.outbox import ClaimedRow, claim, mark_delivered, mark_failed, outbox_summary, prune_delivered
from core.notify.registry import destinations, notifiers_for, send_timeout
from core.snapshot import OutboxSummary

__all__ = ["MAX_RETRY_AFTER_S", "Deliverer", "retry_delay"]

MAX_RETRY_AFTER_S = 3600.0
DELIVERED_RETENTION_S = 30 * 86400.0
_PRUNE_EVERY_S = 3600.0
_BATCH = 20


def retry_delay(attempt: int, initial: float, maximum: float, rng: random.Random | None = None) -> float:
    """Delay after failed attempt number ``attempt`` (1-based): exponential, jittered in [50 %, 100 %]."""
    ceiling = min(maximum, initial * 2.0 ** max(0, attempt - 1))
    draw = rng.random() if rng is not None else random.random()
    return ceiling * (0.5 + 0.5 * draw)


class Deliverer:
    def __init__(
        self,
        db: Database,
        config: Config,
        *,
        instance_id: str,
        http_client: httpx.AsyncClient | None = None,
        notifiers: Mapping[str, Notifier] | None = None,
        rng: random.Random | None = None,
        offline: OfflineOutbox | None = None,
    ) -> None:
        self.db = db
        self.config = config
        self.instance_id = instance_id
        self.settings = config.notifications.outbox
        self._own_client = http_client is None
        self.http = http_client or httpx.AsyncClient(
            timeout=httpx.Timeout(send_timeout(config)),
            limits=httpx.Limits(max_connections=20, max_keepalive_connections=10),
            follow_redirects=False,
        )
        self.notifiers = notifiers_for(config, notifiers, self.http)
        self.targets = destinations(self.notifiers)
        # A live sender must never lose its lease mid-request, or the row could go out twice.
        self.lease_s = max(self.settings.lease, send_timeout(config) + 1.0)
        self._rng = rng or random.Random()
        self.offline = offline
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        self._pruned_at = -_PRUNE_EVERY_S
        self.delivered_total = 0  # by this process, for the exporter's counter

    # -- loop ----------------------------------------------------------------------------------

    async def start(self) -> None:
        if self._task is None:
            self._stopping = False
            self._task = asyncio.create_task(self._run(), name="opswatch-deliverer")

    async def stop(self) -> None:
        """Let an in-flight send finish and be recorded (so it is not sent again), then stop."""
        self._stopping = True
        self._wake.set()
        task, self._task = self._task, None
        if task is not None:
            try:
                await asyncio.wait_for(asyncio.shield(task), self.lease_s)
            except TimeoutError:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        if self._own_client:
            await self.http.aclose()

    def wake(self) -> None:
        """Deliver now instead of at the next poll (called after an evaluation enqueued)."""
        self._wake.set()

    async def _run(self) -> None:
        while not self._stopping:
            try:
                await self.deliver_due()
            except DatabaseUnavailable as exc:
                logger.debug("outbox delivery paused: database unavailable ({})", exc.reason)
            except Exception:
                logger.exception("outbox delivery pass failed")
            if time.monotonic() - self._pruned_at >= _PRUNE_EVERY_S:
                with contextlib.suppress(DatabaseUnavailable):
                    await prune_delivered(self.db, DELIVERED_RETENTION_S)
                    self._pruned_at = time.monotonic()
            if self.offline:
                try:
                    await self.deliver_offline()
                except Exception:
                    logger.exception("direct delivery pass failed")
            await wait_event(self._wake, self.settings.poll_interval)
            self._wake.clear()

    # -- one pass ------------------------------------------------------------------------------

    async def deliver_due(self, only_ids: Collection[int] | None = None) -> int:
        """Send everything due now; returns how many were delivered."""
        delivered = 0
        while True:
            if self._stopping:
                return delivered
            rows = await claim(
                self.db,
                instance_id=self.instance_id,
                lease_s=self.lease_s,
                targets=self.targets,
                limit=_BATCH,
                only_ids=only_ids,
            )
            if not rows:
                return delivered
            results = await asyncio.gather(*(self._deliver(row) for row in rows))
            delivered += sum(results)

    async def _deliver(self, row: ClaimedRow) -> bool:
        fields = log_fields(row.alerts, (row.severity,))
        log = logger.bind(outbox_id=row.id, route=row.route, kind=row.kind, **fields)
        notifier = self.notifiers.get(row.channel)
        if notifier is None:
            result = SendResult(False, error=f"channel {row.channel!r} is not configured", permanent=True)
        else:
            try:
                result = await notifier.send(row.route, row.payload)
            except Exception as exc:  # a notifier bug must not kill the loop or leak details
                log.opt(exception=exc).error("notifier failed on outbox row {}", row.id)
                result = SendResult(False, error=f"internal error: {type(exc).__name__}")
        if result.ok:
            if await mark_delivered(self.db, row.id, self.instance_id, result.status):
                log.info("notification {} ({}) delivered to {}", row.id, row.summary, row.route)
                self.delivered_total += 1
                return True
            log.warning("notification {} was sent but its lease had expired", row.id)
            return False
        attempt = row.attempts + 1
        if result.retry_after is not None:
            delay = min(result.retry_after, MAX_RETRY_AFTER_S)
        else:
            delay = retry_delay(attempt, self.settings.backoff_initial, self.settings.backoff_max, self._rng)
        outcome = await mark_failed(
            self.db,
            row.id,
            self.instance_id,
            error=result.error or "delivery failed",
            status=result.status,
            delay_s=delay,
            max_attempts=self.settings.max_attempts,
            permanent=result.permanent,
        )
        if outcome is not None and outcome[0] == "dead":
            log.error(
                "notification {} ({}) to {} dead after {} attempts: {}",
                row.id,
                row.summary,
                row.route,
                outcome[1],
                result.error,
            )
        else:
            log.warning(
                "notification {} ({}) to {} failed (attempt {}), retry in {:.1f} s: {}",
                row.id,
                row.summary,
                row.route,
                attempt,
                delay,
                result.error,
            )
        return False

    async def deliver_offline(self) -> int:
        """Send what the engine decided while the database was unreachable (in-memory retries)."""
        if not self.offline:
            return 0
        due = self.offline.due(time.monotonic())
        for entry in due:
            entry.busy = True
        results = await asyncio.gather(*(self._send_offline(e) for e in due))
        return sum(results)

    async def _send_offline(self, entry: OfflineEntry) -> bool:
        assert self.offline is not None
        item = entry.item
        notifier = self.notifiers.get(item.channel)
        try:
            if notifier is None:
                result = SendResult(
                    False, error=f"channel {item.channel!r} is not configured", permanent=True
                )
            else:
                result = await notifier.send(item.route, item.payload)
        except Exception as exc:
            logger.opt(exception=exc).error("notifier failed on a direct delivery to {}", item.route)
            result = SendResult(False, error=f"internal error: {type(exc).__name__}")
        finally:
            entry.busy = False
        entry.attempts += 1
        if result.ok:
            entry.sent = True
            self.delivered_total += 1
            logger.warning("database unreachable: {} notification sent directly to {}", item.kind, item.route)
            return True
        entry.last_error = result.error or "delivery failed"
        entry.last_status = result.status
        if result.permanent or entry.attempts >= self.settings.max_attempts:
            entry.dead = True
            logger.error(
                "direct delivery to {} given up after {} attempts: {}; "
                "it is recorded as dead in the outbox when the database is back",
                item.route,
                entry.attempts,
                entry.last_error,
            )
            return False
        delay = (
            result.retry_after
            if result.retry_after is not None
            else retry_delay(
                entry.attempts, self.settings.backoff_initial, self.settings.backoff_max, self._rng
            )
        )
        entry.next_at = time.monotonic() + min(delay, MAX_RETRY_AFTER_S)
        return False

    async def summary(self) -> OutboxSummary:
        return replace(await outbox_summary(self.db), delivered_total=self.delivered_total)
