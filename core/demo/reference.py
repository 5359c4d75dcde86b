"""The demo's reference data: the seed's shops and their social channels, created once per database."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import asyncpg

from core.demo import content


@dataclass(frozen=True)
class Channel:
    business_id: int
    channel_id: int
    platform: str
    shop: str
    language: str
    country_code: str


async def reference_channels(conn: asyncpg.Connection, t: Mapping[str, str]) -> list[Channel]:
    """The channels to write traffic for; the shops and channels are created first on an empty
    ``businesses`` table (under an advisory lock, so two demos starting at once create them once).
    ``t``: the quoted table names."""
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock(hashtext('opswatch-demo-reference'))")
        if not await conn.fetchval(f"SELECT EXISTS (SELECT 1 FROM {t['businesses']})"):
            for shop in content.SHOPS:
                business_id = await conn.fetchval(
                    f"INSERT INTO {t['businesses']} (name, created_at) "
                    "VALUES ($1, now() - interval '400 days') RETURNING id",
                    shop.name,
                )
                await conn.executemany(
                    f"INSERT INTO {t['social_channels']} (business_id, platform, name, created_at) "
                    "VALUES ($1, $2, $3, now() - interval '300 days')",
                    [(business_id, p, content.channel_name(shop, p)) for p in shop.platforms],
                )
        rows = await conn.fetch(
            f"SELECT c.id, c.business_id, c.platform, b.name FROM {t['social_channels']} c "
            f"JOIN {t['businesses']} b ON b.id = c.business_id ORDER BY c.id"
        )
    shops = {s.name: s for s in content.SHOPS}
    channels = []
    for row in rows:
        known = shops.get(row["name"])
        channels.append(
            Channel(
                row["business_id"],
                row["id"],
                str(row["platform"]).lower(),
                row["name"],
                known.language if known else "en",
                known.country_code if known else "1",
            )
        )
    return channels
