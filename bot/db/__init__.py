"""SQLite access: one connection, WAL, numbered migrations."""

from bot.db.database import Database

__all__ = ["Database"]
