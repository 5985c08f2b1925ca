"""Acknowledgements go first: a burst's last requests must still be acknowledged within Discord's 3 seconds."""

from __future__ import annotations

import asyncio
import dataclasses

from bot.jobs.acks import BURST, AcksFirst
from bot.jobs.models import Job
from bot.jobs.service import JobService
from bot.providers.catalog import ImageOptions
from tests.unit.world import ALICE, World, wait_state


async def acknowledging(service: JobService, count: int, release: asyncio.Event) -> list[asyncio.Task[Job]]:
    """`count` requests from other members whose acknowledgements are on their way until `release` is set."""
    in_flight = 0
    all_in_flight = asyncio.Event()

    async def slow_ack(_: Job) -> None:
        nonlocal in_flight
        in_flight += 1
        if in_flight == count:
            all_in_flight.set()
        await release.wait()

    tasks = [
        asyncio.create_task(
            service.create_generate(
                dataclasses.replace(ALICE, user_id=100 + i), "nano-banana", "b", ImageOptions(), ack=slow_ack
            )
        )
        for i in range(count)
    ]
    await all_in_flight.wait()
    return tasks


async def test_during_a_burst_of_acknowledgements_a_new_job_waits_to_start(world: World) -> None:
    _, service = world.make()
    release = asyncio.Event()
    burst = await acknowledging(service, BURST, release)
    first = await service.create_generate(ALICE, "nano-banana", "a", ImageOptions())
    await asyncio.sleep(0.3)
    assert world.hub.submit_calls == 0  # nothing goes out while the burst is being acknowledged
    release.set()
    await asyncio.gather(*burst)
    await wait_state(world, first.id, lambda j: j.provider_task_id is not None)


async def test_ordinary_traffic_does_not_hold_jobs_back(world: World) -> None:
    _, service = world.make()
    release = asyncio.Event()
    others = await acknowledging(service, 2, release)  # a couple of acknowledgements on their way, as usual
    first = await service.create_generate(ALICE, "nano-banana", "a", ImageOptions())
    await wait_state(world, first.id, lambda j: j.provider_task_id is not None)
    release.set()
    await asyncio.gather(*others)


async def test_a_job_is_held_back_at_most_a_moment(world: World) -> None:
    runner, service = world.make()
    runner.acks = AcksFirst(max_hold=0.2)
    never = asyncio.Event()
    burst = await acknowledging(service, BURST, never)
    first = await service.create_generate(ALICE, "nano-banana", "a", ImageOptions())
    await wait_state(world, first.id, lambda j: j.provider_task_id is not None)
    for task in burst:
        task.cancel()
    await asyncio.gather(*burst, return_exceptions=True)
