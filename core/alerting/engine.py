"""The alert engine: metric samples -> persisted alert state -> notifications in the outbox.

The decisions are :mod:`core.alerting.planner`'s; this module runs them against the shared state.
Several instances may share one database. One of them evaluates (a lease in
``opswatch.alert_leader``); it writes state, history and outbox rows in one transaction,
after checking under a row lock that it still holds the lease and that nobody changed the
shared state meanwhile (otherwise it reloads and decides again). The others reload when
the state version moves. Outbox dedup keys are deterministic, so even two writers could
not queue a notification twice. Without the database the leader decides in memory, notifies
directly and merges it all back later (:mod:`core.alerting.offline`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

import asyncpg
from loguru import logger

from core.alerting.models import ENGINE_NAME, AlertChange, Key, MetricSample, Silence
from core.alerting.offline import UNKNOWN_BEFORE, change_line, merge
from core.alerting.planner import Plan, Planner
from core.alerting.store import insert_history, next_version, read_state, upsert_records
from core.alerting.views import alert_views
from core.clock import Clock, utcnow
from core.config import Config
from core.db import Database, DatabaseUnavailable
from core.leader import LeaderLease
from core.notify.base import Notifier
from core.notify.offline import OfflineEntry, OfflineOutbox
from core.notify.outbox import enqueue, items_for
from core.notify.registry import notifiers_for
from core.notify.render import describe
from core.rules import PENDING, AlertRecord
from core.snapshot import AlertView
from core.spool import Spool, SpooledItem, SpoolFile, fingerprint, item_json, read_spools, record_json, remove

__all__ = ["AlertEngine"]


class _LeaseLost(Exception):
    pass


def _logged(plan: Plan) -> Plan:
    for n in plan.notifications:
        if n.kind == "firing":
            kind = "grouped" if n.grouped else "firing"
            logger.debug("announcing {} {} alert(s) as {}", len(n.alerts), n.severity, kind)
    return plan


_REACHABILITY_METRICS = frozenset({"db.unreachable", "db.down_for"})


class AlertEngine:
    """Evaluates rules; persists transitions and notifications; serves :meth:`active` views."""

    def __init__(
        self,
        db: Database,
        config: Config,
        *,
        instance_id: str,
        clock: Clock = utcnow,
        notifiers: Mapping[str, Notifier] | None = None,
        on_enqueued: Callable[[], None] | None = None,
        announce_unreachable_at_start: bool = False,
        spool_dir: Path | None = None,
    ) -> None:
        """``announce_unreachable_at_start``: this instance is the designated agent (``opswatch run``)
        and announces a database it could never reach, directly (see :meth:`evaluate`).
        ``spool_dir``: where decisions made without the database are recorded durably and shared
        with the other instances of this host (:mod:`core.spool`); None keeps them in memory only."""
        self.db = db
        self.config = config
        self.announce_unreachable_at_start = announce_unreachable_at_start
        self._reachability_rules = frozenset(
            r.name for r in config.alerts.rules if r.metric in _REACHABILITY_METRICS
        )
        self.instance_id = instance_id
        self.clock = clock
        self.on_enqueued = on_enqueued
        self._planner = Planner(config)
        self._notifiers = notifiers_for(config, notifiers)
        interval = config.alerts.evaluation_interval
        self.lease = LeaderLease(
            db, ENGINE_NAME, instance_id, ttl_s=1.5 * interval, check_every_s=0.25 * interval
        )
        self._records: dict[Key, AlertRecord] = {}
        self._silences: tuple[Silence, ...] = ()
        self._values: dict[Key, float] = {}
        self._version = -1
        self._loaded = False
        self._pending = 0
        self.spool = Spool(spool_dir, instance_id) if spool_dir is not None else None
        self.offline = OfflineOutbox(
            journal=self._journal if self.spool is not None else None,
            direct=lambda: db.down_since is not None,
        )
        self._offline_changed: set[Key] = set()
        self._offline_transitions: list[AlertChange] = []
        self._before: dict[Key, Any] = {}  # fingerprint of each alert when the offline stretch began
        self._outage = False  # a database call failed since other instances' spools were replayed
        self._offline_noted = False  # "evaluating in memory" was logged for this outage

    @property
    def is_leader(self) -> bool:
        return self.lease.status.leader

    @property
    def degraded(self) -> bool:
        """True while decisions made without the database are not stored yet (notified directly)."""
        return bool(self._offline_changed or self.offline)

    def has_pending(self) -> bool:
        """True while an alert is pending or waiting for group_wait (evaluate often then)."""
        return self._pending > 0

    def pending_scopes(self) -> set[str]:
        """Scopes of alerts that are pending or waiting for group_wait: re-evaluated on every tick."""
        if not self._pending:
            return set()
        return {r.scope for r in self._records.values() if r.state == PENDING or r.eligible_since is not None}

    async def load(self) -> None:
        """Merge what other instances of this host decided offline, then read the shared state
        (restart reconciliation happens on the next evaluation)."""
        await self._replay_others(self.clock())
        status = await self.lease.tick(force=True)
        await self._reload(self.clock(), status.version)
        self._loaded = True

    async def sync(self) -> None:
        """Check the lease and reload shared state now if it changed (e.g. after an operator action)."""
        status = await self.lease.tick(force=True)
        if status.version != self._version or status.acquired:
            await self._reload(self.clock(), status.version)

    async def close(self) -> None:
        """Hand the evaluation lease over at once (clean shutdown)."""
        if self.spool is not None:
            self.spool.close()
        if self.lease.status.leader:
            await self.lease.release()

    async def _reload(self, now: datetime, version: int) -> None:
        async with self.db.acquire() as conn:
            records, silences = await read_state(conn, now)
        self._adopt(records, silences, version)

    def _adopt(self, records: dict[Key, AlertRecord], silences: tuple[Silence, ...], version: int) -> None:
        self._records = records
        self._silences = silences
        self._version = version
        self.lease.seen(version)
        self._count_pending()

    def _count_pending(self) -> None:
        self._pending = sum(
            1 for r in self._records.values() if r.state == PENDING or r.eligible_since is not None
        )

    async def evaluate(self, samples: Iterable[MetricSample], now: datetime) -> list[AlertChange]:
        values = self._planner.values_for(samples)
        self._values.update(values)
        try:
            if not self._loaded:
                decided_offline = {k: self._records[k] for k in self._offline_changed}
                await self.load()
                # started during an outage and announced it: what was decided since is newer
                # than anything stored before the outage, so the resolved message follows
                for key in decided_offline:
                    if self._before.get(key) == UNKNOWN_BEFORE:
                        self._before[key] = fingerprint(self._records.get(key))
                self._records.update(decided_offline)
                self._count_pending()
            elif self._outage:
                # before deciding anything after an outage: another instance of this host may have
                # evaluated (and notified) meanwhile and be paused or gone; its decisions are merged
                await self._replay_others(now)
            status = await self.lease.tick()
            self._offline_noted = self.degraded  # reachable: the next outage is logged again
            if self.degraded:
                return await self._recover(status.leader, status.version, values, now)
            if status.version != self._version or status.acquired:
                await self._reload(now, status.version)
            if not status.leader:
                return []
            plan = _logged(self._planner.plan(self._records, self._silences, values, now))
            if not plan.changed:
                return []
            return await self._commit(plan, values, now)
        except DatabaseUnavailable:
            self._outage = True
            if self._loaded and self.lease.status.leader:
                return self._evaluate_offline(values, now)
            if not self._loaded and self.announce_unreachable_at_start:
                # Nobody can have been evaluating (no state, no lease): only the database's own
                # reachability rules are decided, so no endpoint alert is announced twice; what a
                # predecessor on this host decided before a restart is known from its spool.
                reachability = {k: v for k, v in values.items() if k[0] in self._reachability_rules}
                if not self._offline_noted:
                    self._seed_from_spools()
                return self._evaluate_offline(reachability, now)
            raise

    def _evaluate_offline(self, values: Mapping[Key, float], now: datetime) -> list[AlertChange]:
        """The database is unreachable and this instance decides: in memory, sent directly."""
        if not self._offline_noted:
            self._offline_noted = True
            logger.warning("database unreachable: evaluating alerts in memory, notifying directly")
        plan = _logged(self._planner.plan(self._records, self._silences, values, now))
        if not plan.changed:
            return []
        items = [item for n in plan.notifications for item in items_for(n, self._notifiers)]
        lines: list[dict[str, Any]] = []
        for key in sorted(plan.changed):
            if key not in self._before:
                self._before[key] = (
                    UNKNOWN_BEFORE if not self._loaded else fingerprint(self._records.get(key))
                )
            lines.append(self._alert_line(key, plan.records[key]))
        lines.extend(change_line(t) for t in plan.transitions)
        lines.extend({"type": "item", "item": item_json(i)} for i in items)
        if self.spool is not None:
            self.spool.write(lines)  # durable before anything is sent
        self._records = plan.records
        self._count_pending()
        self._offline_changed |= plan.changed
        self._offline_transitions.extend(plan.transitions)
        if items:
            self.offline.put(items)
            if self.on_enqueued is not None:
                self.on_enqueued()
        return plan.transitions

    def _alert_line(self, key: Key, rec: AlertRecord) -> dict[str, Any]:
        return {
            "type": "alert",
            "rule": key[0],
            "scope": key[1],
            "before": self._before.get(key),
            "record": record_json(rec),
        }

    def _journal(self, entry: OfflineEntry) -> None:
        if self.spool is None:
            return
        self.spool.write([{
            "type": "sent" if entry.sent else "dead",
            "key": entry.item.dedup_key,
            "attempts": entry.attempts,
            "error": entry.last_error,
            "status": entry.last_status,
        }])  # fmt: skip

    def _seed_from_spools(self) -> None:
        """A restarted agent during an outage: take over what its predecessor on this host decided
        about the database's reachability (announced already: not again)."""
        if self.spool is None:
            return
        for other in read_spools(self.spool.directory, exclude=self.spool.path):
            for key, rec in other.records.items():
                if key[0] in self._reachability_rules:
                    self._records[key] = rec
                    self._before[key] = other.before.get(key, UNKNOWN_BEFORE)
                    self._offline_changed.add(key)
        if self._offline_changed:
            self.spool.write(self._alert_line(k, self._records[k]) for k in sorted(self._offline_changed))
            self._count_pending()

    async def _replay_others(self, now: datetime) -> None:
        """Merge the spools of the other instances of this host (see :meth:`_merge`)."""
        self._outage = False
        if self.spool is None:
            return
        for other in read_spools(self.spool.directory, exclude=self.spool.path):
            if not other.empty:
                async with self.db.transaction() as conn:
                    await merge(conn, other, now)
                logger.info(
                    "merged what {} decided while the database was away ({} alert(s), {} notification(s))",
                    other.owner,
                    len(other.records),
                    len(other.items),
                )
            remove(other)

    async def _recover(
        self, leader: bool, version: int, values: Mapping[Key, float], now: datetime
    ) -> list[AlertChange]:
        """The database is back after an offline stretch: merge what was decided and sent meanwhile
        into the shared state (never discard it), then evaluate as usual."""
        adopted = self.offline.adopt()
        own = SpoolFile(Path(), self.instance_id, True)
        for key in self._offline_changed:
            own.before[key] = self._before.get(key, UNKNOWN_BEFORE)
            own.records[key] = self._records[key]
        own.transitions = [change_line(t) for t in self._offline_transitions]
        for entry in adopted.all:
            status = "sent" if entry.sent else "dead" if entry.dead else "unsent"
            own.items[entry.item.dedup_key] = SpooledItem(
                entry.item, status, entry.attempts, entry.last_error, entry.last_status
            )
        try:
            async with self.db.transaction() as conn:
                version = await merge(conn, own, now)
                records, silences = await read_state(conn, now)
        except BaseException:
            self.offline.release(adopted.all, stored=False)
            raise
        self.offline.release(adopted.all, stored=True)
        if self.spool is not None and not self.offline:
            self.spool.clear()
        self._offline_changed.clear()
        self._offline_transitions.clear()
        self._before.clear()
        self._offline_noted = False
        self._adopt(records, silences, version)
        logger.info("database is back: alert state and directly sent notifications stored")
        if self.on_enqueued is not None:
            self.on_enqueued()
        if not leader:
            return []
        plan = _logged(self._planner.plan(self._records, self._silences, values, now))
        if not plan.changed:
            return []
        return await self._commit(plan, values, now)

    async def _commit(self, plan: Plan, values: Mapping[Key, float], now: datetime) -> list[AlertChange]:
        silences = self._silences
        try:
            async with self.db.transaction() as conn:
                mine, version = await self.lease.check_in(conn)
                if not mine:
                    raise _LeaseLost
                if version != self._version:
                    records, silences = await read_state(conn, now)
                    plan = _logged(self._planner.plan(records, silences, values, now))
                if plan.changed:
                    await self._write(conn, plan)
                    version = await next_version(conn)
        except _LeaseLost:
            logger.info(
                "alert evaluation lease lost; following {}", self.lease.status.holder or "another instance"
            )
            self.lease.lost()
            await self._reload(now, (await self.lease.tick(force=True)).version)
            return []
        self._adopt(plan.records, silences, version)
        if plan.notifications and self.on_enqueued is not None:
            self.on_enqueued()
        return plan.transitions

    async def _write(self, conn: asyncpg.Connection, plan: Plan) -> None:
        """Store changed alerts, their transitions and notifications."""
        await upsert_records(conn, [plan.records[k] for k in sorted(plan.changed)], self.instance_id)
        await insert_history(conn, plan.transitions, self.instance_id)
        items = [item for n in plan.notifications for item in items_for(n, self._notifiers)]
        if items:
            ids = await enqueue(conn, items)
            what, fields = describe(plan.notifications)
            logger.bind(**fields).info(
                "queued {} notification(s) ({} new) for {} alert change(s): {}",
                len(items),
                len(ids),
                len(plan.notifications),
                what,
            )

    # -- views ---------------------------------------------------------------------------------

    def active(self) -> list[AlertView]:
        """Pending, firing, flapping and recently resolved alerts, worst first."""
        return alert_views(self._planner, self._records, self._values)

    def silences(self, now: datetime | None = None) -> list[Silence]:
        moment = now or self.clock()
        return [s for s in self._silences if s.active(moment)]
