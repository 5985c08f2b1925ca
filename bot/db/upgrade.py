"""Safety around schema upgrades: refuse a newer schema, and back the database up before migrating."""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import time
from pathlib import Path

from bot.db.base import to_completion

log = logging.getLogger(__name__)


class SchemaTooNew(RuntimeError):
    """The database was written by a newer version of the bot."""


async def backup_before_migration(conn: sqlite3.Connection, from_version: int, to_version: int) -> Path | None:
    """Copy the whole database next to itself with SQLite's online backup API before a migration.

    Returns the backup's path; None for a new (version 0) or in-memory database, where there is nothing
    to lose. The copy is consistent even with WAL and other readers: it is taken page by page by SQLite.
    """
    if from_version == 0:
        return None
    rows = conn.execute("PRAGMA database_list").fetchall()
    main = next((str(row[2]) for row in rows if row[1] == "main"), "")
    if not main:
        return None
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    target_path = Path(f"{main}.v{from_version}-{stamp}.bak")

    def copy() -> None:
        target = sqlite3.connect(target_path)
        try:
            conn.backup(target)
        finally:
            target.close()

    await to_completion(asyncio.to_thread(copy))  # never abandoned while it reads the connection
    log.info("backed up the schema v%d database to %s before migrating to v%d", from_version, target_path, to_version)
    return target_path
