"""The bot's SQLite database: WAL, busy timeout, numbered migrations, transactions cancellation cannot leave open.

Writes run on the event loop's own thread, one at a time, through a plain sqlite3 connection. A small write in WAL
mode without fsync (synchronous=NORMAL) takes tens of microseconds, while a round trip to a database thread waits
for the loop and the GIL: under load (K = 500 jobs at once) writes queued for seconds behind one another, each
acknowledgement and each posted result waiting its turn. Large writes (image bytes) still go to a thread, and so do
WAL checkpoints (copying pages and two fsyncs): automatic checkpoints, which would run inside a commit on the loop, are
off, and a third connection checkpoints every second. Reads use a second connection on its own thread (aiosqlite), so
a button's lookup never waits behind a large write. One process per SQLite file (PostgreSQL is for several): a write
lock held elsewhere would make the loop wait up to the busy timeout.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import cast

import aiosqlite

from bot.db.base import Database, Params, Row, Transaction, to_completion
from bot.db.migrations import MIGRATIONS
from bot.db.upgrade import SchemaTooNew, backup_before_migration

log = logging.getLogger(__name__)

BULK_DEFERRALS = 20  # times a bulk write lets small writes that queued behind it go first
BUSY_TIMEOUT_MS = 5000
CHECKPOINT_SECONDS = 1.0


class SqliteDatabase(Database):
    """Owns the connections. Writes go through `transaction()` or `execute()`, one at a time."""

    dialect = "sqlite"

    def __init__(self, writer: sqlite3.Connection, reader: aiosqlite.Connection | None = None) -> None:
        self._write = writer
        self._reader = reader
        self._checkpoints: aiosqlite.Connection | None = None
        self._checkpointer: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()
        self._bulk = asyncio.Lock()
        self._small_waiting = 0  # small writes waiting for the writer: a bulk write lets them all go first

    @classmethod
    async def open(cls, path: Path | str) -> SqliteDatabase:
        """Open (creating the folder and file), configure and migrate the database."""
        memory = str(path) == ":memory:"
        if not memory:
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        # check_same_thread off: bulk writes and the backup run on a worker thread, never beside another use.
        writer = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False)
        writer.row_factory = sqlite3.Row
        db = cls(writer)
        try:
            writer.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            writer.execute("PRAGMA foreign_keys = ON")
            writer.execute("PRAGMA journal_mode = WAL")
            writer.execute("PRAGMA synchronous = NORMAL")
            await db._migrate()
            if not memory:
                db._reader = await _connect(path)
                writer.execute("PRAGMA wal_autocheckpoint = 0")
                db._checkpoints = await _connect(path)
                db._checkpointer = asyncio.create_task(_checkpoint_forever(db._checkpoints), name="sqlite-checkpoint")
        except BaseException:
            await db.close()
            raise
        return db

    async def close(self) -> None:
        if self._checkpointer is not None:
            self._checkpointer.cancel()
            await asyncio.gather(self._checkpointer, return_exceptions=True)
        if self._checkpoints is not None:
            await self._checkpoints.close()
        async with self._lock:
            if self._reader is not None:
                await self._reader.close()
            self._write.close()

    async def _migrate(self) -> None:
        row = self._write.execute("PRAGMA user_version").fetchone()
        current = int(row[0]) if row else 0
        if current > len(MIGRATIONS):
            raise SchemaTooNew(f"database schema v{current} is newer than this bot (v{len(MIGRATIONS)})")
        if current == len(MIGRATIONS):
            return
        await backup_before_migration(self._write, current, len(MIGRATIONS))
        # Some migrations rebuild a table; foreign keys can only be switched off outside a transaction.
        self._write.execute("PRAGMA foreign_keys = OFF")
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
            self._write.execute("PRAGMA foreign_keys = ON")

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
            self._write.execute("BEGIN IMMEDIATE")
            try:
                yield SqliteTransaction(self._write)
                self._write.execute("COMMIT")
            except BaseException:
                self._rollback()
                raise

    def _rollback(self) -> None:
        if self._write.in_transaction:  # SQLite may have rolled back already (a full disk, say)
            self._write.execute("ROLLBACK")

    @property
    def in_transaction(self) -> bool:
        """Whether the write connection is inside a transaction (never true between calls)."""
        return self._write.in_transaction

    async def fetchall(self, sql: str, params: Params = ()) -> list[Row]:
        if self._reader is not None:
            return list(await self._reader.execute_fetchall(sql, _bind(params)))
        async with self._lock:  # one shared connection (in-memory database): stay out of open transactions
            return self._write.execute(sql, _bind(params)).fetchall()

    async def execute(self, sql: str, params: Params = ()) -> int:
        """Run one write statement (atomic on its own); return the rows changed."""
        async with self._writer():
            return self._write.execute(sql, _bind(params)).rowcount

    async def execute_bulk(self, sql: str, params: Params = ()) -> int:
        """Like execute, for a large write (image bytes), on a worker thread: at most one waits for the writer at a
        time, so small writes in front of an acknowledgement never queue behind a pile of them."""
        async with self._bulk:
            for _ in range(BULK_DEFERRALS):
                await self._lock.acquire()
                if not self._small_waiting:
                    break
                self._lock.release()  # small writes that queued meanwhile go first
            else:
                await self._lock.acquire()  # a steady stream of small writes: go anyway, never starve
            try:
                # Run to its end even if the caller is cancelled: the lock must not pass on while the thread writes.
                cursor = await to_completion(asyncio.to_thread(self._write.execute, sql, _bind(params)))
                return cursor.rowcount
            finally:
                self._lock.release()


async def _connect(path: Path | str) -> aiosqlite.Connection:
    conn = await aiosqlite.connect(str(path), isolation_level=None)
    conn.row_factory = sqlite3.Row
    await conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
    return conn


async def _checkpoint_forever(conn: aiosqlite.Connection) -> None:
    """Move committed pages from the WAL into the database file, on a connection (and thread) of its own. PASSIVE
    never waits for readers or writers: what it cannot copy now, it copies next time."""
    while True:
        await asyncio.sleep(CHECKPOINT_SECONDS)
        try:
            await conn.execute("PRAGMA wal_checkpoint(PASSIVE)")
        except sqlite3.Error as exc:
            log.warning("WAL checkpoint failed (tried again in %.0f s): %s", CHECKPOINT_SECONDS, exc)


def _bind(params: Params) -> tuple[object, ...] | dict[str, object]:
    return params if isinstance(params, dict) else tuple(params)


class SqliteTransaction(Transaction):
    """The statements available inside `SqliteDatabase.transaction()`."""

    dialect = "sqlite"

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn

    async def execute(self, sql: str, params: Params = ()) -> int:
        return self._conn.execute(sql, _bind(params)).rowcount

    async def insert(self, sql: str, params: Params = ()) -> int:
        row_id = self._conn.execute(sql, _bind(params)).lastrowid
        if row_id is None:
            raise RuntimeError("insert returned no row id")
        return row_id

    async def fetchall(self, sql: str, params: Params = ()) -> list[Row]:
        return self._conn.execute(sql, _bind(params)).fetchall()

    async def lock(self, *key: object) -> None:
        """Nothing to do: BEGIN IMMEDIATE already makes write transactions take turns."""

    async def executescript_in_transaction(self, script: str) -> None:
        # executescript() would COMMIT first; run the statements one by one instead.
        for statement in script.split(";"):
            if statement.strip():
                self._conn.execute(statement)


__all__ = ["Database", "Params", "SchemaTooNew", "SqliteDatabase", "SqliteTransaction", "Transaction"]
