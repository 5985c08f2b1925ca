"""A runner world for tests: real database, real Hub client against the fake Hub, Discord replaced by an
in-memory Publisher (the seam the runner talks to)."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import SecretStr

from bot.db import Database
from bot.jobs.delivery import DeliveryError, StatusUpdate
from bot.jobs.messages import RunnerConfig
from bot.jobs.models import Job, JobInput
from bot.jobs.runner import JobRunner
from bot.jobs.service import JobService, ReadInputs, Requester
from bot.jobs.store import JobStore
from bot.media import InputImage, OutputImage
from bot.providers.catalog import ImageOptions
from bot.providers.http import RetryPolicy
from bot.providers.hub import HubProvider
from bot.providers.router import Router
from bot.providers.transport import make_client
from bot.quota.policy import Limit, Period
from bot.quota.service import QuotaConfig, QuotaService
from tests.fakes.hub import FakeHub

FAST = RunnerConfig(
    deadline_seconds=5,
    max_active=10,
    poll_min_interval=0.01,
    poll_max_interval=0.05,
    status_edit_min_interval=0,
    delivery_retry_base=0.01,
)
UNLIMITED = QuotaConfig(
    default_limit=Limit(None, Period.DAY), weights={}, max_running_per_user=100, max_waiting_per_user=1000
)
ALICE = Requester(user_id=1, guild_id=10, channel_id=100, upload_limit=10 * 1024 * 1024)


@dataclass
class Chat:
    """In-memory stand-in for Discord's channel messages; shared across runner restarts."""

    ids: Any = field(default_factory=lambda: itertools.count(1000))
    statuses: dict[int, list[StatusUpdate]] = field(default_factory=dict)
    results: dict[int, list[int]] = field(default_factory=dict)
    images: dict[int, list[OutputImage]] = field(default_factory=dict)
    fail_results: list[DeliveryError] = field(default_factory=list)
    fail_finds: list[DeliveryError] = field(default_factory=list)
    hang_after_post: bool = False
    hang_after_status_post: bool = False
    hosted: dict[int, list[str]] = field(default_factory=dict)
    status_posts: dict[int, list[int]] = field(default_factory=dict)  # status messages posted per job
    answers: dict[int, list[str]] = field(default_factory=dict)  # private answers edited by the runner
    signatures: Any = field(default_factory=lambda: itertools.count(1))


class MemoryPublisher:
    def __init__(self, chat: Chat) -> None:
        self.chat = chat

    async def post_status(self, job: Job, update: StatusUpdate, files: Sequence[JobInput] = ()) -> int:
        self.chat.statuses.setdefault(job.id, []).append(update)
        self.chat.hosted[job.id] = [f"https://cdn.test/{job.id}/{f.filename}" for f in files]
        message_id = int(next(self.chat.ids))
        self.chat.status_posts.setdefault(job.id, []).append(message_id)
        if self.chat.hang_after_status_post:
            await asyncio.Event().wait()  # the process "dies" before recording the status message
        return message_id

    async def input_urls(self, job: Job) -> list[str]:
        # Like Discord's signed CDN URLs: a fresh signature every time they are read.
        signature = next(self.chat.signatures)
        return [f"{url}?ex={signature}" for url in self.chat.hosted.get(job.id, [])]

    async def edit_status(self, job: Job, update: StatusUpdate) -> None:
        self.chat.statuses.setdefault(job.id, []).append(update)

    async def post_result(self, job: Job, images: list[OutputImage]) -> int:
        if self.chat.fail_results:
            raise self.chat.fail_results.pop(0)
        message_id = int(next(self.chat.ids))
        self.chat.results.setdefault(job.id, []).append(message_id)
        self.chat.images[job.id] = images
        if self.chat.hang_after_post:
            await asyncio.Event().wait()  # the process "dies" before recording the delivery
        return message_id

    async def answer(self, job: Job, content: str) -> None:
        self.chat.answers.setdefault(job.id, []).append(content)

    async def find_status(self, job: Job) -> int | None:
        posted = self.chat.status_posts.get(job.id)
        return posted[0] if posted else None

    async def find_result(self, job: Job) -> int | None:
        if self.chat.fail_finds:
            raise self.chat.fail_finds.pop(0)
        posted = self.chat.results.get(job.id)
        return posted[-1] if posted else None


@dataclass
class World:
    db: Database
    store: JobStore
    hub: FakeHub
    chat: Chat
    runners: list[JobRunner]
    make: Callable[..., tuple[JobRunner, JobService]]

    async def job(self, job_id: int) -> Job:
        return await self.store.get(job_id)


async def build_world(hub: FakeHub, target: Path | str) -> AsyncIterator[World]:
    """A world on the database at `target` (a SQLite file or a postgresql:// URL)."""
    db = await Database.open(target)
    store = JobStore(db)
    chat = Chat()
    runners: list[JobRunner] = []
    async with make_client(hub.url, 1.0) as client:
        provider = HubProvider(
            client, SecretStr(hub.api_key), RetryPolicy(max_retries=2, base_seconds=0.01, allow_private_urls=True)
        )

        def make(config: RunnerConfig = FAST, quota_config: QuotaConfig = UNLIMITED) -> tuple[JobRunner, JobService]:
            quota = QuotaService(db, quota_config)
            runner = JobRunner(store, {"hub": provider}, MemoryPublisher(chat), quota, config)
            runners.append(runner)
            return runner, JobService(db, store, runner, quota, Router({"hub": provider}, {}))

        yield World(db, store, hub, chat, runners, make)
        for runner in runners:
            await runner.close()
    await db.close()


def inputs(images: list[InputImage], mask: InputImage | None = None) -> ReadInputs:
    """A reader of already-checked input images, as the cogs pass one to the job service."""

    async def read() -> tuple[list[InputImage], InputImage | None]:
        return images, mask

    return read


async def killed_after_posting(world: World) -> Job:
    """A job whose runner "died" right after its result was posted, before the delivery was recorded."""
    first, service = world.make()
    world.hub.plan_next(duration=0.0)
    world.chat.hang_after_post = True
    job = await service.create_generate(ALICE, "nano-banana", "x", ImageOptions())
    await wait_state(world, job.id, lambda j: j.delivery_started_at is not None)
    async with asyncio.timeout(5):
        while job.id not in world.chat.results:
            await asyncio.sleep(0.01)
    await first.close()
    world.chat.hang_after_post = False
    return job


async def finished(world: World, job_id: int, runner: JobRunner) -> Job:
    await asyncio.wait_for(runner.join(job_id), 10)
    return await world.job(job_id)


async def wait_state(world: World, job_id: int, predicate: Callable[[Job], bool]) -> Job:
    async with asyncio.timeout(10):
        while not predicate(job := await world.job(job_id)):
            await asyncio.sleep(0.01)
    return job
