"""Notifications decided while the database (and so the outbox) was unreachable.

opswatch keeps its outbox in the monitored PostgreSQL, so "database unreachable" could
otherwise never be announced. Only the instance that was evaluating when the database went
away queues here, or a headless agent that started while it was already gone (for the
database-reachability rules only); the others stay quiet, so the team gets one copy;
the Deliverer sends these directly, retrying in memory. Once the database is back the engine
records what was sent (as delivered) and what was given up on (as dead, resendable), and
moves what was not tried to the end into the real outbox.

The queue is bounded: beyond ``max_items`` already-sent entries go first (only their record
is lost), then the oldest others; every drop is logged.

``journal`` (the engine's local spool, :mod:`core.spool`) is told when an entry is sent or given
up on, durably, so a restart before the database returns still records it. ``direct`` says
whether sending directly is allowed now: once the database is back, unsent entries wait for the
engine to move them into the outbox (another instance may have replayed them there already).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from loguru import logger

from core.notify.outbox import FailedItem, OutboxItem
from core.safe_text import first_line

__all__ = ["Adopted", "OfflineEntry", "OfflineOutbox"]


@dataclass
class OfflineEntry:
    item: OutboxItem
    attempts: int = 0
    next_at: float = 0.0  # time.monotonic()
    busy: bool = False  # being sent, or being moved into the database
    sent: bool = False
    dead: bool = False  # given up: max_attempts or a permanent error
    last_error: str | None = None
    last_status: int | None = None
    journal: Callable[[OfflineEntry], None] | None = None

    def __setattr__(self, name: str, value: Any) -> None:
        # the Deliverer flips ``sent`` / ``dead``: record the outcome in the spool as it happens
        object.__setattr__(self, name, value)
        journal = getattr(self, "journal", None)
        if name in ("sent", "dead") and value and journal is not None:
            journal(self)

    @property
    def state(self) -> str:
        return "sent" if self.sent else "given-up" if self.dead else "unsent"

    def failed(self) -> FailedItem:
        return FailedItem(self.item, self.attempts, self.last_error, self.last_status)


@dataclass(frozen=True)
class Adopted:
    """Entries reserved by :meth:`OfflineOutbox.adopt`, by what happened to them."""

    sent: list[OfflineEntry]
    unsent: list[OfflineEntry]
    dead: list[OfflineEntry]

    @property
    def all(self) -> list[OfflineEntry]:
        return [*self.sent, *self.unsent, *self.dead]


class OfflineOutbox:
    def __init__(
        self,
        max_items: int = 500,
        *,
        journal: Callable[[OfflineEntry], None] | None = None,
        direct: Callable[[], bool] | None = None,
    ) -> None:
        self.max_items = max_items
        self.entries: list[OfflineEntry] = []
        self.dropped = 0
        self.journal = journal
        self.direct = direct

    def __len__(self) -> int:
        return len(self.entries)

    def put(self, items: Iterable[OutboxItem]) -> None:
        known = {e.item.dedup_key for e in self.entries}
        for item in items:
            if item.dedup_key not in known:
                self.entries.append(OfflineEntry(item, journal=self.journal))
                known.add(item.dedup_key)
        while len(self.entries) > self.max_items:
            idle = [e for e in self.entries if not e.busy]
            victim = next((e for e in idle if e.sent), idle[0] if idle else None)
            if victim is None:
                break
            self.entries.remove(victim)
            self.dropped += 1
            item = victim.item
            logger.warning(
                "direct-delivery queue full ({} entries): dropped {} {} notification to {}: {}",
                self.max_items,
                victim.state,
                item.kind,
                item.route,
                first_line(item.summary, 200, redact_secrets=True),
            )

    def due(self, now: float) -> list[OfflineEntry]:
        """The oldest unsent entry of each route, if it is due (keeps firing/resolved order)."""
        if self.direct is not None and not self.direct():
            return []
        heads: dict[str, OfflineEntry] = {}
        for e in self.entries:
            if not e.sent and not e.dead and e.item.route not in heads:
                heads[e.item.route] = e
        return [e for e in heads.values() if not e.busy and e.next_at <= now]

    def adopt(self) -> Adopted:
        """Reserve everything not in flight for moving into the outbox."""
        adopted = Adopted([], [], [])
        for e in self.entries:
            if e.busy:
                continue
            e.busy = True
            (adopted.sent if e.sent else adopted.dead if e.dead else adopted.unsent).append(e)
        return adopted

    def release(self, entries: Iterable[OfflineEntry], *, stored: bool) -> None:
        """After :meth:`adopt`: drop the entries once stored, or make them sendable again."""
        chosen = list(entries)
        if stored:
            ids = {id(e) for e in chosen}
            self.entries = [e for e in self.entries if id(e) not in ids]
        else:
            for e in chosen:
                e.busy = False
