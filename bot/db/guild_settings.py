"""Per-server settings, as text values under a key."""

from __future__ import annotations

from bot.db.database import Database

BUTTONS_FOR_EVERYONE = "buttons_for_everyone"

_GET = "SELECT value FROM guild_settings WHERE guild_id = ? AND key = ?"
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
