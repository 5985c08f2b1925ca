"""Database access: one interface (`Database`), SQLite by default, PostgreSQL when DATABASE_URL is set."""

from bot.db.base import Database

__all__ = ["Database"]
