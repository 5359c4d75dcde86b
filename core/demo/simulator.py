"""Traffic simulator: writes to PostgreSQL what the POS backend would, and plays its workers.

* Traffic: social messages (mostly sent; some exhaust their retries and land in
  ``dead_letter_messages`` with a Meta API error, like the seed's ``moveToDeadLetterQueue``)
  and event failures with Node.js stacks. Rates follow the scenario's speed but are capped
  at a few rows per second, and old sent messages are pruned, so the database stays small.
* Message worker: consumes redrives. ``LISTEN opswatch_redrive`` (payload: a JSON list of
  dead-letter ids, or ``{"kind": "dlq", "ids": [...], "message_ids": [...]}``) and, in case
  a notification is missed, a poll every ``poll_interval`` for messages back in ``pending``
  whose latest dead letter is ``retried``. Each is "sent again": success resolves the dead
  letter and marks the message sent; failure marks it failed and adds a new pending dead
  letter with a fresh error.
* Event worker: ``event_failures`` in ``retrying`` are resolved or fail again.

Outcomes come from the seed (per row), or from ``force_outcome`` for scripted demos and tests.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import time
from collections.abc import Callable, Coroutine, Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Literal

import asyncpg
from loguru import logger

from core.aio import get_within
from core.db import describe_error
from core.demo import content
from core.demo.redrive_request import RedriveRequest, parse_redrive_payload
from core.demo.reference import Channel, reference_channels
from core.demo.scenario import DEFAULT_SEED, DEFAULT_SPEED, Scenario
from core.migrate import APP_TABLES, quote_ident
from core.triage.redrive import NOTIFY_CHANNEL as REDRIVE_CHANNEL

Outcome = Literal["success", "failure"]


MESSAGE_RATE = 1 / 12
"""Outbound messages per scenario second (eight small shops)."""
DLQ_SHARE = 0.04
"""Share of messages that exhaust their retries; tripled while an endpoint is down."""
EVENT_RATE = 1 / 900
"""Event failures per scenario second in normal operation."""
OUTAGE_EVENT_RATE = 1 / 90
"""Extra worker.step.completed failures per scenario second during an outage."""
_TICK_S = 0.25
_PRUNE_EVERY_S = 30.0
_KEEP_SENT = 20_000
_KEEP_CLOSED_DLQ = 20_000


@dataclass(frozen=True)
class SimulatorCounters:
    messages_sent: int = 0
    messages_failed: int = 0
    dlq_inserted: int = 0
    events_failed: int = 0
    redriven_ok: int = 0
    redriven_failed: int = 0
    events_resolved: int = 0
    events_failed_again: int = 0
    notifications: int = 0
    bad_notifications: int = 0
    errors: int = 0
    last_error: str | None = None


class TrafficSimulator:
    """``await TrafficSimulator(dsn, seed, speed).start()``; ``await stop()``; ``counters``."""

    def __init__(
        self,
        dsn: str,
        seed: int = DEFAULT_SEED,
        speed: float = DEFAULT_SPEED,
        *,
        scenario: Scenario | None = None,
        clock: Callable[[], float] | None = None,
        tables: Mapping[str, str] | None = None,
        traffic: bool = True,
        max_rows_per_s: float = 5.0,
        redrive_success: float = 0.6,
        redrive_delay: float = 0.3,
        poll_interval: float = 1.0,
        backlog: bool = True,
    ) -> None:
        self.dsn = dsn
        self.seed = int(seed)
        self.speed = float(speed)
        self.scenario = scenario or Scenario(self.seed, self.speed)
        self.traffic = traffic
        self.max_rows_per_s = max_rows_per_s
        self.redrive_success = redrive_success
        self.redrive_delay = redrive_delay
        self.poll_interval = poll_interval
        self.backlog = backlog
        self.force_outcome: Outcome | None = None
        """``"success"`` or ``"failure"`` makes every redrive end that way; None: per-row from the seed."""
        names = {t: t for t in APP_TABLES} | dict(tables or {})
        self._t = {k: quote_ident(v) for k, v in names.items()}
        self._clock = clock
        self._t0 = time.monotonic()
        self._rng = random.Random(self.seed)
        self._pool: asyncpg.Pool | None = None
        self._listener: asyncpg.Connection | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._queue: asyncio.Queue[RedriveRequest] = asyncio.Queue(maxsize=1000)
        self._stopping = asyncio.Event()
        self._channels: list[Channel] = []
        self._c: dict[str, int] = {}
        self._last_error: str | None = None

    # -- lifecycle -------------------------------------------------------------------------------

    @property
    def running(self) -> bool:
        return bool(self._tasks)

    def elapsed(self) -> float:
        return self._clock() if self._clock is not None else time.monotonic() - self._t0

    async def start(self) -> None:
        if self._tasks:
            return
        self._stopping.clear()
        self._t0 = time.monotonic()
        self._pool = await asyncpg.create_pool(
            self.dsn,
            min_size=1,
            max_size=3,
            command_timeout=10,
            server_settings={"application_name": "pos-backend (opswatch demo)"},
        )
        try:
            await self.ensure_reference_data()
            if self.backlog:
                await self.seed_backlog()
            await self._listen()
        except BaseException:
            await self.stop()
            raise
        loops: list[Callable[[], Coroutine[None, None, None]]] = [self._redrive_loop]
        if self.traffic:
            loops.append(self._traffic_loop)
        self._tasks = [asyncio.create_task(loop(), name=f"demo-sim-{loop.__name__}") for loop in loops]

    async def stop(self) -> None:
        self._stopping.set()
        tasks, self._tasks = self._tasks, []
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
        listener, self._listener = self._listener, None
        if listener is not None and not listener.is_closed():
            with contextlib.suppress(Exception):
                await asyncio.wait_for(listener.close(), 2)
        pool, self._pool = self._pool, None
        if pool is not None:
            try:
                await asyncio.wait_for(pool.close(), 3)
            except (TimeoutError, OSError, asyncpg.PostgresError):
                pool.terminate()

    @property
    def counters(self) -> SimulatorCounters:
        return SimulatorCounters(**self._c, last_error=self._last_error)

    def _count(self, name: str, n: int = 1) -> None:
        self._c[name] = self._c.get(name, 0) + n

    def _failed(self, where: str, exc: BaseException) -> None:
        self._count("errors")
        text = f"{where}: {describe_error(exc)}"
        if text != self._last_error:  # once per distinct problem, not once a second
            logger.bind(component="demo.simulator").warning("demo simulator {}", text)
        self._last_error = text

    def _require_pool(self) -> asyncpg.Pool:
        if self._pool is None:
            raise RuntimeError("the traffic simulator is not started")
        return self._pool

    # -- reference data and backlog ------------------------------------------------------------

    async def ensure_reference_data(self) -> int:
        """Create the shops and their channels if there are no businesses; returns the channel count."""
        async with self._require_pool().acquire() as conn:
            self._channels = await reference_channels(conn, self._t)
        return len(self._channels)

    async def seed_backlog(self) -> bool:
        """On an empty dead-letter table, add some history (the last hours) so every screen has rows."""
        t = self._t
        rng = random.Random(f"{self.seed}|backlog")
        counters = dict(self._c)
        async with self._require_pool().acquire() as conn, conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock(hashtext('opswatch-demo-backlog'))")
            if await conn.fetchval(f"SELECT EXISTS (SELECT 1 FROM {t['dead_letter_messages']})"):
                return False
            for i in range(27):
                age = timedelta(minutes=rng.uniform(20, 6 * 60))
                status = "pending" if i < 20 else ("resolved" if i < 24 else "abandoned")
                await self._insert_dead_letter(
                    conn, rng, age=age, status=status, retry_count=rng.choice((0, 0, 0, 1, 2))
                )
            for i in range(14):
                minutes = rng.uniform(2, 50) if i < 2 else rng.uniform(70, 23 * 60)
                await self._insert_event_failure(
                    conn, rng, age=timedelta(minutes=minutes), status="resolved" if i >= 10 else "failed"
                )
        self._c = counters
        return True

    # -- writing like the backend --------------------------------------------------------------

    async def generate(self, messages: int = 0, dead_letters: int = 0, events: int = 0) -> None:
        """Insert rows now (tests, scripted demos): sent messages, dead-lettered ones, event failures."""
        async with self._require_pool().acquire() as conn, conn.transaction():
            for _ in range(messages):
                await self._insert_sent(conn, self._rng)
            for _ in range(dead_letters):
                await self._insert_dead_letter(conn, self._rng)
            for _ in range(events):
                await self._insert_event_failure(conn, self._rng)

    def _pick_channel(self, rng: random.Random) -> Channel:
        if not self._channels:
            raise RuntimeError("no businesses/channels: call ensure_reference_data() first")
        return rng.choice(self._channels)

    async def _insert_message(
        self,
        conn: asyncpg.Connection,
        rng: random.Random,
        ch: Channel,
        status: str,
        error: str | None,
        age: timedelta,
    ) -> tuple[int, dict[str, Any]]:
        payload = content.message(rng, ch.shop, ch.platform, ch.language, ch.country_code)
        message_id = await conn.fetchval(
            f"INSERT INTO {self._t['social_messages']} "
            "(business_id, channel_id, status, error_message, payload, created_at, updated_at) "
            "VALUES ($1, $2, $3, $4, $5::jsonb, now() - $6::interval, now() - $6::interval) RETURNING id",
            ch.business_id,
            ch.channel_id,
            status,
            error,
            json.dumps(payload),
            age,
        )
        return int(message_id), payload

    async def _insert_sent(self, conn: asyncpg.Connection, rng: random.Random) -> None:
        await self._insert_message(conn, rng, self._pick_channel(rng), "sent", None, timedelta(0))
        self._count("messages_sent")

    async def _insert_dead_letter(
        self,
        conn: asyncpg.Connection,
        rng: random.Random,
        *,
        age: timedelta = timedelta(0),
        status: str = "pending",
        retry_count: int = 0,
    ) -> int:
        ch = self._pick_channel(rng)
        error = content.api_error(rng, ch.platform)
        message_id, payload = await self._insert_message(conn, rng, ch, "failed", error, age)
        data = content.message_data(message_id, ch.business_id, ch.channel_id, ch.platform, payload)
        dlq_id = await conn.fetchval(
            f"INSERT INTO {self._t['dead_letter_messages']} "
            "(message_id, business_id, channel_id, error_message, "
            "message_data, retry_count, status, created_at, resolved_at) "
            "VALUES ($1, $2, $3, $4, $5::jsonb, $6, $7::text, now() - $8::interval, "
            "CASE WHEN $7::text = 'resolved' THEN now() - $8::interval + interval '9 minutes' END) "
            "RETURNING id",
            message_id,
            ch.business_id,
            ch.channel_id,
            error,
            json.dumps(data),
            retry_count,
            status,
            age,
        )
        self._count("messages_failed")
        self._count("dlq_inserted")
        return int(dlq_id)

    async def _insert_event_failure(
        self,
        conn: asyncpg.Connection,
        rng: random.Random,
        *,
        name: str | None = None,
        age: timedelta = timedelta(0),
        status: str = "failed",
    ) -> int:
        ch = self._pick_channel(rng)
        name = name or content.event_name(rng)
        err = content.event_error(rng, name)
        event_id = await conn.fetchval(
            f"INSERT INTO {self._t['event_failures']} (event_name, business_id, error_message, error_stack, "
            "event_data, status, created_at, resolved_at) "
            "VALUES ($1, $2, $3, $4, $5::jsonb, $6::text, now() - $7::interval, "
            "CASE WHEN $6::text = 'resolved' THEN now() - $7::interval + interval '25 minutes' END) "
            "RETURNING id",
            name,
            ch.business_id,
            err.message,
            err.stack(),
            json.dumps(content.event_data(rng, name, ch.business_id)),
            status,
            age,
        )
        self._count("events_failed")
        return int(event_id)

    async def _traffic_loop(self) -> None:
        carry = {"messages": 0.0, "events": 0.0, "outage_events": 0.0}
        last = time.monotonic()
        last_prune = last
        while not self._stopping.is_set():
            await asyncio.sleep(_TICK_S)
            now = time.monotonic()
            dt, last = min(now - last, 2.0), now
            outage = self.scenario.outage_at(self.elapsed())
            cap = self.max_rows_per_s * dt
            carry["messages"] = min(carry["messages"] + min(MESSAGE_RATE * self.speed * dt, cap), 10.0)
            carry["events"] = min(carry["events"] + min(EVENT_RATE * self.speed * dt, cap), 5.0)
            if outage:
                carry["outage_events"] = min(
                    carry["outage_events"] + min(OUTAGE_EVENT_RATE * self.speed * dt, cap), 5.0
                )
            try:
                await self._tick(carry, outage)
                if now - last_prune >= _PRUNE_EVERY_S:
                    last_prune = now
                    await self.prune()
            except Exception as exc:  # a database hiccup must not end the demo's traffic
                self._failed("traffic", exc)
                await asyncio.sleep(1.0)

    async def _tick(self, carry: dict[str, float], outage: bool) -> None:
        n_messages, n_events, n_outage = (
            int(carry["messages"]),
            int(carry["events"]),
            int(carry["outage_events"]),
        )
        if not (n_messages or n_events or n_outage):
            return
        share = DLQ_SHARE * (3 if outage else 1)
        rng = self._rng
        async with self._require_pool().acquire() as conn, conn.transaction():
            for _ in range(n_messages):
                if rng.random() < share:
                    await self._insert_dead_letter(conn, rng)
                else:
                    await self._insert_sent(conn, rng)
            for _ in range(n_events):
                await self._insert_event_failure(conn, rng)
            for _ in range(n_outage):
                await self._insert_event_failure(conn, rng, name="worker.step.completed")
        carry["messages"] -= n_messages
        carry["events"] -= n_events
        carry["outage_events"] -= n_outage

    async def prune(self) -> None:
        """Keep the demo database small: old sent messages and old closed dead letters go."""
        t = self._t
        async with self._require_pool().acquire() as conn:
            await conn.execute(
                f"DELETE FROM {t['social_messages']} WHERE status = 'sent' "
                f"AND id < (SELECT max(id) FROM {t['social_messages']}) - $1",
                _KEEP_SENT,
            )
            await conn.execute(
                f"DELETE FROM {t['dead_letter_messages']} WHERE status IN ('resolved', 'abandoned') "
                f"AND id < (SELECT max(id) FROM {t['dead_letter_messages']}) - $1",
                _KEEP_CLOSED_DLQ,
            )

    # -- the backend's workers -----------------------------------------------------------------

    async def _listen(self) -> None:
        conn: asyncpg.Connection = await asyncpg.connect(
            self.dsn, timeout=10, server_settings={"application_name": "pos-backend worker (opswatch demo)"}
        )
        await conn.add_listener(REDRIVE_CHANNEL, self._on_notify)
        self._listener = conn

    def _on_notify(self, _conn: object, _pid: int, _channel: str, payload: str) -> None:
        self._count("notifications")
        request = parse_redrive_payload(payload)
        if request is None:
            self._count("bad_notifications")
            return
        with contextlib.suppress(asyncio.QueueFull):  # the poll catches up
            self._queue.put_nowait(request)

    async def _redrive_loop(self) -> None:
        while not self._stopping.is_set():
            request = await get_within(self._queue, self.poll_interval)
            try:
                if self._listener is None or self._listener.is_closed():
                    self._listener = None
                    await self._listen()
                if request is not None:
                    if self.redrive_delay > 0:
                        await asyncio.sleep(self.redrive_delay)
                    await self.handle(request)
                await self.process_redrives()
            except Exception as exc:  # nor the worker
                self._failed("worker", exc)
                await asyncio.sleep(1.0)

    async def handle(self, request: RedriveRequest) -> int:
        """Consume one redrive notification; returns how many rows it settled."""
        t = self._t
        message_ids = list(request.message_ids)
        if request.dlq_ids:
            rows = await self._require_pool().fetch(
                f"SELECT DISTINCT message_id FROM {t['dead_letter_messages']} "
                "WHERE id = ANY($1::int[]) AND status = 'retried'",
                list(request.dlq_ids),
            )
            message_ids.extend(int(r["message_id"]) for r in rows)
        done = 0
        for message_id in dict.fromkeys(message_ids):
            done += await self._resend(message_id) is not None
        for event_id in dict.fromkeys(request.event_ids):
            done += await self._rerun_event(event_id) is not None
        return done

    async def process_redrives(self, limit: int = 200) -> int:
        """One poll: messages back in pending with a retried dead letter, and retrying events."""
        t = self._t
        pool = self._require_pool()
        rows = await pool.fetch(
            f"SELECT DISTINCT d.message_id FROM {t['dead_letter_messages']} d "
            f"JOIN {t['social_messages']} m ON m.id = d.message_id "
            "WHERE d.status = 'retried' AND m.status = 'pending' ORDER BY 1 LIMIT $1",
            limit,
        )
        events = await pool.fetch(
            f"SELECT id FROM {t['event_failures']} WHERE status = 'retrying' ORDER BY id LIMIT $1", limit
        )
        done = 0
        for row in rows:
            done += await self._resend(int(row["message_id"])) is not None
        for row in events:
            done += await self._rerun_event(int(row["id"])) is not None
        return done

    def _outcome(self, key: str) -> Outcome:
        if self.force_outcome is not None:
            return self.force_outcome
        return "success" if random.Random(f"{self.seed}|{key}").random() < self.redrive_success else "failure"

    async def _resolve(self, conn: asyncpg.Connection, table: str, row_id: int) -> None:
        await conn.execute(
            f"UPDATE {self._t[table]} SET status = 'resolved', resolved_at = now() WHERE id = $1", row_id
        )

    async def _resend(self, message_id: int) -> Outcome | None:
        t = self._t
        async with self._require_pool().acquire() as conn, conn.transaction():
            status = await conn.fetchval(
                f"SELECT status FROM {t['social_messages']} WHERE id = $1 FOR UPDATE SKIP LOCKED", message_id
            )
            if status != "pending":
                return None
            dead = await conn.fetchrow(
                f"SELECT d.id, d.business_id, d.channel_id, d.retry_count, d.message_data, c.platform "
                f"FROM {t['dead_letter_messages']} d "
                f"LEFT JOIN {t['social_channels']} c ON c.id = d.channel_id "
                "WHERE d.message_id = $1 AND d.status = 'retried' ORDER BY d.id DESC LIMIT 1",
                message_id,
            )
            if dead is None:
                return None
            outcome = self._outcome(f"redrive|{dead['id']}")
            if outcome == "success":
                await conn.execute(
                    f"UPDATE {t['social_messages']} SET status = 'sent', error_message = NULL, "
                    "updated_at = now() WHERE id = $1",
                    message_id,
                )
                await self._resolve(conn, "dead_letter_messages", dead["id"])
                self._count("redriven_ok")
                return outcome
            platform = str(dead["platform"] or "whatsapp").lower()
            error = content.api_error(random.Random(f"{self.seed}|error|{dead['id']}"), platform)
            await conn.execute(
                f"UPDATE {t['social_messages']} "
                "SET status = 'failed', error_message = $2, updated_at = now() "
                "WHERE id = $1",
                message_id,
                error,
            )
            # the retried row already counts this attempt (opswatch bumps retry_count on retry)
            await conn.execute(
                f"INSERT INTO {t['dead_letter_messages']} "
                "(message_id, business_id, channel_id, error_message, message_data, retry_count, status) "
                "VALUES ($1, $2, $3, $4, $5, GREATEST($6, 1), 'pending')",
                message_id,
                dead["business_id"],
                dead["channel_id"],
                error,
                dead["message_data"],
                dead["retry_count"],
            )
            self._count("redriven_failed")
            self._count("dlq_inserted")
            return outcome

    async def _rerun_event(self, event_id: int) -> Outcome | None:
        t = self._t
        async with self._require_pool().acquire() as conn, conn.transaction():
            row = await conn.fetchrow(
                f"SELECT id, event_name, retry_count FROM {t['event_failures']} "
                "WHERE id = $1 AND status = 'retrying' FOR UPDATE SKIP LOCKED",
                event_id,
            )
            if row is None:
                return None
            outcome = self._outcome(f"event|{event_id}|{row['retry_count']}")
            if outcome == "success":
                await self._resolve(conn, "event_failures", event_id)
                self._count("events_resolved")
                return outcome
            err = content.event_error(
                random.Random(f"{self.seed}|event-error|{event_id}|{row['retry_count']}"),
                str(row["event_name"]),
            )
            await conn.execute(
                f"UPDATE {t['event_failures']} SET status = 'failed', retry_count = retry_count + 1, "
                "error_message = $2, error_stack = $3 WHERE id = $1",
                event_id,
                err.message,
                err.stack(),
            )
            self._count("events_failed_again")
            return outcome

    async def replay(self, payload: dict[str, Any]) -> None:
        """The fake backend's replay hook (opswatch's http redrive): re-queue the message it names.

        opswatch marks the dead letter ``retried`` after our 2xx; the poll then sends it again.
        """
        message_id = payload.get("messageId")
        if isinstance(message_id, bool) or not isinstance(message_id, int):
            return
        await self._require_pool().execute(
            f"UPDATE {self._t['social_messages']} "
            "SET status = 'pending', error_message = NULL, updated_at = now() "
            "WHERE id = $1 AND status = 'failed'",
            message_id,
        )
