"""Copy a whole database to another one, e.g. an existing SQLite file into a new PostgreSQL database:

    python -m bot.db.copy --from data/bot.db --to postgresql://imagebot:secret@db/imagebot

Stop the bot first. Both ends are opened (and so migrated) by the bot's own code; the target must be empty.
Rows keep their ids, and PostgreSQL's id sequences are moved past them.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

from bot.db.base import Database, is_postgres_url
from bot.db.pg_migrations import TABLES

BATCH = 500
_WITH_IDS = ("jobs", "quota_ledger", "quota_audit")


async def copy_database(source: Database, target: Database) -> dict[str, int]:
    """Copy every row of every table; returns the rows copied per table. Refuses a target that has jobs."""
    existing = await target.fetchone("SELECT COUNT(*) FROM jobs")
    if existing is not None and int(existing[0]):
        raise ValueError("the target database already has jobs; copy into an empty database")
    counts: dict[str, int] = {}
    async with target.transaction() as tx:
        for table in TABLES:
            rows = await source.fetchall(f"SELECT * FROM {table}")
            counts[table] = len(rows)
            if not rows:
                continue
            columns = list(rows[0].keys())
            placeholders = ", ".join("?" for _ in columns)
            sql = f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({placeholders})"
            if table == "meta":
                sql += " ON CONFLICT (key) DO UPDATE SET value = excluded.value"
            for row in rows:
                await tx.execute(sql, tuple(row[c] for c in columns))
        if target.dialect == "postgresql":
            for table in _WITH_IDS:
                await tx.execute(
                    f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                    f"GREATEST((SELECT COALESCE(MAX(id), 0) FROM {table}), 1))"
                )
    return counts


async def run(source_target: str, dest_target: str) -> dict[str, int]:
    source = await Database.open(_target(source_target))
    try:
        dest = await Database.open(_target(dest_target))
        try:
            return await copy_database(source, dest)
        finally:
            await dest.close()
    finally:
        await source.close()


def _target(text: str) -> str | Path:
    return text if is_postgres_url(text) else Path(text)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bot.db.copy", description="Copy the bot's database.")
    parser.add_argument("--from", dest="source", required=True, help="SQLite path or postgresql:// URL")
    parser.add_argument("--to", dest="dest", required=True, help="SQLite path or postgresql:// URL (empty)")
    args = parser.parse_args(argv)
    try:
        counts = asyncio.run(run(args.source, args.dest))
    except (ValueError, OSError) as exc:
        print(f"copy failed: {exc}", file=sys.stderr)
        return 1
    print(", ".join(f"{table}: {n}" for table, n in counts.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
