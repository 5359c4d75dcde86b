"""What the monitored PostgreSQL is doing right now (read-only, Dolphie-style).

Sessions from ``pg_stat_activity``, who blocks whom (``pg_blocking_pids``, asked only for
sessions waiting on a lock: the function takes lock-manager locks), long transactions,
sessions idle in a transaction, connections by state against ``max_connections``, and the
slowest statements without opswatch's own. Every text is display-safe and bounded.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from core.db import Database
from core.safe_text import display_text
from core.snapshot import SlowStatement
from core.sources import OWN_MARK, slow_statements

OWN_APPLICATION = "opswatch"
"""``application_name`` of opswatch's own connections (``core.db.PoolSettings``)."""
QUERY_CHARS = 300
"""Query text shown per session; the server keeps ``track_activity_query_size`` (1 kB) anyway."""
LONG_TRANSACTION_S = 60.0
MAX_SESSIONS = 200
IDLE_IN_TRANSACTION = ("idle in transaction", "idle in transaction (aborted)")

_ACTIVITY_SQL = f"""
    SELECT {OWN_MARK} pid, datname, usename, application_name, backend_type,
           COALESCE(state, '') AS state,
           COALESCE(wait_event_type || ':' || wait_event, '') AS wait,
           left(query, {QUERY_CHARS * 4}) AS query,
           EXTRACT(EPOCH FROM now() - query_start) AS query_age,
           EXTRACT(EPOCH FROM now() - xact_start) AS xact_age,
           EXTRACT(EPOCH FROM now() - state_change) AS state_age,
           CASE WHEN wait_event_type = 'Lock' THEN pg_blocking_pids(pid) END AS blocked_by
    FROM pg_stat_activity
    WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()
    ORDER BY xact_start NULLS LAST, pid
    LIMIT {MAX_SESSIONS}
"""
_LIMITS_SQL = f"""
    SELECT {OWN_MARK} current_setting('max_connections')::int AS max_conn,
           current_setting('superuser_reserved_connections')::int AS reserved,
           (SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend') AS total
"""


@dataclass(frozen=True)
class Session:
    pid: int
    database: str
    user: str
    application: str
    state: str  # active | idle | idle in transaction | ... ("" when not visible to this role)
    wait: str  # "Lock:transactionid", "" when not waiting
    query: str  # one line, inert, at most QUERY_CHARS
    query_age_s: float | None  # since the current (or last) statement started
    xact_age_s: float | None  # since the transaction started; None outside one
    state_age_s: float | None  # since the state last changed
    blocked_by: tuple[int, ...] = ()

    @property
    def own(self) -> bool:
        return self.application == OWN_APPLICATION

    @property
    def idle_in_transaction(self) -> bool:
        return self.state in IDLE_IN_TRANSACTION


@dataclass(frozen=True)
class LockNode:
    """One line of the blocking tree: ``depth`` 0 is a session that blocks and is not blocked."""

    session: Session
    depth: int
    blocks: int  # sessions waiting on it, directly or not


@dataclass(frozen=True)
class ConnectionUse:
    total: int
    max_connections: int
    reserved: int  # superuser_reserved_connections: not available to ordinary roles
    by_state: tuple[tuple[str, int], ...]  # most first


@dataclass(frozen=True)
class DbActivity:
    sessions: tuple[Session, ...]
    connections: ConnectionUse
    slow_statements: tuple[SlowStatement, ...] | None  # None: pg_stat_statements unavailable

    @property
    def active(self) -> tuple[Session, ...]:
        """Running statements, longest first."""
        running = [s for s in self.sessions if s.state == "active"]
        return tuple(sorted(running, key=lambda s: -(s.query_age_s or 0.0)))

    @property
    def blocking_tree(self) -> tuple[LockNode, ...]:
        return blocking_tree(self.sessions)

    def long_transactions(self, older_than_s: float = LONG_TRANSACTION_S) -> tuple[Session, ...]:
        """Open transactions older than ``older_than_s``, and every idle-in-transaction one; oldest first."""
        found = [
            s
            for s in self.sessions
            if s.xact_age_s is not None and (s.xact_age_s >= older_than_s or s.idle_in_transaction)
        ]
        return tuple(sorted(found, key=lambda s: -(s.xact_age_s or 0.0)))


def blocking_tree(sessions: Iterable[Session]) -> tuple[LockNode, ...]:
    """Depth-first: each blocker that is not itself blocked, then the sessions waiting on it."""
    by_pid = {s.pid: s for s in sessions}
    waiters: dict[int, list[int]] = {}
    for s in by_pid.values():
        for blocker in s.blocked_by:
            waiters.setdefault(blocker, []).append(s.pid)
    if not waiters:
        return ()

    def count(pid: int) -> int:
        """Sessions waiting on ``pid``, directly or through another waiter."""
        found: set[int] = set()
        todo = list(waiters.get(pid, ()))
        while todo:
            w = todo.pop()
            if w not in found and w != pid:
                found.add(w)
                todo.extend(waiters.get(w, ()))
        return len(found)

    roots = [p for p in waiters if not (by_pid.get(p) and by_pid[p].blocked_by)]
    if not roots:  # a cycle (a deadlock the server has not broken yet): start anywhere
        roots = [min(waiters)]
    out: list[LockNode] = []

    def walk(pid: int, depth: int, seen: frozenset[int]) -> None:
        session = by_pid.get(pid) or _unseen(pid)
        out.append(LockNode(session, depth, count(pid)))
        for w in sorted(waiters.get(pid, ())):
            if w not in seen:
                walk(w, depth + 1, seen | {w})

    for root in sorted(roots, key=lambda p: (-count(p), p)):
        walk(root, 0, frozenset({root}))
    return tuple(out)


def _unseen(pid: int) -> Session:
    """A blocker this role cannot see (another database, or beyond MAX_SESSIONS)."""
    return Session(pid, "", "", "", "", "", "(not visible)", None, None, None)


def _age(value: Any) -> float | None:
    return None if value is None else max(0.0, float(value))


def session_from(row: Any) -> Session:
    blocked = row["blocked_by"]
    return Session(
        pid=int(row["pid"]),
        database=display_text(row["datname"] or "", 64),
        user=display_text(row["usename"] or "", 64),
        application=display_text(row["application_name"] or "", 64),
        state=display_text(row["state"] or "", 40),
        wait=display_text(row["wait"] or "", 64),
        query=display_text(" ".join(str(row["query"] or "").split()), QUERY_CHARS),
        query_age_s=_age(row["query_age"]),
        xact_age_s=_age(row["xact_age"]),
        state_age_s=_age(row["state_age"]),
        blocked_by=tuple(int(p) for p in blocked) if isinstance(blocked, Sequence) else (),
    )


def connection_use(sessions: Sequence[Session], max_conn: int, reserved: int, total: int) -> ConnectionUse:
    counts: dict[str, int] = {}
    for s in sessions:
        counts[s.state or "unknown"] = counts.get(s.state or "unknown", 0) + 1
    hidden = total - len(sessions) - 1  # beyond MAX_SESSIONS (this query's own session is not listed)
    if len(sessions) >= MAX_SESSIONS and hidden > 0:
        counts["not listed"] = hidden
    ranked = tuple(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))
    return ConnectionUse(total, max_conn, reserved, ranked)


async def collect_activity(db: Database, *, slow: bool = True) -> DbActivity:
    """One read of the server's activity; raises :class:`core.db.DatabaseUnavailable` when down."""
    async with db.acquire() as conn:
        rows = await conn.fetch(_ACTIVITY_SQL)
        limits = await conn.fetchrow(_LIMITS_SQL)
        statements = await slow_statements(conn) if slow else None
    assert limits is not None
    sessions = tuple(session_from(r) for r in rows)
    use = connection_use(sessions, int(limits["max_conn"]), int(limits["reserved"]), int(limits["total"]))
    return DbActivity(sessions, use, statements)
