"""`python -m bot.db.copy` moves an existing SQLite database into PostgreSQL, rows, ids and all."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from bot.db import Database
from bot.jobs.store import JobStore
from tests.pgserver import PgServer
from tests.unit.test_claims import queue_jobs


async def test_the_copy_command_moves_a_sqlite_database_into_postgresql(tmp_path: Path, pg_server: PgServer) -> None:
    path = tmp_path / "bot.db"
    sqlite = await Database.open(path)
    ids = await queue_jobs(sqlite, 30)
    await sqlite.execute("INSERT INTO meta (key, value) VALUES ('commands_hash', 'abc')")
    async with sqlite.transaction() as tx:
        await tx.insert(
            "INSERT INTO quota_ledger (guild_id, user_id, job_id, kind, period_start, period_credits, bonus_credits,"
            " created_at) VALUES (10, 1, ?, 'charge', 1700000000, 2, 0, 1700000000)",
            (ids[3],),
        )
        await tx.execute(
            "INSERT INTO job_inputs (job_id, position, role, filename, content_type, data) VALUES (?, 0, 'image',"
            " 'a.png', 'image/png', ?)",
            (ids[0], b"\x89PNG bytes"),
        )
    before = [dict(r) for r in await sqlite.fetchall("SELECT * FROM jobs ORDER BY id")]
    await sqlite.close()

    url = await pg_server.fresh_database()
    done = subprocess.run(
        [sys.executable, "-m", "bot.db.copy", "--from", str(path), "--to", url],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "jobs: 30" in done.stdout and "quota_ledger: 1" in done.stdout

    pg = await Database.open(url)
    try:
        after = [dict(r) for r in await pg.fetchall("SELECT * FROM jobs ORDER BY id")]
        assert after == before  # the same rows, the same values, the same ids
        ledger = await pg.fetchone("SELECT job_id, period_credits FROM quota_ledger")
        assert ledger is not None and (ledger["job_id"], ledger[1]) == (ids[3], 2)
        assert await JobStore(pg).inputs(ids[0]) == [(await JobStore(pg).inputs(ids[0]))[0]]
        assert (await JobStore(pg).inputs(ids[0]))[0].data == b"\x89PNG bytes"
        meta = await pg.fetchone("SELECT value FROM meta WHERE key = 'commands_hash'")
        assert meta is not None and meta[0] == "abc"
        new = await queue_jobs(pg, 1)
        assert new[0] > max(ids)  # new rows continue after the copied ids
    finally:
        await pg.close()

    again = subprocess.run(
        [sys.executable, "-m", "bot.db.copy", "--from", str(path), "--to", url],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert again.returncode == 1 and "already has jobs" in again.stderr  # never mixes two databases
