"""Per-server settings, as text values under a key."""

from __future__ import annotations

from bot.db.database import Database, Transaction

BUTTONS_FOR_EVERYONE = "buttons_for_everyone"

_GET = "SELECT value FROM guild_settings WHERE guild_id = ? AND key = ?"
_GET_ALL = "SELECT key, value FROM guild_settings WHERE guild_id = ?"
_SET = """
INSERT INTO guild_settings (guild_id, key, value) VALUES (?, ?, ?)
ON CONFLICT (guild_id, key) DO UPDATE SET value = excluded.value
"""


async def get_flag(db: Database, guild_id: int | None, key: str) -> bool:
    if guild_id is None:
        return False
    row = await db.fetchone(_GET, (guild_id, key))
    return row is not None and row[0] == "1"


async def set_flag(db: Database, guild_id: int, key: str, value: bool) -> None:
    await db.execute(_SET, (guild_id, key, "1" if value else "0"))


async def get_all(db: Database, guild_id: int) -> dict[str, str]:
    """Every stored setting of a server, key -> text value."""
    return {str(row[0]): str(row[1]) for row in await db.fetchall(_GET_ALL, (guild_id,))}


async def get_value(tx: Transaction, guild_id: int, key: str) -> str | None:
    """One setting, read inside a transaction (for read-modify-write)."""
    row = await tx.fetchone(_GET, (guild_id, key))
    return None if row is None else str(row[0])


async def set_value(tx: Transaction, guild_id: int, key: str, value: str) -> None:
    await tx.execute(_SET, (guild_id, key, value))
