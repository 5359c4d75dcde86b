"""A lease-based leader among opswatch instances sharing one database.

One row per name in ``opswatch.alert_leader``: ``holder`` owns it until ``lease_until``
(database clock, so instances' clocks may disagree). The holder renews well before expiry;
when it dies, another instance takes over once the lease has run out. The row's ``version``
counts shared-state changes: whoever changes state bumps it, and readers reload only when it
moved. Writers lock the row first (``FOR UPDATE``), which also serialises them.

Rows, not session advisory locks: a lease works through connection poolers, expires on its
own when a holder hangs, and gives a bounded takeover time.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import asyncpg

from core.db import Database

__all__ = ["LeaderLease", "LeaseStatus", "bump_version"]


@dataclass(frozen=True)
class LeaseStatus:
    leader: bool
    version: int
    acquired: bool = False  # became leader in this call
    holder: str | None = None


class LeaderLease:
    def __init__(
        self, db: Database, name: str, instance_id: str, *, ttl_s: float, check_every_s: float | None = None
    ) -> None:
        self.db = db
        self.name = name
        self.instance_id = instance_id
        self.ttl_s = ttl_s
        self.check_every_s = ttl_s / 6 if check_every_s is None else check_every_s
        self._last_check = -1e18
        self._status = LeaseStatus(False, -1)

    @property
    def status(self) -> LeaseStatus:
        return self._status

    async def tick(self, *, force: bool = False) -> LeaseStatus:
        """Renew (or try to take) the lease if a check is due; returns the current status."""
        if not force and time.monotonic() - self._last_check < self.check_every_s:
            return self._status
        self._last_check = time.monotonic()
        row = await self.db.fetchrow(
            """
            INSERT INTO opswatch.alert_leader AS l (name, holder, lease_until, acquired_at)
            VALUES ($1, $2, clock_timestamp() + make_interval(secs => $3), clock_timestamp())
            ON CONFLICT (name) DO UPDATE
            SET holder = EXCLUDED.holder, lease_until = EXCLUDED.lease_until,
                acquired_at = CASE WHEN l.holder = EXCLUDED.holder
                                   THEN l.acquired_at ELSE clock_timestamp() END
            WHERE l.holder = EXCLUDED.holder OR l.holder IS NULL OR l.lease_until < clock_timestamp()
            RETURNING version
            """,
            self.name,
            self.instance_id,
            float(self.ttl_s),
        )
        was_leader = self._status.leader
        if row is not None:
            self._status = LeaseStatus(
                True, int(row["version"]), acquired=not was_leader, holder=self.instance_id
            )
            return self._status
        other = await self.db.fetchrow(
            "SELECT holder, version FROM opswatch.alert_leader WHERE name = $1", self.name
        )
        version = int(other["version"]) if other is not None else 0
        self._status = LeaseStatus(False, version, holder=other["holder"] if other is not None else None)
        return self._status

    async def check_in(self, conn: asyncpg.Connection) -> tuple[bool, int]:
        """Inside a writer's transaction: lock the row and renew the lease if nobody else holds a
        valid one. Returns (may write, version); compare the version before trusting cached state."""
        row = await conn.fetchrow(
            """
            SELECT holder, lease_until > clock_timestamp() AS valid, version
            FROM opswatch.alert_leader WHERE name = $1 FOR UPDATE
            """,
            self.name,
        )
        if row is None:
            return False, 0
        if row["holder"] not in (None, self.instance_id) and row["valid"]:
            return False, int(row["version"])
        await conn.execute(
            """UPDATE opswatch.alert_leader
               SET holder = $2, lease_until = clock_timestamp() + make_interval(secs => $3)
               WHERE name = $1""",
            self.name,
            self.instance_id,
            float(self.ttl_s),
        )
        return True, int(row["version"])

    def seen(self, version: int) -> None:
        """Record a version this instance produced or loaded (no reload needed for it)."""
        self._status = LeaseStatus(self._status.leader, version, holder=self._status.holder)

    def lost(self) -> None:
        self._status = LeaseStatus(False, self._status.version)
        self._last_check = -1e18

    async def release(self) -> None:
        """Give the lease up now (clean shutdown) so another instance takes over at once."""
        await self.db.execute(
            "UPDATE opswatch.alert_leader SET holder = NULL, lease_until = NULL"
            " WHERE name = $1 AND holder = $2",
            self.name,
            self.instance_id,
        )
        self.lost()


async def bump_version(conn: asyncpg.Connection, name: str) -> int:
    """Lock the leader row (creating it) and bump its version; call first in a writer's transaction."""
    version: int = await conn.fetchval(
        """
        INSERT INTO opswatch.alert_leader AS l (name, version) VALUES ($1, 1)
        ON CONFLICT (name) DO UPDATE SET version = l.version + 1
        RETURNING version
        """,
        name,
    )
    return version
