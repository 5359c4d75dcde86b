"""Sending retried rows back to the backend: ``sql`` (reset + pg_notify) or ``http`` (POST replay).

sql: in the action's own transaction the original ``social_messages`` rows go back to
``pending`` with their error cleared, and ``pg_notify('opswatch_redrive', payload)`` tells the
backend's worker; ``payload`` is JSON ``{"kind": "dlq"|"event", "ids": [...]}`` (plus
``"message_ids"`` for dlq), split so each notification stays under PostgreSQL's 8000 bytes.

http: the stored payload (``message_data`` / ``event_data``, raw JSON) is POSTed to
``triage.redrive.replay_url`` with ``Idempotency-Key: opswatch-<kind>-<id>-<retry>`` where
``retry`` is the retry count this attempt produces, so a replay that reached the backend but
was not recorded here is recognised by the backend when it is sent again.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field

import asyncpg
import httpx

from core.config import RedriveConfig
from core.redact import redact
from core.safe_text import first_line
from core.triage.models import Kind
from core.triage.schema import AppTables

NOTIFY_CHANNEL = "opswatch_redrive"
_NOTIFY_MAX_BYTES = 7900
HTTP_CONCURRENCY = 8


class Pacer:
    """At most ``rate`` units per second over the whole run (None: unlimited); cancellable waits."""

    def __init__(
        self,
        rate: float | None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if rate is not None and rate <= 0:
            raise ValueError("rate limit must be greater than zero")
        self.rate = rate
        self._clock = clock
        self._next = 0.0

    async def take(self, units: int = 1, cancel: asyncio.Event | None = None) -> bool:
        """Wait for room for ``units``; False when ``cancel`` was set meanwhile."""
        if cancel is not None and cancel.is_set():
            return False
        if self.rate is None:
            return True
        now = self._clock()
        start = max(self._next, now)
        self._next = start + units / self.rate
        delay = start - now
        if delay > 0:
            if cancel is None:
                await asyncio.sleep(delay)
            else:
                try:
                    await asyncio.wait_for(cancel.wait(), delay)
                    return False
                except TimeoutError:
                    pass
        return not (cancel is not None and cancel.is_set())


def notify_payloads(kind: Kind, ids: Sequence[int], message_ids: Sequence[int] | None = None) -> list[str]:
    """JSON payloads for ``pg_notify``, each under the 8000-byte limit."""
    out: list[str] = []
    start = 0
    step = max(1, len(ids))
    while start < len(ids):
        end = min(len(ids), start + step)
        body: dict[str, object] = {"kind": kind, "ids": list(ids[start:end])}
        if message_ids is not None:
            body["message_ids"] = list(message_ids[start:end])
        text = json.dumps(body, separators=(",", ":"))
        if len(text) > _NOTIFY_MAX_BYTES and end - start > 1:
            step = max(1, (end - start) // 2)
            continue
        out.append(text)
        start = end
    return out


class SqlRedrive:
    """Runs inside the action's transaction."""

    def __init__(self, tables: AppTables) -> None:
        self.tables = tables
        self._has_updated_at: bool | None = None

    async def _messages_have_updated_at(self, conn: asyncpg.Connection) -> bool:
        if self._has_updated_at is None:
            m = self.tables.messages
            found = await conn.fetchval(
                "SELECT count(*) FROM information_schema.columns "
                "WHERE table_schema = $1 AND table_name = $2 AND column_name = $3",
                m.schema,
                m.name,
                m.real("updated_at"),
            )
            self._has_updated_at = bool(found)
        return self._has_updated_at

    async def redrive(
        self, conn: asyncpg.Connection, kind: Kind, ids: Sequence[int], message_ids: Sequence[int] = ()
    ) -> dict[str, object]:
        """Reset the original messages (dlq) and notify; returns what to record in the audit detail."""
        detail: dict[str, object] = {"mode": "sql"}
        if kind == "dlq" and message_ids:
            m = self.tables.messages
            touch = ""
            if await self._messages_have_updated_at(conn):
                touch = f", {m.c('updated_at')} = CURRENT_TIMESTAMP"
            status = await conn.execute(
                f"UPDATE {m.q} SET {m.c('status')} = 'pending', {m.c('error_message')} = NULL{touch} "
                f"WHERE {m.c('id')} = ANY($1::bigint[])",
                sorted(set(message_ids)),
            )
            detail["messages_reset"] = int(status.split()[-1])
        for payload in notify_payloads(kind, ids, list(message_ids) if kind == "dlq" else None):
            await conn.execute("SELECT pg_notify($1, $2)", NOTIFY_CHANNEL, payload)
        return detail


@dataclass(frozen=True)
class ReplayItem:
    id: int
    next_retry: int
    message_id: int | None = None


PayloadLoader = Callable[[int], Awaitable[str | None]]


@dataclass
class ReplayOutcome:
    ok: list[int] = field(default_factory=list)
    failed: dict[int, str] = field(default_factory=dict)
    not_attempted: list[int] = field(default_factory=list)


def idempotency_key(kind: Kind, row_id: int, next_retry: int) -> str:
    return f"opswatch-{kind}-{row_id}-{next_retry}"


def describe_http_error(exc: BaseException, timeout: float) -> str:
    if isinstance(exc, httpx.TimeoutException):
        return f"replay timed out after {timeout:g}s"
    if isinstance(exc, httpx.ConnectError):
        return "replay failed: cannot connect to the replay URL"
    text = str(exc).strip() or type(exc).__name__
    return "replay failed: " + first_line(redact(text), 200)


class HttpRedrive:
    """POSTs payloads to the configured replay URL; only 2xx counts as redriven."""

    def __init__(
        self, cfg: RedriveConfig, client: httpx.AsyncClient, concurrency: int = HTTP_CONCURRENCY
    ) -> None:
        if not cfg.replay_url:
            raise ValueError("triage.redrive.replay_url is not set (required for mode http)")
        self.cfg = cfg
        self.client = client
        self.concurrency = concurrency

    def claim_ttl_s(self, items: int, pacer: Pacer | None = None) -> float:
        """How long claims on ``items`` rows must last: every replay timing out, plus pacing,
        plus a minute. Only a crashed opswatch ever waits this long for its claims to lapse."""
        rounds = -(-items // self.concurrency)
        paced = items / pacer.rate if pacer is not None and pacer.rate else 0.0
        return rounds * float(self.cfg.timeout) + paced + 60.0

    async def _post(self, kind: Kind, item: ReplayItem, payload: str | None) -> str | None:
        headers = {
            **self.cfg.headers,
            "Content-Type": "application/json",
            "Idempotency-Key": idempotency_key(kind, item.id, item.next_retry),
            "X-Opswatch-Kind": kind,
            "X-Opswatch-Id": str(item.id),
        }
        if item.message_id is not None:
            headers["X-Opswatch-Message-Id"] = str(item.message_id)
        body = (payload if payload is not None else "null").encode("utf-8")
        try:
            response = await self.client.post(
                str(self.cfg.replay_url), content=body, headers=headers, timeout=self.cfg.timeout
            )
        except httpx.HTTPError as exc:
            return describe_http_error(exc, self.cfg.timeout)
        if 200 <= response.status_code < 300:
            return None
        reason = first_line(redact(response.text), 200) if response.content else ""
        return f"HTTP {response.status_code}" + (f": {reason}" if reason else "")

    async def replay(
        self,
        kind: Kind,
        items: Sequence[ReplayItem],
        load_payload: PayloadLoader,
        pacer: Pacer,
        cancel: asyncio.Event | None,
    ) -> ReplayOutcome:
        """POST each item (at most ``concurrency`` at once, paced); payloads are loaded one at a
        time when their request starts, so memory stays bounded with 10 MB payloads."""
        outcome = ReplayOutcome()
        semaphore = asyncio.Semaphore(self.concurrency)

        async def one(item: ReplayItem) -> None:
            async with semaphore:
                if not await pacer.take(1, cancel):
                    outcome.not_attempted.append(item.id)
                    return
                error = await self._post(kind, item, await load_payload(item.id))
            if error is None:
                outcome.ok.append(item.id)
            else:
                outcome.failed[item.id] = error

        await asyncio.gather(*(one(item) for item in items))
        return outcome
