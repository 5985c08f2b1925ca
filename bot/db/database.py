"""The bot's SQLite database: WAL, busy timeout, numbered migrations, transactions cancellation cannot leave open.

Writes go through one connection, one at a time. Reads use a second connection, so a button's lookup never
waits behind a large write (WAL lets readers run beside the writer).
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TypeVar, cast

import aiosqlite

from bot.db.base import Database, Params, Row, Transaction, to_completion
from bot.db.migrations import MIGRATIONS
from bot.db.upgrade import SchemaTooNew, backup_before_migration

log = logging.getLogger(__name__)

T = TypeVar("T")
BULK_DEFERRALS = 20  # times a bulk write lets small writes that queued behind it go first


async def _connect(path: str) -> aiosqlite.Connection:
    conn = await aiosqlite.connect(path, isolation_level=None)
    conn.row_factory = aiosqlite.Row
    await conn.execute("PRAGMA busy_timeout = 5000")
    await conn.execute("PRAGMA foreign_keys = ON")
    return conn


class SqliteDatabase(Database):
    """Owns the connections. Writes go through `transaction()` or `execute()`, which serialise them."""

    dialect = "sqlite"

    def __init__(self, conn: aiosqlite.Connection, reader: aiosqlite.Connection | None = None) -> None:
        self._conn = conn
        self._reader = reader or conn
        self._lock = asyncio.Lock()
        self._bulk = asyncio.Lock()
        self._small_waiting = 0  # small writes waiting for the writer: a bulk write lets them all go first

    @classmethod
    async def open(cls, path: Path | str) -> SqliteDatabase:
        """Open (creating the folder and file), configure and migrate the database."""
        memory = str(path) == ":memory:"
        if not memory:
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        conn = await _connect(str(path))
        db = cls(conn)
        try:
            await conn.execute("PRAGMA journal_mode = WAL")
            await conn.execute("PRAGMA synchronous = NORMAL")
            await db._migrate()
            if not memory:
                db._reader = await _connect(str(path))
        except BaseException:
            await conn.close()
            raise
        return db

    async def close(self) -> None:
        if self._reader is not self._conn:
            await self._reader.close()
        await self._conn.close()

    async def _migrate(self) -> None:
        async with self._conn.execute("PRAGMA user_version") as cursor:
            row = await cursor.fetchone()
        current = int(row[0]) if row else 0
        if current > len(MIGRATIONS):
            raise SchemaTooNew(f"database schema v{current} is newer than this bot (v{len(MIGRATIONS)})")
        if current == len(MIGRATIONS):
            return
        await backup_before_migration(self._conn, current, len(MIGRATIONS))
        # Some migrations rebuild a table; foreign keys can only be switched off outside a transaction.
        await self._conn.execute("PRAGMA foreign_keys = OFF")
        try:
            for version in range(current + 1, len(MIGRATIONS) + 1):
                async with self.transaction() as tx:
                    await cast(SqliteTransaction, tx).executescript_in_transaction(MIGRATIONS[version - 1])
                    # PRAGMA takes no bound parameters; the version is an int we computed.
                    await tx.execute(f"PRAGMA user_version = {int(version)}")
                    if await tx.fetchall("PRAGMA foreign_key_check"):
                        raise RuntimeError(f"migration {version} broke a foreign key")
                log.info("database migrated to schema v%d", version)
        finally:
            await self._conn.execute("PRAGMA foreign_keys = ON")

    @asynccontextmanager
    async def _writer(self) -> AsyncIterator[None]:
        """The write connection, for a small write (ahead of any bulk write that has not started yet)."""
        self._small_waiting += 1
        try:
            await self._lock.acquire()
        finally:
            self._small_waiting -= 1
        try:
            yield
        finally:
            self._lock.release()

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[Transaction]:
        """BEGIN IMMEDIATE ... COMMIT, rolled back on any error or cancellation, never left open."""
        async with self._writer():
            try:
                await to_completion(self._conn.execute("BEGIN IMMEDIATE"))
                yield SqliteTransaction(self._conn)
                await to_completion(self._conn.execute("COMMIT"))
            except BaseException:
                await to_completion(self._rollback())
                raise

    async def run_in_transaction(self, body: Callable[[sqlite3.Connection], T]) -> T:
        """Run `body` with the write connection on its own thread, inside BEGIN IMMEDIATE ... COMMIT (rolled back if
        it raises): one round trip to the database thread for the whole transaction. `body` must not block on
        anything but SQLite. It runs to its end even if the caller is cancelled meanwhile."""

        def run() -> T:
            conn = self._conn._conn  # the sqlite3 connection, used only on aiosqlite's thread
            assert conn is not None
            conn.execute("BEGIN IMMEDIATE")
            try:
                result = body(conn)
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")
            return result

        # aiosqlite has no public call for "run this on the connection's thread"; _execute is what all of its
        # methods use (aiosqlite is pinned in requirements.lock).
        execute: Callable[[Callable[[], T]], Awaitable[T]] = self._conn._execute
        async with self._writer():
            return await to_completion(execute(run))

    async def _rollback(self) -> None:
        if self._conn.in_transaction:
            await self._conn.execute("ROLLBACK")

    @property
    def in_transaction(self) -> bool:
        """Whether the write connection is inside a transaction (never true between calls)."""
        return self._conn.in_transaction

    # Each call below is one round trip to aiosqlite's thread. Under load every round trip waits for a
    # turn of the event loop, so single statements run in autocommit mode (atomic by themselves) rather
    # than as BEGIN/statement/COMMIT, and cursors are not closed explicitly.

    async def fetchall(self, sql: str, params: Params = ()) -> list[Row]:
        if self._reader is not self._conn:
            return list(await self._reader.execute_fetchall(sql, params))
        async with self._lock:  # one shared connection (in-memory database): stay out of open transactions
            return list(await self._conn.execute_fetchall(sql, params))

    async def execute(self, sql: str, params: Params = ()) -> int:
        """Run one write statement (atomic on its own); return the rows changed."""
        async with self._writer():
            cursor = await self._conn.execute(sql, params)
            return cursor.rowcount

    async def execute_bulk(self, sql: str, params: Params = ()) -> int:
        """Like execute, for a large write (image bytes): at most one waits for the writer at a time, so small
        writes in front of an acknowledgement never queue behind a pile of them."""
        async with self._bulk:
            for _ in range(BULK_DEFERRALS):
                await self._lock.acquire()
                if not self._small_waiting:
                    break
                self._lock.release()  # small writes that queued meanwhile go first
            else:
                await self._lock.acquire()  # a steady stream of small writes: go anyway, never starve
            try:
                cursor = await self._conn.execute(sql, params)
                return cursor.rowcount
            finally:
                self._lock.release()


class SqliteTransaction(Transaction):
    """The statements available inside `SqliteDatabase.transaction()`."""

    dialect = "sqlite"

    def __init__(self, conn: aiosqlite.Connection) -> None:
        self._conn = conn

    # One round trip each: the cursor of a finished write holds nothing, so it is not closed explicitly.
    async def execute(self, sql: str, params: Params = ()) -> int:
        cursor = await self._conn.execute(sql, params)
        return cursor.rowcount

    async def insert(self, sql: str, params: Params = ()) -> int:
        cursor = await self._conn.execute(sql, params)
        if cursor.lastrowid is None:
            raise RuntimeError("insert returned no row id")
        return cursor.lastrowid

    async def fetchall(self, sql: str, params: Params = ()) -> list[Row]:
        return list(await self._conn.execute_fetchall(sql, params))

    async def lock(self, *key: object) -> None:
        """Nothing to do: BEGIN IMMEDIATE already makes write transactions take turns."""

    async def executescript_in_transaction(self, script: str) -> None:
        # executescript() would COMMIT first; run the statements one by one instead.
        for statement in script.split(";"):
            if statement.strip():
                await self._conn.execute(statement)


__all__ = ["Database", "Params", "SchemaTooNew", "SqliteDatabase", "SqliteTransaction", "Transaction"]
