"""Two real bot processes (`python -m bot`, as bench/bot_process.py runs it) on one PostgreSQL database and the
fake Discord, one shard each; 50 jobs in flight; the process that took them is SIGKILLed mid-way. The other
takes the jobs over once their leases expire: every job is delivered exactly once (or failed and refunded),
no provider task is created twice, and the ledger balances."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
from collections import Counter
from pathlib import Path

import pytest

from bot.db import Database
from tests.fakes.discord import FakeDiscord
from tests.fakes.hub import FakeHub, Plan
from tests.harness import fake_discord

ROOT = Path(__file__).resolve().parents[2]
JOBS = 50
USERS = ["alice", "bob", "admin"] + [f"member{i}" for i in range(7)]


async def start_process(
    discord_fake: FakeDiscord, hub: FakeHub, url: str, shard: int, tmp: Path
) -> asyncio.subprocess.Process:
    env = {
        **os.environ,
        "BENCH_DISCORD_URL": discord_fake.url,
        "BENCH_LAG_FILE": str(tmp / f"lag{shard}.json"),
        "DISCORD_TOKEN": FakeDiscord.TOKEN,
        "MOUNTSEA_API_KEY": hub.api_key,
        "MOUNTSEA_BASE_URL": hub.url,
        "RESULT_URLS_ALLOW_PRIVATE": "true",
        "DATABASE_URL": url,
        "SHARD_COUNT": "2",
        "SHARD_IDS": str(shard),
        "JOB_LEASE_SECONDS": "2",
        "QUOTA_DEFAULT_LIMIT": "unlimited",
        "MAX_RUNNING_JOBS_PER_USER": "100",
        "MAX_WAITING_JOBS_PER_USER": "1000",
        "POLL_MIN_INTERVAL_SECONDS": "0.1",
        "POLL_MAX_INTERVAL_SECONDS": "0.5",
        "STATUS_EDIT_MIN_INTERVAL_SECONDS": "0",
        "LOG_LEVEL": "WARNING",
        "PYTHONPATH": str(ROOT),
    }
    return await asyncio.create_subprocess_exec(sys.executable, "-m", "bench.bot_process", cwd=tmp, env=env)


async def count(db: Database, sql: str) -> int:
    row = await db.fetchone(sql)
    return int(row[0]) if row is not None else 0


@pytest.mark.dialects("postgresql")
async def test_a_process_killed_mid_way_loses_and_repeats_nothing(
    db_target: str | Path, hub: FakeHub, tmp_path: Path
) -> None:
    url = str(db_target)
    hub.default_plan = lambda: Plan(duration=3.0)
    async with fake_discord(members=7) as discord_fake:
        owner = (discord_fake.guild_id >> 22) % 2  # the shard that receives the guild's interactions
        processes = [await start_process(discord_fake, hub, url, shard, tmp_path) for shard in (0, 1)]
        db = await Database.open(url)
        try:
            async with asyncio.timeout(60):
                while not discord_fake.commands or discord_fake.identifies < 2:
                    await asyncio.sleep(0.05)
                await asyncio.sleep(1.0)
            await asyncio.gather(
                *(discord_fake.slash("imagine", {"prompt": f"p{i}"}, user=USERS[i % len(USERS)]) for i in range(JOBS))
            )
            async with asyncio.timeout(30):
                while await count(db, "SELECT COUNT(*) FROM jobs WHERE state IN ('submitted', 'running')") < JOBS // 2:
                    await asyncio.sleep(0.05)
            processes[owner].send_signal(signal.SIGKILL)  # mid-way: jobs submitted, polling, some delivering
            await processes[owner].wait()
            async with asyncio.timeout(90):
                while await count(db, "SELECT COUNT(*) FROM jobs WHERE closed_at IS NULL") or (
                    await count(db, "SELECT COUNT(*) FROM jobs") < JOBS
                ):
                    await asyncio.sleep(0.2)
            jobs = await db.fetchall("SELECT id, state, result_message_id, provider_task_id, error_code FROM jobs")
            assert len(jobs) == JOBS
            results = [e.data for e in discord_fake.events if e.kind == "message_create" and e.data.get("attachments")]
            posted = Counter(int(m["id"]) for m in results)
            delivered = [j for j in jobs if j["state"] == "succeeded"]
            assert len(results) == len(delivered)  # no result posted twice, none posted for a failed job
            assert {j["result_message_id"] for j in delivered} == set(posted)
            assert all(j["state"] in ("succeeded", "failed") for j in jobs)
            tasks = [j["provider_task_id"] for j in jobs if j["provider_task_id"] is not None]
            # No task twice: every job has at most one, and the Hub made no more tasks than jobs (a submit whose
            # body was cut off by the kill reaches the Hub as a call but creates nothing).
            prompts = Counter(task.input.get("prompt") for task in hub.tasks.values())
            assert len(tasks) == len(set(tasks)) and len(hub.tasks) <= JOBS and max(prompts.values()) == 1
            # A submit the killed process had started (maybe sent) but not recorded the answer of is never resent
            # (the Hub has no idempotency key): that job fails, refunded; only such tasks lack a recorded id.
            unknown = [j for j in jobs if j["error_code"] == "submit_unknown"]
            assert len(hub.tasks) - len(tasks) <= len(unknown)
            assert len(delivered) + len(unknown) == JOBS  # every other job was taken over and delivered
            charges = await count(db, "SELECT COUNT(*) FROM quota_ledger WHERE kind = 'charge'")
            refunds = await count(db, "SELECT COUNT(*) FROM quota_ledger WHERE kind = 'refund'")
            assert charges == JOBS and refunds == JOBS - len(delivered)  # the ledger balances
        finally:
            await db.close()
            for proc in processes:
                if proc.returncode is None:
                    proc.send_signal(signal.SIGTERM)
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(proc.wait(), 20)
                if proc.returncode is None:
                    proc.kill()
