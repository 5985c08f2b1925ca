"""PostgreSQL through an asyncpg pool: the same interface and SQL as the SQLite database, for several processes.

Statements are written with `?` or `:name` placeholders and translated once to `$n`. Transactions run at READ
COMMITTED; what must not interleave (a capacity check and its charge) takes an advisory lock. Migrations are
tracked in `schema_version` and run under an advisory lock, so processes starting together migrate once.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import lru_cache
from pathlib import Path
from typing import Any

import asyncpg

from bot.db.base import Database, Params, Row, Transaction, lock_key, to_completion
from bot.db.migrations import MIGRATIONS
from bot.db.pg_migrations import PG_MIGRATIONS
from bot.db.upgrade import SchemaTooNew

log = logging.getLogger(__name__)

POOL_SIZE = 10
CLOSE_TIMEOUT = 2.0
_MIGRATION_LOCK = lock_key("imagebot", "migrations")
# Quoted text, `::` casts, `?` and `:name` placeholders; only the last two are rewritten.
_TOKENS = re.compile(r"'(?:[^']|'')*'|\"[^\"]*\"|::|\?|(?<![:\w]):([A-Za-z_]\w*)")


@lru_cache(maxsize=1024)
def translate(sql: str) -> tuple[str, tuple[str, ...] | None]:
    """`?`/`:name` placeholders to `$n`; returns the SQL and, for named ones, the names in `$n` order."""
    names: list[str] = []
    positional = 0

    def replace(match: re.Match[str]) -> str:
        nonlocal positional
        piece = match.group(0)
        if piece == "?":
            positional += 1
            return f"${positional}"
        name = match.group(1)
        if name is None:
            return piece
        if name not in names:
            names.append(name)
        return f"${names.index(name) + 1}"

    out = _TOKENS.sub(replace, sql)
    if names and positional:
        raise ValueError("a statement mixes ? and :name placeholders")
    return out, (tuple(names) if names else None)


def bind(sql: str, params: Params) -> tuple[str, list[Any]]:
    text, names = translate(sql)
    if isinstance(params, dict):
        if names is None:
            return text, []
        return text, [params[name] for name in names]
    return text, list(params)


def _count(status: str) -> int:
    """Rows changed, from a command tag such as 'UPDATE 3' or 'INSERT 0 1'."""
    last = status.rsplit(" ", 1)[-1]
    return int(last) if last.isdigit() else 0


class PostgresTransaction(Transaction):
    dialect = "postgresql"

    def __init__(self, conn: Any) -> None:
        self._conn = conn

    async def execute(self, sql: str, params: Params = ()) -> int:
        text, args = bind(sql, params)
        return _count(await self._conn.execute(text, *args))

    async def insert(self, sql: str, params: Params = ()) -> int:
        text, args = bind(sql, params)
        value = await self._conn.fetchval(f"{text.rstrip().rstrip(';')} RETURNING id", *args)
        if value is None:
            raise RuntimeError("insert returned no row id")
        return int(value)

    async def fetchall(self, sql: str, params: Params = ()) -> list[Row]:
        text, args = bind(sql, params)
        return list(await self._conn.fetch(text, *args))

    async def lock(self, *key: object) -> None:
        await self._conn.execute("SELECT pg_advisory_xact_lock($1)", lock_key(*key))

    async def run_script(self, script: str) -> None:
        await self._conn.execute(script)


class PostgresDatabase(Database):
    """A pool of connections to one PostgreSQL database, shared with the bot's other processes."""

    dialect = "postgresql"

    def __init__(self, pool: Any) -> None:
        self._pool = pool
        self._open_transactions = 0

    @classmethod
    async def open(cls, target: Path | str, *, pool_size: int = POOL_SIZE) -> PostgresDatabase:
        """Connect to the `postgresql://` URL `target` and migrate."""
        pool = await asyncpg.create_pool(str(target), min_size=1, max_size=pool_size, command_timeout=60)
        db = cls(pool)
        try:
            await db._migrate()
        except BaseException:
            await pool.close()
            raise
        return db

    async def close(self) -> None:
        """Close gracefully; connections still held (a task that never returned) are cut after a few seconds."""
        try:
            await asyncio.wait_for(self._pool.close(), CLOSE_TIMEOUT)
        except TimeoutError:
            self._pool.terminate()

    async def _migrate(self) -> None:
        latest = len(MIGRATIONS)
        async with self.transaction() as tx:
            await tx.lock(_MIGRATION_LOCK)
            await tx.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
            row = await tx.fetchone("SELECT MAX(version) FROM schema_version")
            current = int(row[0]) if row is not None and row[0] is not None else 0
            if current > latest:
                raise SchemaTooNew(f"database schema v{current} is newer than this bot (v{latest})")
            for version in sorted(v for v in PG_MIGRATIONS if v > current):
                assert isinstance(tx, PostgresTransaction)
                await tx.run_script(PG_MIGRATIONS[version])
                await tx.execute("INSERT INTO schema_version (version) VALUES (?)", (version,))
                log.info("database migrated to schema v%d", version)

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[Transaction]:
        conn = await self._pool.acquire()
        self._open_transactions += 1
        try:
            try:
                await to_completion(conn.execute("BEGIN"))
                yield PostgresTransaction(conn)
                await to_completion(conn.execute("COMMIT"))
            except BaseException:
                await to_completion(self._rollback(conn))
                raise
        finally:
            self._open_transactions -= 1
            await to_completion(self._pool.release(conn))

    @staticmethod
    async def _rollback(conn: Any) -> None:
        try:
            if conn.is_in_transaction():
                await conn.execute("ROLLBACK")
        except Exception:
            log.warning("rollback failed; dropping the connection", exc_info=True)
            conn.terminate()

    @property
    def in_transaction(self) -> bool:
        return self._open_transactions > 0

    async def fetchall(self, sql: str, params: Params = ()) -> list[Row]:
        text, args = bind(sql, params)
        return list(await self._pool.fetch(text, *args))

    async def execute(self, sql: str, params: Params = ()) -> int:
        text, args = bind(sql, params)
        return _count(await self._pool.execute(text, *args))

    async def execute_bulk(self, sql: str, params: Params = ()) -> int:
        return await self.execute(sql, params)

    async def fetchval(self, sql: str, params: Params = ()) -> Any:
        text, args = bind(sql, params)
        return await self._pool.fetchval(text, *args)


__all__ = ["PostgresDatabase", "PostgresTransaction", "bind", "translate"]
