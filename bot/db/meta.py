"""Small key/value facts the bot keeps about itself (e.g. the hash of the last synced commands)."""

from __future__ import annotations

from bot.db.database import Database

_GET = "SELECT value FROM meta WHERE key = ?"
_SET = "INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value"


async def get_meta(db: Database, key: str) -> str | None:
    row = await db.fetchone(_GET, (key,))
    return None if row is None else str(row[0])


async def set_meta(db: Database, key: str, value: str) -> None:
    await db.execute(_SET, (key, value))
