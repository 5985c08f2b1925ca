"""The bot's single SQLite connection: WAL, busy timeout, one transaction at a time."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiosqlite

from bot.db.migrations import MIGRATIONS
from bot.db.upgrade import SchemaTooNew, backup_before_migration

log = logging.getLogger(__name__)

Params = Iterable[Any] | dict[str, Any]


class Database:
    """Owns the connection. Writes go through `transaction()`, which serialises them."""

    def __init__(self, conn: aiosqlite.Connection) -> None:
        self._conn = conn
        self._lock = asyncio.Lock()

    @classmethod
    async def open(cls, path: Path | str) -> Database:
        """Open (creating the folder and file), configure and migrate the database."""
        if str(path) != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        conn = await aiosqlite.connect(str(path), isolation_level=None)
        conn.row_factory = aiosqlite.Row
        db = cls(conn)
        try:
            await conn.execute("PRAGMA journal_mode = WAL")
            await conn.execute("PRAGMA busy_timeout = 5000")
            await conn.execute("PRAGMA foreign_keys = ON")
            await conn.execute("PRAGMA synchronous = NORMAL")
            await db._migrate()
        except BaseException:
            await conn.close()
            raise
        return db

    async def close(self) -> None:
        await self._conn.close()

    async def _migrate(self) -> None:
        async with self._conn.execute("PRAGMA user_version") as cursor:
            row = await cursor.fetchone()
        current = int(row[0]) if row else 0
        if current > len(MIGRATIONS):
            raise SchemaTooNew(f"database schema v{current} is newer than this bot (v{len(MIGRATIONS)})")
        if current < len(MIGRATIONS):
            await backup_before_migration(self._conn, current, len(MIGRATIONS))
        for version in range(current + 1, len(MIGRATIONS) + 1):
            async with self.transaction() as conn:
                await conn.executescript_in_transaction(MIGRATIONS[version - 1])
                # PRAGMA takes no bound parameters; the version is an int we computed.
                await conn.execute(f"PRAGMA user_version = {int(version)}")
            log.info("database migrated to schema v%d", version)

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[Transaction]:
        """BEGIN IMMEDIATE ... COMMIT, rolled back on any error."""
        async with self._lock:
            await self._conn.execute("BEGIN IMMEDIATE")
            try:
                yield Transaction(self._conn)
            except BaseException:
                await self._conn.execute("ROLLBACK")
                raise
            await self._conn.execute("COMMIT")

    # Each call below is one round trip to aiosqlite's thread. Under load every round trip waits for a
    # turn of the event loop, so single statements run in autocommit mode (atomic by themselves) rather
    # than as BEGIN/statement/COMMIT, and cursors are not closed explicitly. The lock only keeps them
    # out of an open multi-statement transaction.

    async def fetchone(self, sql: str, params: Params = ()) -> aiosqlite.Row | None:
        rows = await self.fetchall(sql, params)
        return rows[0] if rows else None

    async def fetchall(self, sql: str, params: Params = ()) -> list[aiosqlite.Row]:
        async with self._lock:
            return list(await self._conn.execute_fetchall(sql, params))

    async def execute(self, sql: str, params: Params = ()) -> int:
        """Run one write statement (atomic on its own); return the rows changed."""
        async with self._lock:
            cursor = await self._conn.execute(sql, params)
            return cursor.rowcount


class Transaction:
    """The statements available inside `Database.transaction()`."""

    def __init__(self, conn: aiosqlite.Connection) -> None:
        self._conn = conn

    async def execute(self, sql: str, params: Params = ()) -> int:
        async with self._conn.execute(sql, params) as cursor:
            return cursor.rowcount

    async def insert(self, sql: str, params: Params = ()) -> int:
        async with self._conn.execute(sql, params) as cursor:
            if cursor.lastrowid is None:
                raise RuntimeError("insert returned no row id")
            return cursor.lastrowid

    async def fetchone(self, sql: str, params: Params = ()) -> aiosqlite.Row | None:
        rows = await self.fetchall(sql, params)
        return rows[0] if rows else None

    async def fetchall(self, sql: str, params: Params = ()) -> list[aiosqlite.Row]:
        return list(await self._conn.execute_fetchall(sql, params))

    async def executescript_in_transaction(self, script: str) -> None:
        # executescript() would COMMIT first; run the statements one by one instead.
        for statement in script.split(";"):
            if statement.strip():
                await self._conn.execute(statement)
