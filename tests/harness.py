"""Run the real bot, wired exactly as `python -m bot` wires it, against the loopback fakes."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from bot.client import ImageBot, build_providers, make_bot
from bot.config import Settings
from bot.db import Database
from bot.db.base import is_postgres_url
from bot.ops.metrics import Metrics
from tests.fakes.discord import FakeDiscord, point_discord_py_at
from tests.fakes.hub import FakeHub

FAST = {
    "poll_min_interval_seconds": 0.02,
    "poll_max_interval_seconds": 0.2,
    "status_edit_min_interval_seconds": 0.0,
    "provider_retry_base_seconds": 0.01,
    "http_timeout_seconds": 5.0,
    "job_deadline_seconds": 10.0,
}


def make_settings(discord_fake: FakeDiscord, hub: FakeHub, database: Path | str, **overrides: Any) -> Settings:
    """Settings against the fakes; `database` is a SQLite path or a postgresql:// URL."""
    where = {"database_url": database} if is_postgres_url(database) else {"database_path": database}
    values: dict[str, Any] = {
        "discord_token": FakeDiscord.TOKEN,
        "mountsea_api_key": hub.api_key,
        "mountsea_base_url": hub.url,
        **where,
        "result_urls_allow_private": True,  # the fakes serve results from 127.0.0.1
        **FAST,
        **overrides,
    }
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


@contextlib.asynccontextmanager
async def running_bot(settings: Settings, **client_options: Any) -> AsyncIterator[ImageBot]:
    """Start the bot, wait for READY, yield it, and close it (and its db and HTTP client) afterwards."""
    db = await Database.open(settings.database_target)
    metrics = Metrics()
    providers, clients = build_providers(settings, metrics=metrics)
    bot = make_bot(settings, db, providers, metrics=metrics, guild_ready_timeout=0.05, **client_options)
    task = asyncio.create_task(bot.start(settings.discord_token.get_secret_value()), name="bot")
    try:
        ready = asyncio.create_task(bot.wait_until_ready())
        done, _ = await asyncio.wait({ready, task}, timeout=15, return_when=asyncio.FIRST_COMPLETED)
        if task in done:
            task.result()
        if ready not in done:
            raise TimeoutError("bot did not become ready")
        yield bot
    finally:
        await bot.close()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await asyncio.wait_for(task, 5)
        for client in clients:
            await client.aclose()
        await db.close()


@contextlib.asynccontextmanager
async def fake_discord(**options: Any) -> AsyncIterator[FakeDiscord]:
    """A fake Discord with discord.py pointed at it for the duration."""
    async with FakeDiscord(**options) as fake:
        undo = point_discord_py_at(fake.url)
        try:
            yield fake
        finally:
            undo()
