"""Benchmark: memory per posted result, with the buttons sent as components only (what the bot does) versus a
`View` registered per message (discord.py's default, which keeps every view for the life of the process).

    .venv/bin/python -m bench.view_memory [--results 10000]

The real bot (its DiscordPublisher) posts N results to the fake Discord; the bot's heap is measured with
tracemalloc before and after, and discord.py's view store is counted.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import tempfile
import time
import tracemalloc
from pathlib import Path
from unittest import mock

from bot import publisher as publisher_module
from bot.jobs.models import Job, JobState
from bot.media import OutputImage
from bot.publisher import DiscordPublisher
from tests.fakes.discord import FakeDiscord
from tests.fakes.hub import FakeHub
from tests.fakes.images import png
from tests.harness import fake_discord, make_settings, running_bot


def job(job_id: int, channel_id: int, user_id: int) -> Job:
    now = time.time()
    return Job(
        id=job_id, kind="generate", state=JobState.SUCCEEDED, provider="hub", model="nano-banana-2",
        params={"prompt": "p", "resolution": "1K"}, prompt="a lighthouse at dusk", duration_key="k", user_id=user_id,
        guild_id=None, channel_id=channel_id, upload_limit=10 * 1024 * 1024, status_message_id=None,
        provider_task_id="t", submit_started_at=now, submitted_at=now, deadline_at=now + 600, finished_at=now,
        duration_ms=1000, result_urls=(), error_code=None, error_message=None, delivery_started_at=now,
        delivered_at=None, result_message_id=None, delivery_error=None, created_at=now, cost=1,
        idempotency_key=f"{job_id:032x}",
    )  # fmt: skip


async def post_many(publisher: DiscordPublisher, fake: FakeDiscord, count: int, start: int) -> None:
    image = [OutputImage(png(), "image.png", "image/png", 64, 64, compressed=False)]
    channel = fake.channel_ids[0]
    user = int(fake.users["alice"]["id"])
    for batch in range(0, count, 50):
        await asyncio.gather(
            *(publisher.post_result(job(start + i, channel, user), image) for i in range(batch, min(count, batch + 50)))
        )


def bot_heap() -> int:
    """Live heap bytes, leaving out what the fake Discord (same process) allocated to record what it received."""
    snapshot = tracemalloc.take_snapshot().filter_traces([tracemalloc.Filter(False, "*/tests/fakes/*")])
    return sum(stat.size for stat in snapshot.statistics("filename"))


async def measure(count: int, register_views: bool) -> tuple[float, int]:
    with tempfile.TemporaryDirectory() as folder:
        async with fake_discord() as fake, FakeHub() as hub:
            settings = make_settings(fake, hub, Path(folder) / "bot.db")
            async with running_bot(settings) as bot:
                publisher = DiscordPublisher(bot)
                if register_views:  # what sending a plain View does: discord.py keeps it
                    patch = mock.patch.object(publisher_module, "_unregistered", lambda view: view)
                    patch.start()
                await post_many(publisher, fake, 200, 10**6)  # warm up caches and connections
                gc.collect()
                before = bot_heap()
                await post_many(publisher, fake, count, 0)
                gc.collect()
                after = bot_heap()
                store = bot._connection._view_store
                stored = sum(len(items) for items in store._views.values()) + len(store._synced_message_views)
                if register_views:
                    patch.stop()
                return (after - before) / count, stored


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--results", type=int, default=10_000)
    args = parser.parse_args()
    tracemalloc.start()
    ours = await measure(args.results, register_views=False)
    registered = await measure(args.results, register_views=True)
    print(f"{args.results} results posted; heap growth per result and views kept by discord.py:")
    print(f"  components only (the bot):    {ours[0]:8.0f} B/result  buttons kept: {ours[1]}")
    print(f"  a View registered per result: {registered[0]:8.0f} B/result  buttons kept: {registered[1]}")
    print(f"  per 100k results: {ours[0] * 1e5 / 2**20:.1f} MiB vs {registered[0] * 1e5 / 2**20:.1f} MiB")


if __name__ == "__main__":
    asyncio.run(main())
