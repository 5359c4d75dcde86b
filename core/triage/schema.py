"""The monitored app's table and column names, from config, quoted for SQL."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace

from core.config import Config
from core.migrate import quote_ident

LOGICAL_COLUMNS: dict[str, tuple[str, ...]] = {
    "dead_letter_messages": (
        "id",
        "message_id",
        "business_id",
        "channel_id",
        "error_message",
        "message_data",
        "retry_count",
        "status",
        "created_at",
        "resolved_at",
    ),
    "event_failures": (
        "id",
        "event_name",
        "business_id",
        "error_message",
        "error_stack",
        "event_data",
        "retry_count",
        "status",
        "created_at",
        "resolved_at",
    ),
    "businesses": ("id", "name"),
    "social_channels": ("id", "business_id", "platform", "name"),
    "social_messages": ("id", "status", "error_message", "updated_at"),
}


@dataclass(frozen=True)
class Table:
    logical: str
    schema: str
    name: str
    columns: dict[str, str]  # logical -> real (unquoted)
    missing: frozenset[str] = frozenset()  # logical columns the real table lacks (schema doctor)

    @property
    def q(self) -> str:
        """Schema-qualified, quoted table name."""
        return quote_ident(f"{self.schema}.{self.name}")

    @property
    def display(self) -> str:
        return f"{self.schema}.{self.name}"

    def c(self, logical: str) -> str:
        """Quoted real column name."""
        return quote_ident(self.columns[logical])

    def real(self, logical: str) -> str:
        return self.columns[logical]

    def has(self, logical: str) -> bool:
        """False when introspection found the column (or the whole table) missing."""
        return logical not in self.missing


@dataclass(frozen=True)
class AppTables:
    dlq: Table
    events: Table
    businesses: Table
    channels: Table
    messages: Table

    @classmethod
    def from_config(cls, config: Config) -> AppTables:
        db = config.database

        def table(logical: str) -> Table:
            columns = {col: db.column(logical, col) for col in LOGICAL_COLUMNS[logical]}
            return Table(logical, db.app_schema, db.table(logical), columns)

        return cls(
            dlq=table("dead_letter_messages"),
            events=table("event_failures"),
            businesses=table("businesses"),
            channels=table("social_channels"),
            messages=table("social_messages"),
        )

    def every(self) -> tuple[Table, ...]:
        return (self.dlq, self.events, self.businesses, self.channels, self.messages)

    def without(self, missing: Mapping[str, frozenset[str]]) -> AppTables:
        """These tables with ``missing`` (logical table -> logical columns) marked absent."""

        def mark(t: Table) -> Table:
            return replace(t, missing=missing.get(t.logical, frozenset())) if missing.get(t.logical) else t

        return replace(
            self,
            dlq=mark(self.dlq),
            events=mark(self.events),
            businesses=mark(self.businesses),
            channels=mark(self.channels),
            messages=mark(self.messages),
        )
