"""App-level messages (past tense)."""

from __future__ import annotations

from textual.message import Message

from core.snapshot import Snapshot


class SnapshotUpdated(Message):
    """The Monitor published a snapshot; a burst collapses into the newest one."""

    def __init__(self, snapshot: Snapshot) -> None:
        super().__init__()
        self.snapshot = snapshot

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, SnapshotUpdated)
