"""Seeding helpers shared by the triage tests (no tests here)."""

from __future__ import annotations

import json
from typing import Any

import asyncpg

from core.config import Config, loads_config


def triage_config(**triage: Any) -> Config:
    body = json.dumps({"triage": triage}) if triage else "{}"
    return loads_config(body)


async def reset_app(conn: asyncpg.Connection) -> None:
    await conn.execute(
        "TRUNCATE dead_letter_messages, event_failures, social_messages, social_channels, businesses "
        "RESTART IDENTITY CASCADE; TRUNCATE opswatch.audit_log"
    )


async def seed_base(conn: asyncpg.Connection) -> dict[str, int]:
    """Two businesses, three channels; returns their ids by name."""
    b1 = await conn.fetchval("INSERT INTO businesses (name) VALUES ('Shop A') RETURNING id")
    b2 = await conn.fetchval("INSERT INTO businesses (name) VALUES ('[red]Shop B[/red]') RETURNING id")
    channel = "INSERT INTO social_channels (business_id, platform, name) VALUES ($1, $2, $3) RETURNING id"
    c1 = await conn.fetchval(channel, b1, "whatsapp", "WA main")
    c2 = await conn.fetchval(channel, b1, "instagram", "IG")
    c3 = await conn.fetchval(channel, b2, "whatsapp", "WA B")
    return {"b1": b1, "b2": b2, "c1": c1, "c2": c2, "c3": c3}


async def add_dlq(
    conn: asyncpg.Connection,
    n: int,
    *,
    business_id: int,
    channel_id: int,
    status: str = "pending",
    error: str = "(#131047) Re-engagement message: more than 24 hours since the customer last replied",
    data: str | None = None,
    age_s: float = 60.0,
    retry_count: int = 0,
) -> list[int]:
    """``n`` dead letters, each with its own failed social_messages row; returns dlq ids."""
    rows = await conn.fetch(
        """
        WITH m AS (
            INSERT INTO social_messages (business_id, channel_id, status, error_message, payload)
            SELECT $1, $2, 'failed', $4, jsonb_build_object('n', g) FROM generate_series(1, $3) g
            RETURNING id
        )
        INSERT INTO dead_letter_messages
            (message_id, business_id, channel_id, error_message, message_data, retry_count, status,
             created_at)
        SELECT m.id, $1, $2, $4,
               coalesce($5::jsonb,
                        jsonb_build_object('messageId', m.id, 'to', '+4915700000' || m.id, 'text', 'hi')),
               $7, $6, LOCALTIMESTAMP - $8::float8 * interval '1 second'
        FROM m ORDER BY m.id
        RETURNING id
        """,
        business_id,
        channel_id,
        n,
        error,
        data,
        status,
        retry_count,
        age_s,
    )
    return sorted(r["id"] for r in rows)


async def add_events(
    conn: asyncpg.Connection,
    n: int,
    *,
    business_id: int,
    event_name: str = "sale.completed",
    status: str = "failed",
    error: str = "TypeError: Cannot read properties of undefined (reading 'total')",
    stack: str | None = "TypeError: Cannot read properties of undefined\n    at emit (events.js:12:5)",
    data: str | None = '{"saleId": 1}',
    age_s: float = 60.0,
) -> list[int]:
    rows = await conn.fetch(
        """
        INSERT INTO event_failures
            (event_name, business_id, error_message, error_stack, event_data, status, created_at)
        SELECT $1, $2, $3, $4, $5::jsonb, $6, LOCALTIMESTAMP - $8::float8 * interval '1 second'
        FROM generate_series(1, $7)
        RETURNING id
        """,
        event_name,
        business_id,
        error,
        stack,
        data,
        status,
        n,
        age_s,
    )
    return sorted(r["id"] for r in rows)
