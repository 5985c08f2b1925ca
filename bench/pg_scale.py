"""Benchmark: 1 process x 1,000 concurrent jobs on SQLite vs 2 processes x 500 on PostgreSQL, same machine, one
run; then the takeover time after a SIGKILL.

    .venv/bin/python -m bench.pg_scale [--jobs 1000] [--duration 5] [--lease 10]

Each bot is the real one (`bench/bot_process.py`) against the fake Discord and the fake Hub in this process.
PostgreSQL is the test suite's embedded server. Printed per setup:
  throughput      jobs delivered per second, first command sent -> last result posted
  added latency   task ready at the fake Hub -> its result posted at the fake Discord (p50 / p95)
  ack p99         interaction sent -> acknowledged
Takeover: with 2 processes on PostgreSQL and jobs in flight, one is SIGKILLed; the time until every job it held
is held by the survivor (lease expiry + the survivor's next sweep), and until they are all delivered.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import random
import signal
import sys
import tempfile
import time
from pathlib import Path

from bench.run import pct
from bot.db import Database
from tests.fakes.discord import FakeDiscord
from tests.fakes.discord.model import FakeInteraction
from tests.fakes.hub import FakeHub, Plan
from tests.pgserver import start_server

ROOT = Path(__file__).resolve().parents[1]
MEMBERS = 500


async def start_bot(
    discord_fake: FakeDiscord, hub: FakeHub, database: dict[str, str], tmp: Path, shard: int | None, lease: float
) -> asyncio.subprocess.Process:
    env = {
        **os.environ,
        **database,
        "BENCH_DISCORD_URL": discord_fake.url,
        "BENCH_LAG_FILE": str(tmp / f"lag-{shard}.json"),
        "DISCORD_TOKEN": FakeDiscord.TOKEN,
        "MOUNTSEA_API_KEY": hub.api_key,
        "MOUNTSEA_BASE_URL": hub.url,
        "RESULT_URLS_ALLOW_PRIVATE": "true",
        "MAX_ACTIVE_JOBS": "1000",
        "QUOTA_DEFAULT_LIMIT": "unlimited",
        "MAX_RUNNING_JOBS_PER_USER": "100",
        "MAX_WAITING_JOBS_PER_USER": "1000",
        "JOB_LEASE_SECONDS": str(lease),
        "LOG_LEVEL": "WARNING",
        "PYTHONPATH": str(ROOT),
    }
    if shard is not None:
        env |= {"SHARD_COUNT": "2", "SHARD_IDS": str(shard)}
    return await asyncio.create_subprocess_exec(sys.executable, "-m", "bench.bot_process", cwd=tmp, env=env)


async def stop(processes: list[asyncio.subprocess.Process]) -> None:
    for proc in processes:
        if proc.returncode is None:
            proc.send_signal(signal.SIGTERM)
    for proc in processes:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(proc.wait(), 30)
        if proc.returncode is None:
            proc.kill()


async def fire(discord_fake: FakeDiscord, jobs: int, tag: str) -> tuple[set[str], list[FakeInteraction]]:
    prompts = [f"{tag} job {i}" for i in range(jobs)]
    sent = await asyncio.gather(
        *(
            discord_fake.slash(
                "imagine",
                {"prompt": prompt, "model": "nano-banana-2"},
                user=f"member{i % MEMBERS}",
                channel_id=discord_fake.channel_ids[i % len(discord_fake.channel_ids)],
            )
            for i, prompt in enumerate(prompts)
        )
    )
    return set(prompts), list(sent)


async def delivered_times(discord_fake: FakeDiscord, prompts: set[str], timeout: float) -> dict[str, float]:
    delivered: dict[str, float] = {}
    deadline = time.time() + timeout
    while len(delivered) < len(prompts) and time.time() < deadline:
        await asyncio.sleep(0.1)
        for event in list(discord_fake.events):
            if event.kind == "message_create" and event.data["attachments"]:
                prompt = event.data["embeds"][0]["description"]
                if prompt in prompts:
                    delivered.setdefault(prompt, event.at)
    return delivered


async def scenario(name: str, database: dict[str, str], shards: list[int | None], args: argparse.Namespace) -> None:
    rng = random.Random(7)
    low, high = args.duration * 0.75, args.duration * 1.25
    async with FakeDiscord(channels=50, members=MEMBERS) as discord_fake, FakeHub() as hub:
        discord_fake.spread_shards = True
        hub.default_plan = lambda: Plan(duration=rng.uniform(low, high))
        from tests.fakes.discord import point_discord_py_at  # noqa: PLC0415

        undo = point_discord_py_at(discord_fake.url)
        with tempfile.TemporaryDirectory() as folder:
            tmp = Path(folder)
            procs = [await start_bot(discord_fake, hub, database, tmp, s, args.lease) for s in shards]
            try:
                async with asyncio.timeout(60):
                    while not discord_fake.commands or discord_fake.identifies < len(shards):
                        await asyncio.sleep(0.05)
                await asyncio.sleep(1.0)
                started = time.time()
                prompts, sent = await fire(discord_fake, args.jobs, name)
                delivered = await delivered_times(discord_fake, prompts, 300)
                acks = [i.acked_at - i.sent_at for i in sent if i.acked_at is not None]
                tasks = [t for t in hub.tasks.values() if t.input["prompt"] in delivered]
                added = [delivered[t.input["prompt"]] - t.ready_at for t in tasks]
                wall = max(delivered.values()) - started if delivered else float("nan")
                print(
                    f"{name:<28} | {len(delivered):>5}/{args.jobs} | {len(delivered) / wall:7.1f} jobs/s "
                    f"| added p50 {pct(added, 0.5):5.2f} s p95 {pct(added, 0.95):5.2f} s "
                    f"| ack p99 {pct(acks, 0.99) * 1000:5.0f} ms",
                    flush=True,
                )
            finally:
                await stop(procs)
                undo()


async def takeover(url: str, args: argparse.Namespace) -> None:
    async with FakeDiscord(channels=50, members=MEMBERS) as discord_fake, FakeHub() as hub:
        discord_fake.spread_shards = True
        hub.default_plan = lambda: Plan(duration=args.lease * 1.5)
        from tests.fakes.discord import point_discord_py_at  # noqa: PLC0415

        undo = point_discord_py_at(discord_fake.url)
        db = await Database.open(url)
        with tempfile.TemporaryDirectory() as folder:
            tmp = Path(folder)
            procs = [await start_bot(discord_fake, hub, {"DATABASE_URL": url}, tmp, s, args.lease) for s in (0, 1)]
            try:
                async with asyncio.timeout(60):
                    while not discord_fake.commands or discord_fake.identifies < 2:
                        await asyncio.sleep(0.05)
                await asyncio.sleep(1.0)
                prompts, _ = await fire(discord_fake, 100, "takeover")
                await asyncio.sleep(1.0)  # all submitted and polling
                owners = await db.fetchall("SELECT DISTINCT lease_owner FROM jobs WHERE closed_at IS NULL")
                held = await db.fetchall(
                    "SELECT id, lease_owner FROM jobs WHERE closed_at IS NULL AND lease_owner IS NOT NULL"
                )
                victim_owner = held[0]["lease_owner"]
                victim_pid = int(str(victim_owner).split(":")[1])
                orphans = {int(r["id"]) for r in held if r["lease_owner"] == victim_owner}
                victim = next(p for p in procs if p.pid == victim_pid)
                killed = time.time()
                victim.send_signal(signal.SIGKILL)
                await victim.wait()
                while True:
                    rows = await db.fetchall("SELECT id, lease_owner, closed_at FROM jobs")
                    if all(
                        r["lease_owner"] not in (None, victim_owner) or r["closed_at"]
                        for r in rows
                        if int(r["id"]) in orphans
                    ):
                        break
                    await asyncio.sleep(0.05)
                taken = time.time() - killed
                delivered = await delivered_times(discord_fake, prompts, 120)
                done = max(delivered.values()) - killed if delivered else float("nan")
                print(
                    f"takeover after SIGKILL (lease {args.lease:.0f} s; the killed one of {len(owners)} "
                    f"held {len(orphans)} jobs): "
                    f"all held by the survivor after {taken:.1f} s; all {len(delivered)}/100 delivered "
                    f"{done:.1f} s after the kill"
                )
            finally:
                await db.close()
                await stop(procs)
                undo()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--jobs", type=int, default=1000)
    parser.add_argument("--duration", type=float, default=5.0, help="mean provider task duration (s)")
    parser.add_argument("--lease", type=float, default=10.0, help="JOB_LEASE_SECONDS for the bots")
    args = parser.parse_args()
    server = start_server()
    try:
        with tempfile.TemporaryDirectory() as folder:
            print(f"{args.jobs} concurrent jobs, tasks {args.duration:.0f} s +-25%, {os.cpu_count()} cores")
            await scenario("sqlite, 1 process", {"DATABASE_PATH": str(Path(folder) / "b.db")}, [None], args)
        await scenario("postgresql, 2 processes", {"DATABASE_URL": await server.fresh_database()}, [0, 1], args)
        await takeover(await server.fresh_database(), args)
    finally:
        server.stop()


if __name__ == "__main__":
    asyncio.run(main())
