"""A database is copied with SQLite's backup API before a migration changes it."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from bot.db import Database
from bot.db.migrations import MIGRATIONS


def old_database(path: Path) -> None:
    """A database as the first release left it (schema v1)."""
    with sqlite3.connect(path) as conn:
        conn.executescript(MIGRATIONS[0])
        conn.execute("PRAGMA user_version = 1")
        columns = [row[1] for row in conn.execute("PRAGMA table_info(jobs)")]
        assert "prompt" in columns


async def test_an_old_database_is_backed_up_before_migrating(tmp_path: Path) -> None:
    path = tmp_path / "bot.db"
    old_database(path)
    db = await Database.open(path)
    await db.close()
    backups = list(tmp_path.glob("bot.db.v1-*.bak"))
    assert len(backups) == 1
    with sqlite3.connect(backups[0]) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == 1
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == len(MIGRATIONS)


async def test_new_and_current_databases_need_no_backup(tmp_path: Path) -> None:
    path = tmp_path / "bot.db"
    for _ in range(2):
        db = await Database.open(path)
        await db.close()
    assert list(tmp_path.glob("*.bak")) == []
