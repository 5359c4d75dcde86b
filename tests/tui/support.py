"""Helpers for the console tests: seeding, a fixed snapshot, a frozen clock, monitors."""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, NamedTuple

import asyncpg

from core.clock import utcnow
from core.config import Config, default_config
from core.db import Database, PoolSettings
from core.snapshot import (
    AlertView,
    CountBy,
    DbHealthView,
    DbStats,
    DlqSummary,
    EndpointState,
    EndpointView,
    EventSummary,
    EventTally,
    Freshness,
    OutboxSummary,
    Severity,
    SlowStatement,
    Snapshot,
    TableSize,
)

NOW = datetime(2025, 3, 14, 14, 2, 0, tzinfo=UTC)
HOSTILE = "[bold red]x[/] \x1b[31mred\x1b[0m end"
"""Hostile text as stored in PostgreSQL (TEXT cannot hold NUL; NUL arrives via HTTP, see HOSTILE_HTTP)."""
HOSTILE_HTTP = "[bold red]x[/] \x1b[31mred\x1b[0m NUL:\x00 end"


def frozen_clock(at: datetime = NOW) -> Callable[[], datetime]:
    return lambda: at


def pool() -> PoolSettings:
    return PoolSettings(min_size=1, max_size=4, connect_timeout_s=1.0)


async def seed_app_rows(dsn: str, *, dlq: int = 0, events: int = 0, hostile_at: int | None = None) -> None:
    """Two businesses, two channels, ``dlq`` dead letters and ``events`` event failures, fixed times."""
    async with connected(dsn) as conn:
        await conn.execute(
            "TRUNCATE dead_letter_messages, event_failures, social_messages, social_channels, businesses "
            "RESTART IDENTITY CASCADE"
        )
        await conn.execute("INSERT INTO businesses (name) VALUES ('Acme Tacos'), ('Bobs Bikes')")
        await conn.execute(
            "INSERT INTO social_channels (business_id, platform, name) VALUES "
            "(1, 'whatsapp', 'Acme WA'), (2, 'instagram', 'Bobs IG')"
        )
        base = NOW.replace(tzinfo=None)
        rows = []
        for i in range(1, dlq + 1):
            error = (
                HOSTILE if i == hostile_at else f"WhatsApp API 429: rate limited (attempt {i})\nstack line"
            )
            rows.append(
                (
                    1000 + i,
                    1 + i % 2,
                    1 + i % 2,
                    error,
                    json.dumps({"to": f"+1555000{i:04d}", "text": f"order {i} ready", "n": i}),
                    i % 3,
                    "pending",
                    base - timedelta(minutes=5 * i),
                )
            )
        if rows:
            await conn.executemany(
                "INSERT INTO dead_letter_messages (message_id, business_id, channel_id, error_message, "
                "message_data, retry_count, status, created_at) VALUES ($1,$2,$3,$4,$5::jsonb,$6,$7,$8)",
                rows,
            )
        ev = [
            (
                f"order.{'paid' if i % 2 else 'created'}",
                1 + i % 2,
                f"handler failed: timeout {i}",
                json.dumps({"order": i}),
                "failed",
                base - timedelta(minutes=7 * i),
            )
            for i in range(1, events + 1)
        ]
        if ev:
            await conn.executemany(
                "INSERT INTO event_failures (event_name, business_id, error_message, event_data, status, "
                "created_at) VALUES ($1,$2,$3,$4::jsonb,$5,$6)",
                ev,
            )


async def dlq_status(dsn: str, row_id: int) -> tuple[str, int]:
    async with connected(dsn) as conn:
        row = await conn.fetchrow(
            "SELECT status, retry_count FROM dead_letter_messages WHERE id = $1", row_id
        )
        assert row is not None
        return str(row["status"]), int(row["retry_count"])


async def count_status(dsn: str, status: str) -> int:
    async with connected(dsn) as conn:
        return int(await conn.fetchval("SELECT count(*) FROM dead_letter_messages WHERE status = $1", status))


def fixed_snapshot(*, endpoints: int = 6, critical: bool = False, db_up: bool = True) -> Snapshot:
    """A deterministic snapshot for screenshots."""
    views = []
    for i in range(endpoints):
        down = i == 2
        history = tuple(float(40 + (i * 7 + k * 13) % 60) for k in range(40))
        views.append(
            EndpointView(
                name=f"pos-api-{i:02d}",
                url=f"https://pos{i}.example.test/health",
                service="api",
                state=EndpointState.DOWN if down else EndpointState.UP,
                last_status=503 if down else 200,
                last_outcome="http_status" if down else "ok",
                last_error="HTTP 503" if down else "",
                last_latency_ms=None if down else 42.0 + i,
                p50_ms=40.0 + i,
                p95_ms=90.0 + i * 3,
                p99_ms=140.0 + i * 5,
                error_rate=0.12 if down else 0.01 * (i % 3),
                uptime_1h=0.9 if down else 1.0,
                uptime_24h=0.985 if down else 0.9995,
                down_since=NOW - timedelta(minutes=4, seconds=12) if down else None,
                last_checked=NOW - timedelta(seconds=3),
                latency_history=history,
                samples_in_window=60,
            )
        )
    alerts = [
        AlertView(
            "error-rate",
            "pos-api-01",
            "pending",
            Severity.WARNING,
            6.0,
            5.0,
            NOW - timedelta(seconds=40),
            "Error rate above 5 % on pos-api-01",
        ),
        AlertView(
            "event-failures",
            "",
            "firing",
            Severity.WARNING,
            9.0,
            5.0,
            NOW - timedelta(minutes=22),
            "More than 5 event failures per hour",
        ),
    ]
    if critical:
        alerts.insert(
            0,
            AlertView(
                "api-down",
                "pos-api-02",
                "firing",
                Severity.CRITICAL,
                312.0,
                300.0,
                NOW - timedelta(seconds=12),
                "Endpoint down for more than 5 minutes",
            ),
        )
    db = (
        DbHealthView(True, 1.4, None, None, NOW)
        if db_up
        else DbHealthView(False, None, "connection refused", NOW - timedelta(minutes=3), NOW)
    )
    fresh = Freshness(NOW - timedelta(seconds=1))
    stale = Freshness(NOW - timedelta(minutes=3), error="connection refused")
    return Snapshot(
        taken_at=NOW,
        endpoints=tuple(views),
        alerts=tuple(alerts),
        db=db,
        dlq=DlqSummary(
            pending=30,
            oldest_pending_age_s=9000.0,
            inflow_per_hour=12,
            outflow_per_hour=3,
            by_channel=(CountBy("whatsapp", 20),),
            by_business=(CountBy("Acme Tacos", 15),),
            max_id=30,
        ),
        events=EventSummary(
            last_hour=9,
            last_24h=41,
            tallies=(EventTally("order.paid", "failed", 5, 20), EventTally("order.created", "failed", 4, 21)),
            hourly=tuple((k * 5) % 9 for k in range(24)),
            max_id=41,
        ),
        db_stats=DbStats(
            connections_used=12,
            max_connections=100,
            database_bytes=123_456_789,
            tables=(TableSize("dead_letter_messages", 9_000_000), TableSize("event_failures", 1_000_000)),
            slow_statements=(SlowStatement("SELECT * FROM dead_letter_messages WHERE ...", 812.0, 40),),
            slowest_mean_ms=812.0,
        ),
        outbox=OutboxSummary(pending=1, dead=2, delivered_last_hour=7),
        freshness={
            "probes": fresh,
            "summaries": fresh if db_up else stale,
            "db_stats": fresh if db_up else stale,
        },
    )


@dataclass
class FakeAlerts:
    """AlertActions stand-in that records calls (alerting core is tested on its own)."""

    calls: list[tuple[str, tuple[Any, ...]]] = field(default_factory=list)
    read_only: bool = False

    def _record(self, name: str, *args: Any) -> None:
        from core.errors import ReadOnlyError

        if self.read_only:
            raise ReadOnlyError(f"{name} refused: opswatch is read-only")
        self.calls.append((name, args))

    async def acknowledge(self, rule: str, scope: str) -> Any:
        from core.alerting import AlertActionResult

        self._record("acknowledge", rule, scope)
        return AlertActionResult("applied", f"acknowledged {rule}", rule)

    async def silence(self, rule: str | None, scope: str | None, duration_s: float, reason: str) -> Any:
        from core.alerting import Silence

        self._record("silence", rule, scope, duration_s, reason)
        return Silence(1, rule, scope, NOW, NOW + timedelta(seconds=duration_s), reason, "tester", NOW)

    async def resend(self, outbox_id: int) -> Any:
        from core.alerting import AlertActionResult

        self._record("resend", outbox_id)
        return AlertActionResult("applied", f"re-queued #{outbox_id}", str(outbox_id), outbox_id)

    async def send_test(self, severity: str) -> tuple[int, ...]:
        self._record("send_test", severity)
        return (1,)

    async def history(self, limit: int = 50) -> list[Any]:
        return []

    async def outbox(self, status: str | None = None, limit: int = 50) -> list[Any]:
        return []

    async def silences(self, active_only: bool = True) -> list[Any]:
        return []


class StaticMonitor:
    """The Monitor surface without background loops: real triage on PostgreSQL, a fixed snapshot."""

    def __init__(
        self,
        config: Config,
        db: Database,
        *,
        read_only: bool = False,
        clock: Callable[[], datetime] = frozen_clock(),
        snapshot: Snapshot | None = None,
    ) -> None:
        from core.triage import TriageService

        self.config = config
        self.db = db
        self.read_only = read_only
        self.clock = clock
        self.logs = None
        self.triage = TriageService(db, config, actor="tester", read_only=read_only)
        self.alerts: Any = FakeAlerts(read_only=read_only)
        self.snapshot = snapshot or Snapshot(taken_at=clock(), read_only=read_only)
        self._subscribers: list[Callable[[Snapshot], None]] = []
        self.started = False

    async def start(self) -> None:
        self.started = True

    async def stop(self) -> None:
        self.started = False

    def subscribe(self, callback: Callable[[Snapshot], None]) -> Callable[[], None]:
        self._subscribers.append(callback)
        callback(self.snapshot)
        return lambda: self._subscribers.remove(callback) if callback in self._subscribers else None

    def publish(self, snapshot: Snapshot) -> None:
        self.snapshot = snapshot
        for callback in list(self._subscribers):
            callback(snapshot)

    async def refresh_now(self) -> None:
        with contextlib.suppress(Exception):
            dlq = await self.triage.dlq_summary()
            from dataclasses import replace

            self.publish(replace(self.snapshot, dlq=dlq))


def make_config(**ui: Any) -> Config:
    config = default_config()
    if ui:
        merged = type(config.ui).model_validate({**config.ui.model_dump(), **ui})
        config = config.model_copy(update={"ui": merged})
    return config


def keys_of(rows: Sequence[Any]) -> list[int]:
    return [r.id for r in rows]


def build_app(
    dsn: str,
    *,
    config: Config | None = None,
    read_only: bool = False,
    wall: bool = False,
    snapshot: Snapshot | None = None,
    clock: Callable[[], datetime] | None = frozen_clock(),
    own_db: bool = False,
) -> tuple[Any, Any, Database]:
    """(OpsWatchApp, Monitor, Database) on the real core; ``snapshot`` freezes what panels show.

    ``own_db``: the app closes the Database when it exits (for apps run in their own loop).
    """
    from core.runtime import MonitorRole, build_services
    from tui.app import OpsWatchApp

    _ClosingApp = _closing_app()
    db = Database(dsn, pool())
    services = build_services(
        config or make_config(),
        db,
        role=MonitorRole.PASSIVE,
        read_only=read_only or wall,
        clock=clock or utcnow,
    )
    monitor = services.monitor
    if snapshot is not None:
        monitor.publish(snapshot)
    app_class = _ClosingApp if own_db else OpsWatchApp
    app = app_class(services, wall=wall, theme="dark", clock=clock, environ={})
    return app, monitor, db


class Running(NamedTuple):
    app: Any
    monitor: Any
    pilot: Any
    screen: Any


@contextlib.asynccontextmanager
async def console(
    dsn: str,
    *,
    size: tuple[int, int],
    key: str = "",
    screen: type | None = None,
    loops: bool = True,
    **build: Any,
) -> AsyncIterator[Running]:
    """The console (``build_app``) running at ``size``; ``key`` pressed and the ``screen`` type checked.

    ``loops=False``: the monitor's loops do not start, so a fixed snapshot or hand-made rows stay the
    state under test (the rule engine would reconcile them).
    """
    app, monitor, db = build_app(dsn, **build)
    if not loops:

        async def no_loops() -> None:
            pass

        monitor.start = no_loops
    try:
        async with app.run_test(size=size) as pilot:
            if key:
                await pilot.press(key)
            if screen is not None:
                assert isinstance(app.screen, screen)
            yield Running(app, monitor, pilot, app.screen)
    finally:
        await db.close()


@contextlib.asynccontextmanager
async def connected(dsn: str) -> AsyncIterator[asyncpg.Connection]:
    """One plain connection, for seeding rows and reading what the console wrote."""
    conn = await asyncpg.connect(dsn)
    try:
        yield conn
    finally:
        await conn.close()


def _closing_app() -> type:
    from tui.app import OpsWatchApp

    class ClosingApp(OpsWatchApp):
        async def on_unmount(self) -> None:
            await self.monitor.stop()
            await self.monitor.db.close()

    return ClosingApp


async def wait_for(pilot: Any, predicate: Callable[[], object], within: float = 5.0, what: str = "") -> None:
    """Let the app run until ``predicate()`` is truthy."""
    import time

    deadline = time.monotonic() + within
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what or predicate}")
        await pilot.pause(0.02)
