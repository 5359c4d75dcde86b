"""Notifications decided while the database (and so the outbox) was unreachable.

opswatch keeps its outbox in the monitored PostgreSQL, so "database unreachable" could
otherwise never be announced. Only the instance that was evaluating when the database went
away queues here (the others stay quiet, so the team does not get one copy per instance);
the Deliverer sends these directly, retrying in memory. Once the database is back the engine
records what was sent (as delivered) and moves what was not into the real outbox.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from core.notify.outbox import OutboxItem

__all__ = ["OfflineEntry", "OfflineOutbox"]


@dataclass
class OfflineEntry:
    item: OutboxItem
    attempts: int = 0
    next_at: float = 0.0  # time.monotonic()
    busy: bool = False  # being sent, or being moved into the database
    sent: bool = False
    last_error: str | None = None


class OfflineOutbox:
    def __init__(self, max_items: int = 500) -> None:
        self.max_items = max_items
        self.entries: list[OfflineEntry] = []
        self.dropped = 0

    def __len__(self) -> int:
        return len(self.entries)

    def put(self, items: Iterable[OutboxItem]) -> None:
        known = {e.item.dedup_key for e in self.entries}
        for item in items:
            if item.dedup_key not in known:
                self.entries.append(OfflineEntry(item))
                known.add(item.dedup_key)
        while len(self.entries) > self.max_items:
            victim = next((e for e in self.entries if not e.busy), None)
            if victim is None:
                break
            self.entries.remove(victim)
            self.dropped += 1

    def due(self, now: float) -> list[OfflineEntry]:
        """The oldest unsent entry of each route, if it is due (keeps firing/resolved order)."""
        heads: dict[str, OfflineEntry] = {}
        for e in self.entries:
            if not e.sent and e.item.route not in heads:
                heads[e.item.route] = e
        return [e for e in heads.values() if not e.busy and e.next_at <= now]

    def adopt(self) -> tuple[list[OfflineEntry], list[OfflineEntry]]:
        """Reserve everything not in flight for moving into the outbox: (sent, unsent)."""
        sent: list[OfflineEntry] = []
        unsent: list[OfflineEntry] = []
        for e in self.entries:
            if e.busy:
                continue
            e.busy = True
            (sent if e.sent else unsent).append(e)
        return sent, unsent

    def release(self, entries: Iterable[OfflineEntry], *, stored: bool) -> None:
        """After :meth:`adopt`: drop the entries once stored, or make them sendable again."""
        chosen = list(entries)
        if stored:
            ids = {id(e) for e in chosen}
            self.entries = [e for e in self.entries if id(e) not in ids]
        else:
            for e in chosen:
                e.busy = False

    def discard(self, entry: OfflineEntry) -> None:
        if entry in self.entries:
            self.entries.remove(entry)
