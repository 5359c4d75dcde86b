"""Monitor: owns the background loops and publishes immutable Snapshots.

Loops (each schedules its next run only after the current one finishes, so slow I/O
never piles up): probe scheduler (its own timeline per endpoint), DB sources, rule
evaluation, probe-sample flushing, notification delivery. Every change marks the state
dirty; a single publisher coalesces changes into at most ``_MAX_PUBLISH_HZ`` snapshots
a second, so a burst of 1,000 probe results costs one snapshot, not 1,000.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
import socket
import time
import uuid
from collections.abc import Awaitable, Callable, Collection
from dataclasses import replace
from datetime import datetime
from enum import Enum

from loguru import logger

from core.aio import wait_event
from core.alerting import AlertActions, AlertEngine, MetricSample
from core.clock import Clock, utcnow
from core.config import Config
from core.db import Database, DatabaseUnavailable
from core.logging import LogBuffer
from core.metrics import endpoint_metrics, global_metrics
from core.notify.delivery import Deliverer
from core.notify_triggers import ChangeWatcher
from core.probe_store import ProbeStore
from core.probes import ProbeSample, ProbeScheduler, ProbeSpec, specs_from_config
from core.redact import mask_url
from core.safe_text import display_text
from core.snapshot import (
    DbHealthView,
    DbStats,
    DlqSummary,
    EndpointView,
    EventSummary,
    Freshness,
    OutboxSummary,
    Snapshot,
)
from core.sources import collect_custom_metric, collect_db_stats
from core.triage import TriageService
from core.windows import EndpointWindow

_MAX_PUBLISH_HZ = 4.0
_DB_STATS_EVERY_S = 15.0
SUMMARIES_EVERY_S = 5.0  # backlog summaries (the change watcher also wakes them)
_RULE_TICK_S = 0.25


def instance_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


class MonitorRole(Enum):
    """What a Monitor runs for. The roles differ in these three properties and nothing else."""

    CONSOLE = "console"
    """The interactive console: probes, reads, rules and notification delivery."""
    WALL = "wall"
    """The wall screen: a console that is always read-only (the composition root forces it)."""
    AGENT = "agent"
    """``opswatch run``: a console without a screen that also announces a database unreachable
    since start (consoles and walls leave that to it, so the message is sent once)."""
    PASSIVE = "passive"
    """Loops on the database only: no probes, no notification delivery (screen tests, benchmarks
    that publish fixed snapshots)."""

    @property
    def probes(self) -> bool:
        return self is not MonitorRole.PASSIVE

    @property
    def delivers(self) -> bool:
        return self is not MonitorRole.PASSIVE

    @property
    def announces_unreachable_at_start(self) -> bool:
        return self is MonitorRole.AGENT


class Monitor:
    def __init__(
        self,
        config: Config,
        db: Database,
        *,
        triage: TriageService,
        alerts: AlertActions,
        engine: AlertEngine,
        role: MonitorRole = MonitorRole.CONSOLE,
        read_only: bool = False,
        log_buffer: LogBuffer | None = None,
        clock: Clock = utcnow,
    ) -> None:
        """Built by :func:`core.runtime.build_services`, which makes the services it reads through
        (``triage``, ``engine``) and those the faces act through (``alerts``). The Monitor routes the
        engine's "notification queued" signal to its own deliverer."""
        self.config = config
        self.db = db
        self.engine = engine
        self.instance_id = engine.instance_id
        self.role = role
        self.read_only = read_only
        self.logs = log_buffer
        engine.on_enqueued = self._wake_deliverer
        self.clock = clock
        self._triage = triage
        self._alerts = alerts
        self.deliverer: Deliverer | None = None
        if role.delivers:
            self.deliverer = Deliverer(db, config, instance_id=self.instance_id, offline=self.engine.offline)
        self.specs: list[ProbeSpec] = specs_from_config(config)
        self.windows: dict[str, EndpointWindow] = {
            s.name: EndpointWindow(config.probes.window, down_after=config.probes.down_after, clock=clock)
            for s in self.specs
        }
        self.store = ProbeStore(db, retention_s=config.probes.retention, clock=clock)
        self.scheduler: ProbeScheduler | None = (
            ProbeScheduler(self.specs, self._on_sample, max_concurrency=config.probes.max_concurrency)
            if role.probes and self.specs
            else None
        )
        self._endpoint_metrics = tuple(
            sorted({r.metric for r in config.alerts.rules if r.metric.startswith("endpoint.")})
        )
        self._masked_urls = {s.name: mask_url(s.url) for s in self.specs}
        self._changed: set[str] = set()  # endpoints with new samples since the last rule pass
        self.snapshot = Snapshot(taken_at=clock(), read_only=self.read_only)
        self._tables_changed = asyncio.Event()
        # a screen wants a new dead letter within about a second; a headless agent's rules read the
        # backlog summaries, which refresh every SUMMARIES_EVERY_S anyway
        self._watch_fast = min(0.5, config.ui.refresh_interval)
        self.watcher = ChangeWatcher(
            db, config, lambda _change: self._tables_changed.set(), interval=SUMMARIES_EVERY_S
        )
        self._subscribers: list[Callable[[Snapshot], None]] = []
        self._sample_listeners: list[Callable[[ProbeSample], None]] = []
        self._tasks: list[asyncio.Task[None]] = []
        self._dirty = asyncio.Event()
        self._rules_dirty = True
        self._db_health: DbHealthView | None = None
        self._dlq: DlqSummary | None = None
        self._events: EventSummary | None = None
        self._db_stats: DbStats | None = None
        self._outbox: OutboxSummary | None = None
        self._custom: dict[str, float | None] = {m.name: None for m in config.metrics}
        self._freshness: dict[str, Freshness] = {}
        self._frozen: Snapshot | None = None
        self.started = False
        self._restored = False

    # The faces reach these through core.runtime.Services; readable here for tests and benches
    # that drive a Monitor directly.
    @property
    def triage(self) -> TriageService:
        return self._triage

    @property
    def alerts(self) -> AlertActions:
        return self._alerts

    # -- lifecycle -----------------------------------------------------------------------------

    async def start(self) -> None:
        if self.started:
            return
        self.started = True
        await self._safe("restore", self._restore)
        if self.scheduler is not None:
            await self.scheduler.start()
        if self.deliverer is not None:
            await self.deliverer.start()
        refresh = self.config.ui.refresh_interval
        # and at once when the database's port accepts connections again after an outage
        self._spawn(self._every(refresh, "health", self._collect_health, wake=self.db.reconnect_due))
        # summaries cost tens of ms on a million rows: every few seconds, and at once when the
        # DLQ/event tables change (LISTEN with `db install-notify`, else a cheap max(id) poll)
        await self.watcher.start()
        self._spawn(
            self._every(
                max(refresh, SUMMARIES_EVERY_S),
                "summaries",
                self._collect_summaries,
                wake=self._tables_changed,
            )
        )
        self._spawn(self._every(_DB_STATS_EVERY_S, "db_stats", self._collect_db_stats))
        self._spawn(self._every(self.config.probes.flush_interval, "flush", self.store.flush))
        self._spawn(self._every(3600.0, "retention", self.store.enforce_retention))
        self._spawn(self._rule_loop())
        self._spawn(self._publisher())
        for metric in self.config.metrics:
            self._spawn(self._every(metric.interval, f"custom.{metric.name}", self._custom_collector(metric)))

    async def stop(self) -> None:
        if not self.started:
            return
        self.started = False
        if self.scheduler is not None:
            await self.scheduler.stop()
        await self.watcher.stop()
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._tasks.clear()
        if self.deliverer is not None:
            await self.deliverer.stop()
        with contextlib.suppress(Exception):
            await self.engine.close()
        with contextlib.suppress(Exception):
            await self.store.flush()

    def _wake_deliverer(self) -> None:
        if self.deliverer is not None:
            self.deliverer.wake()

    def _spawn(self, coro: Awaitable[None]) -> None:
        self._tasks.append(asyncio.ensure_future(coro))

    # -- subscription --------------------------------------------------------------------------

    def subscribe(self, callback: Callable[[Snapshot], None]) -> Callable[[], None]:
        self._subscribers.append(callback)
        self.watcher.set_interval(self._watch_fast)
        callback(self.snapshot)
        self._dirty.set()  # snapshots are not built while nobody listens: send a fresh one soon

        def unsubscribe() -> None:
            with contextlib.suppress(ValueError):
                self._subscribers.remove(callback)
            if not self._subscribers:
                self.watcher.set_interval(SUMMARIES_EVERY_S)

        return unsubscribe

    def add_sample_listener(self, callback: Callable[[ProbeSample], None]) -> Callable[[], None]:
        """Call ``callback`` with every probe result as it arrives (the exporter's histogram)."""
        self._sample_listeners.append(callback)

        def remove() -> None:
            with contextlib.suppress(ValueError):
                self._sample_listeners.remove(callback)

        return remove

    def publish(self, snapshot: Snapshot) -> None:
        """Push a snapshot to subscribers. Tests use it with a fixed snapshot; it then stays frozen."""
        self._frozen = snapshot
        self._emit(snapshot)

    def _emit(self, snapshot: Snapshot) -> None:
        self.snapshot = snapshot
        for callback in list(self._subscribers):
            try:
                callback(snapshot)
            except Exception:
                logger.exception("snapshot subscriber failed")

    async def refresh_now(self) -> None:
        with contextlib.suppress(DatabaseUnavailable):
            await self.engine.sync()  # acks and silences show in the snapshot at once
        await self._collect_health()
        await self._collect_summaries()
        self._emit(self.build_snapshot())

    # -- loops ---------------------------------------------------------------------------------

    async def _every(
        self,
        interval: float,
        name: str,
        job: Callable[[], Awaitable[object]],
        wake: asyncio.Event | None = None,
    ) -> None:
        """Run ``job`` every ``interval`` seconds, or as soon as ``wake`` is set."""
        while True:
            started = time.monotonic()
            if wake is not None:
                wake.clear()
            await self._safe(name, job)
            pause = max(0.05, interval - (time.monotonic() - started))
            if wake is None:
                await asyncio.sleep(pause)
            else:
                await wait_event(wake, pause)

    async def _safe(self, name: str, job: Callable[[], Awaitable[object]]) -> None:
        try:
            await job()
        except DatabaseUnavailable as exc:
            self._freshness[name] = replace(self._freshness.get(name, Freshness(None)), error=exc.reason)
            self._mark_dirty()
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            reason = display_text(exc, 200, redact_secrets=True)
            previous = self._freshness.get(name, Freshness(None))
            if previous.error != reason:  # log a failing loop once per distinct error, not every tick
                logger.opt(exception=exc).bind(loop=name).error("monitor loop {} failed", name)
            self._freshness[name] = replace(previous, error=reason)
            self._mark_dirty()

    def _fresh(self, name: str) -> None:
        self._freshness[name] = Freshness(self.clock())

    def _mark_dirty(self, rules: bool = False) -> None:
        self._dirty.set()
        if rules:
            self._rules_dirty = True

    async def _restore(self) -> None:
        await self.store.restore(self.windows, now=self.clock())
        await self.engine.load()
        self._restored = True

    def _on_sample(self, sample: ProbeSample) -> None:
        window = self.windows.get(sample.endpoint)
        if window is None:
            return
        window.add(sample)
        self.store.add(sample)
        self._changed.add(sample.endpoint)
        for listener in list(self._sample_listeners):
            try:
                listener(sample)
            except Exception:
                logger.exception("probe sample listener failed")
        self._fresh("probes")
        self._mark_dirty(rules=True)

    async def _collect_health(self) -> None:
        health = await self.db.health()
        was_up = self._db_health.up if self._db_health is not None else None
        if was_up is not False and not health.up:
            logger.warning("database unreachable: {}; retrying", health.error or "unknown error")
        elif was_up is False and health.up:
            logger.info("database reachable again (round trip {:.1f} ms)", health.rtt_ms or 0.0)
        self._db_health = DbHealthView(
            health.up, health.rtt_ms, health.error, health.down_since, health.checked_at
        )
        self._fresh("health")
        self._mark_dirty(rules=was_up != health.up)

    async def _collect_summaries(self) -> None:
        """Backlog and failure tallies: tens of ms of DB time on a million rows, so not every second."""
        if self._db_health is not None and not self._db_health.up:
            return
        self._dlq = await self._triage.dlq_summary()
        self._events = await self._triage.event_summary()
        if self.deliverer is not None:
            self._outbox = await self.deliverer.summary()
        self._fresh("summaries")
        self._mark_dirty(rules=True)

    async def _collect_db_stats(self) -> None:
        if self._db_health is not None and not self._db_health.up:
            return
        self._db_stats = await collect_db_stats(self.db, self.config)
        self._fresh("db_stats")
        self._mark_dirty(rules=True)

    def _custom_collector(self, metric: object) -> Callable[[], Awaitable[None]]:
        async def collect() -> None:
            name = getattr(metric, "name", "")
            self._custom[name] = await collect_custom_metric(self.db, metric)  # type: ignore[arg-type]
            self._fresh(f"custom.{name}")
            self._mark_dirty(rules=True)

        return collect

    async def _rule_loop(self) -> None:
        last_full = 0.0
        interval = self.config.alerts.evaluation_interval
        while True:
            await asyncio.sleep(_RULE_TICK_S)
            now_mono = time.monotonic()
            # a full pass every evaluation_interval; in between, right after new data and on every
            # tick while an alert is pending (so a `for` ends on time), only the endpoints whose
            # values can have moved: new samples, down (down_for grows), pending alerts.
            full = now_mono - last_full >= interval
            if not (full or self._rules_dirty or self.engine.has_pending()):
                continue
            self._rules_dirty = False
            names: set[str] | None = None
            if full:
                last_full = now_mono
            else:
                names = self._changed | self.engine.pending_scopes()
                names.update(name for name, w in self.windows.items() if w.down_since is not None)
            self._changed = set()
            await self._safe("rules", functools.partial(self._evaluate, names))

    async def _evaluate(self, names: Collection[str] | None = None) -> None:
        if not self._restored:  # started during an outage: load persisted state before deciding
            try:
                await self._restore()
            except DatabaseUnavailable:
                if not self.engine.announce_unreachable_at_start:
                    raise
        if await self.engine.evaluate(self.metric_samples(names), self.clock()):
            self._mark_dirty()

    def metric_samples(self, names: Collection[str] | None = None) -> list[MetricSample]:
        """The metrics the rules use: for every endpoint (or only ``names``), plus the global ones."""
        now = self.clock()
        wanted = self._endpoint_metrics
        specs = self.specs if names is None else [s for s in self.specs if s.name in names]
        samples = [m for s in specs for m in endpoint_metrics(s.name, self.windows[s.name], now, wanted)]
        samples.extend(
            global_metrics(
                now=now,
                db=self._db_health,
                stats=self._db_stats,
                events=self._events,
                dlq=self._dlq,
                outbox=self._outbox,
                custom=self._custom,
            )
        )
        return samples

    async def _publisher(self) -> None:
        min_gap = 1.0 / _MAX_PUBLISH_HZ
        while True:
            await self._dirty.wait()
            self._dirty.clear()
            if self._frozen is None and self._subscribers:
                self._emit(self.build_snapshot())
            await asyncio.sleep(min_gap)

    # -- snapshot ------------------------------------------------------------------------------

    def build_snapshot(self) -> Snapshot:
        now = self.clock()
        endpoints = tuple(self._view(spec, now) for spec in self.specs)
        return Snapshot(
            taken_at=now,
            endpoints=endpoints,
            alerts=tuple(self.engine.active()),
            db=self._db_health,
            dlq=self._dlq,
            events=self._events,
            db_stats=self._db_stats,
            outbox=self._outbox,
            custom_metrics=tuple(self._custom.items()),
            freshness=dict(self._freshness),
            read_only=self.read_only,
        )

    def _view(self, spec: ProbeSpec, now: datetime) -> EndpointView:
        return self.windows[spec.name].view(
            name=spec.name, url=self._masked_urls[spec.name], service=spec.service, now=now
        )
