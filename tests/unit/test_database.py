"""The write paths of Database: transactions that cancellation cannot leave open, a transaction in one round trip,
and bulk writes that let small writes go first."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.db import Database, database
from bot.db.database import SqliteDatabase
from bot.db.migrations import MIGRATIONS
from bot.db.pg_migrations import PG_MIGRATIONS


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[SqliteDatabase]:
    database = await SqliteDatabase.open(tmp_path / "bot.db")
    await database.execute("CREATE TABLE t (id INTEGER PRIMARY KEY AUTOINCREMENT, what TEXT NOT NULL)")
    yield database
    await database.close()


async def _whats(db: SqliteDatabase) -> list[str]:
    return [str(r[0]) for r in await db.fetchall("SELECT what FROM t ORDER BY id")]


async def test_a_transaction_commits_or_rolls_back_as_a_whole(db: SqliteDatabase) -> None:
    async with db.transaction() as tx:
        await tx.execute("INSERT INTO t (what) VALUES ('a')")
        assert await tx.insert("INSERT INTO t (what) VALUES ('b')") == 2
    with pytest.raises(LookupError):
        async with db.transaction() as tx:
            await tx.execute("INSERT INTO t (what) VALUES ('c')")
            raise LookupError("refused")
    assert await _whats(db) == ["a", "b"]
    assert not db.in_transaction


async def test_a_failed_commit_leaves_no_transaction_open(db: SqliteDatabase) -> None:
    await db.execute("CREATE TABLE parent (id INTEGER PRIMARY KEY)")
    await db.execute("CREATE TABLE child (pid INTEGER REFERENCES parent (id) DEFERRABLE INITIALLY DEFERRED)")

    with pytest.raises(sqlite3.IntegrityError):
        async with db.transaction() as tx:
            await tx.execute("INSERT INTO child (pid) VALUES (43)")  # checked only at COMMIT
    assert not db.in_transaction
    await db.execute("INSERT INTO t (what) VALUES ('after')")
    assert await _whats(db) == ["after"]
    assert await db.fetchall("SELECT * FROM child") == []


async def test_a_write_cancelled_while_it_waits_never_runs(db: SqliteDatabase) -> None:
    async with db.transaction():
        waiting = asyncio.create_task(db.execute("INSERT INTO t (what) VALUES ('x')"))
        after = asyncio.create_task(db.execute("INSERT INTO t (what) VALUES ('y')"))
        await asyncio.sleep(0.01)
        waiting.cancel()
    await after
    assert waiting.cancelled()
    assert await _whats(db) == ["y"]


async def test_small_writes_queued_behind_a_bulk_write_go_first(db: SqliteDatabase) -> None:
    async with db.transaction() as tx:  # holds the writer while both queue up
        bulk = asyncio.create_task(db.execute_bulk("INSERT INTO t (what) VALUES ('bulk')"))
        await asyncio.sleep(0.01)
        small = asyncio.create_task(db.execute("INSERT INTO t (what) VALUES ('small')"))
        await asyncio.sleep(0.01)
        await tx.execute("INSERT INTO t (what) VALUES ('holder')")
    await asyncio.gather(bulk, small)
    assert await _whats(db) == ["holder", "small", "bulk"]


async def test_a_cancelled_transaction_is_never_left_open(db_target: str | Path) -> None:
    db = await Database.open(db_target)
    outcomes: set[str] = set()
    try:
        for steps in range(200):
            key = f"k{steps}"

            async def write(key: str = key) -> None:
                async with db.transaction() as tx:
                    await tx.execute("INSERT INTO meta (key, value) VALUES (?, 'half')", (key,))
                    await tx.execute("UPDATE meta SET value = 'whole' WHERE key = ?", (key,))

            task = asyncio.create_task(write())
            for _ in range(steps):  # let it run to a different await point each time
                await asyncio.sleep(0)
            task.cancel()
            result = (await asyncio.gather(task, return_exceptions=True))[0]
            assert not db.in_transaction, f"left inside a transaction after {steps} steps"
            row = await db.fetchone("SELECT value FROM meta WHERE key = ?", (key,))
            assert row is None or row[0] == "whole"  # all or nothing
            outcomes.add("committed" if row is not None else "rolled back")
            await db.execute("INSERT INTO meta (key, value) VALUES (?, 'later')", (f"after-{key}",))
            if not isinstance(result, asyncio.CancelledError) and row is not None:
                break  # it ran to the end before the cancellation landed: every point before was covered
        assert outcomes == {"committed", "rolled back"}
    finally:
        await db.close()


def test_both_dialects_migrate_to_the_same_schema_version() -> None:
    assert max(PG_MIGRATIONS) == len(MIGRATIONS)


async def test_rows_behave_alike_and_placeholders_translate(db_target: str | Path) -> None:
    db = await Database.open(db_target)
    try:
        await db.execute("INSERT INTO meta (key, value) VALUES (:k, :v)", {"k": "a", "v": "it's ? :not"})
        row = await db.fetchone("SELECT key, value FROM meta WHERE key = ? AND value LIKE '%?%'", ("a",))
        assert (
            row is not None and row[1] == row["value"] == "it's ? :not" and dict(row) == {"key": "a", "value": row[1]}
        )
        async with db.transaction() as tx:
            await tx.lock("user", 1)
            first = await tx.insert(
                "INSERT INTO quota_audit (guild_id, actor_id, action, target, created_at) VALUES (?, ?, 'a', 't', ?)",
                (2**62, 1, 1.5),
            )
        audit = await db.fetchone("SELECT guild_id FROM quota_audit WHERE id = ?", (first,))
        assert audit is not None and audit[0] == 2**62  # Discord ids need 64 bits
    finally:
        await db.close()


async def test_the_write_ahead_log_is_checkpointed_off_the_loop(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Automatic checkpoints are off on the write connection (they would run inside commits on the loop); without
    # the background checkpoint the log would grow by every page ever written.
    monkeypatch.setattr(database, "CHECKPOINT_SECONDS", 0.02)
    db = await SqliteDatabase.open(tmp_path / "wal.db")
    try:
        await db.execute("CREATE TABLE blobs (data BLOB)")
        blob = b"x" * 100_000
        for _ in range(5):  # 5 rounds of 2 MB
            for _ in range(20):
                await db.execute("INSERT INTO blobs (data) VALUES (?)", (blob,))
            await asyncio.sleep(0.2)
        wal = tmp_path / "wal.db-wal"
        assert wal.stat().st_size < 5_000_000  # reused after each checkpoint, not 10 MB and growing
        rows = await db.fetchall("SELECT COUNT(*) FROM blobs")
        assert rows[0][0] == 100
    finally:
        await db.close()
