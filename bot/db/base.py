"""The one database interface the bot codes against; SQLite (`bot.db.database`) and PostgreSQL (`bot.db.postgres`)
implement it.

SQL is written once, in the subset both dialects accept: `?` or `:name` placeholders (translated to `$n` for
PostgreSQL), `INSERT … ON CONFLICT DO NOTHING`, `SUM(CASE WHEN …)`, no aliases in HAVING. Only migrations,
`FOR UPDATE SKIP LOCKED` claims and advisory locks differ, and each dialect says which it is in `dialect`.
"""

from __future__ import annotations

import asyncio
import zlib
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Iterable, Iterator
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import Any, Literal, Protocol, TypeVar

Params = Iterable[Any] | dict[str, Any]
Dialect = Literal["sqlite", "postgresql"]
T = TypeVar("T")


class Row(Protocol):
    """A result row: index and key access, `keys()`, and `dict(row)` (sqlite3.Row and asyncpg.Record alike)."""

    def __getitem__(self, key: Any, /) -> Any: ...
    def keys(self) -> Any: ...
    def __len__(self) -> int: ...
    def __iter__(self) -> Iterator[Any]: ...


async def to_completion(step: Awaitable[T]) -> T:
    """Run a step to its end even if the caller is cancelled meanwhile, then pass the cancellation on.

    Used for BEGIN, COMMIT and ROLLBACK: a cancellation landing there must not leave the connection inside a
    transaction (every later write would fail or be lost).
    """
    task = asyncio.ensure_future(step)
    cancelled = False
    while True:
        try:
            result = await asyncio.shield(task)
            break
        except asyncio.CancelledError:
            if task.done():
                result = task.result()
                cancelled = True
                break
            cancelled = True
    if cancelled:
        raise asyncio.CancelledError
    return result


def lock_key(*parts: object) -> int:
    """A stable signed 64-bit key for an advisory lock (the same in every process)."""
    text = ":".join(str(p) for p in parts).encode()
    high, low = zlib.crc32(text), zlib.adler32(text)
    value = (high << 32) | low
    return value - (1 << 64) if value >= (1 << 63) else value


class Transaction(ABC):
    """The statements available inside `Database.transaction()`."""

    dialect: Dialect

    @abstractmethod
    async def execute(self, sql: str, params: Params = ()) -> int:
        """Run one statement; return the rows changed."""

    @abstractmethod
    async def insert(self, sql: str, params: Params = ()) -> int:
        """Run an INSERT into a table with an `id` column; return the new row's id."""

    @abstractmethod
    async def fetchall(self, sql: str, params: Params = ()) -> list[Row]: ...

    async def fetchone(self, sql: str, params: Params = ()) -> Row | None:
        rows = await self.fetchall(sql, params)
        return rows[0] if rows else None

    @abstractmethod
    async def lock(self, *key: object) -> None:
        """Hold a lock on `key` until the transaction ends, so read-check-write sequences on it never interleave
        (a no-op on SQLite, whose write transactions are already one at a time)."""


class Database(ABC):
    """Owns the connections. Writes go through `transaction()` or `execute()`."""

    dialect: Dialect

    @classmethod
    async def open(cls, target: Path | str) -> Database:
        """Open and migrate the database at `target`: a `postgresql://` URL or a SQLite file path."""
        if is_postgres_url(target):
            from bot.db.postgres import PostgresDatabase  # noqa: PLC0415 - asyncpg only when used

            return await PostgresDatabase.open(str(target))
        from bot.db.database import SqliteDatabase  # noqa: PLC0415 - avoid an import cycle

        return await SqliteDatabase.open(target)

    @abstractmethod
    async def close(self) -> None: ...

    @abstractmethod
    def transaction(self) -> AbstractAsyncContextManager[Transaction]:
        """BEGIN … COMMIT, rolled back on any error or cancellation, never left open."""

    @property
    @abstractmethod
    def in_transaction(self) -> bool:
        """Whether a write connection is inside a transaction (never true between calls)."""

    @abstractmethod
    async def fetchall(self, sql: str, params: Params = ()) -> list[Row]: ...

    async def fetchone(self, sql: str, params: Params = ()) -> Row | None:
        rows = await self.fetchall(sql, params)
        return rows[0] if rows else None

    @abstractmethod
    async def execute(self, sql: str, params: Params = ()) -> int:
        """Run one write statement (atomic on its own); return the rows changed."""

    @abstractmethod
    async def execute_bulk(self, sql: str, params: Params = ()) -> int:
        """Like execute, for a large write (image bytes), kept out of the way of small writes."""


def is_postgres_url(target: Path | str) -> bool:
    return isinstance(target, str) and target.startswith(("postgresql://", "postgres://"))


__all__ = ["Database", "Dialect", "Params", "Row", "Transaction", "is_postgres_url", "lock_key", "to_completion"]
