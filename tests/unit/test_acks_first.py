"""Acknowledgements go first: a burst's last requests must still be acknowledged within Discord's 3 seconds."""

from __future__ import annotations

import asyncio
import dataclasses

from bot.jobs.acks import AcksFirst
from bot.jobs.models import Job
from bot.providers.catalog import ImageOptions
from tests.unit.world import ALICE, World, wait_state

BOB = dataclasses.replace(ALICE, user_id=2)


async def test_a_new_job_submits_once_the_acknowledgements_in_flight_are_out(world: World) -> None:
    _, service = world.make()
    in_flight, release = asyncio.Event(), asyncio.Event()

    async def slow_ack(_: Job) -> None:
        in_flight.set()
        await release.wait()

    acking = asyncio.create_task(service.create_generate(BOB, "nano-banana", "b", ImageOptions(), ack=slow_ack))
    await in_flight.wait()
    first = await service.create_generate(ALICE, "nano-banana", "a", ImageOptions())
    await asyncio.sleep(0.3)
    assert world.hub.submit_calls == 0  # held back while another request is being acknowledged
    release.set()
    await acking
    await wait_state(world, first.id, lambda j: j.provider_task_id is not None)


async def test_a_job_is_held_back_at_most_a_moment(world: World) -> None:
    runner, service = world.make()
    runner.acks = AcksFirst(max_hold=0.2)
    in_flight = asyncio.Event()

    async def never_answers(_: Job) -> None:
        in_flight.set()
        await asyncio.Event().wait()

    acking = asyncio.create_task(service.create_generate(BOB, "nano-banana", "b", ImageOptions(), ack=never_answers))
    await in_flight.wait()
    first = await service.create_generate(ALICE, "nano-banana", "a", ImageOptions())
    await wait_state(world, first.id, lambda j: j.provider_task_id is not None)
    acking.cancel()
    await asyncio.gather(acking, return_exceptions=True)
