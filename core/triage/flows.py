"""Running totals of dead letters and event failures, for Prometheus counters.

Counts rows created (by ``id`` past the last one seen) and dead letters leaving the pending
queue (by ``resolved_at`` past the last one seen) since this process first looked, so Grafana
picks the window with ``rate()``/``increase()`` instead of opswatch fixing it at one hour. Each
look is two or three small statements next to the backlog summary (a row committed with an id
or ``resolved_at`` older than one already seen is missed: a rare undercount, never a double
count). Event names are label values: the first :data:`MAX_EVENT_NAMES` distinct names seen
keep their own series and the rest are counted as ``other``, so the series stay bounded.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

import asyncpg

from core.safe_text import display_text
from core.snapshot import CountBy
from core.triage.schema import AppTables

MAX_EVENT_NAMES = 20
OTHER = "other"


@dataclass
class FlowTotals:
    """Cumulative since the first look (which sets the baseline and counts nothing)."""

    dlq_created: int = 0
    dlq_left_pending: int = 0
    events_created: int = 0
    events_by_name: dict[str, int] = field(default_factory=dict)
    _dlq_id: int | None = None
    _dlq_resolved: datetime | None = None
    _dlq_started: bool = False
    _event_id: int | None = None

    def by_event(self) -> tuple[CountBy, ...]:
        return tuple(CountBy(name, n) for name, n in sorted(self.events_by_name.items()))

    async def update_dlq(self, conn: asyncpg.Connection, tables: AppTables) -> None:
        t = tables.dlq
        ident, resolved = t.c("id"), t.c("resolved_at")
        if not self._dlq_started:
            row = await conn.fetchrow(f"SELECT max({ident}) AS m, max({resolved}) AS r FROM {t.q}")
            assert row is not None
            self._dlq_id, self._dlq_resolved, self._dlq_started = int(row["m"] or 0), row["r"], True
            return
        new = await conn.fetchrow(
            f"SELECT count(*) AS n, max({ident}) AS m FROM {t.q} WHERE {ident} > $1", self._dlq_id or 0
        )
        assert new is not None
        if new["n"]:
            self.dlq_created += int(new["n"])
            self._dlq_id = int(new["m"])
        where = f"{resolved} > $1" if self._dlq_resolved is not None else f"{resolved} IS NOT NULL"
        args = (self._dlq_resolved,) if self._dlq_resolved is not None else ()
        left = await conn.fetchrow(
            f"SELECT count(*) AS n, max({resolved}) AS m FROM {t.q} WHERE {where}", *args
        )
        assert left is not None
        if left["n"]:
            self.dlq_left_pending += int(left["n"])
            self._dlq_resolved = left["m"]

    async def update_events(self, conn: asyncpg.Connection, tables: AppTables) -> None:
        t = tables.events
        ident = t.c("id")
        if self._event_id is None:
            self._event_id = int(await conn.fetchval(f"SELECT coalesce(max({ident}), 0) FROM {t.q}"))
            return
        rows = await conn.fetch(
            f"SELECT {t.c('event_name')} AS name, count(*) AS n, max({ident}) AS m FROM {t.q} "
            f"WHERE {ident} > $1 GROUP BY 1 ORDER BY 2 DESC, 1",
            self._event_id,
        )
        for r in rows:
            n = int(r["n"])
            name = display_text(r["name"] if r["name"] is not None else "", 100) or OTHER
            if name not in self.events_by_name and len(self.events_by_name) >= MAX_EVENT_NAMES:
                name = OTHER
            self.events_by_name[name] = self.events_by_name.get(name, 0) + n
            self.events_created += n
            self._event_id = max(self._event_id, int(r["m"]))
