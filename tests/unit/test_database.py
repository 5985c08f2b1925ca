"""The database's transactions survive cancellation at any point (a Cancel click, a shutdown)."""

from __future__ import annotations

import asyncio
from pathlib import Path

from bot.db import Database
from bot.db.migrations import MIGRATIONS
from bot.db.pg_migrations import PG_MIGRATIONS


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
