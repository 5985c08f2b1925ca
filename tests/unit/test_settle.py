"""Jobs and credits settle exactly once (issue: one price, one claim, one settle step).

Each test names the failure it guards against. Real SQLite files, the real Hub and MindVideo clients against
their fakes; only Discord is the in-memory Publisher.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator

import pytest
from pydantic import SecretStr

from bot.config import DEFAULT_COSTS
from bot.jobs.delivery import DeliveryError, Phase
from bot.jobs.messages import RunnerConfig
from bot.jobs.models import Job, JobState
from bot.jobs.runner import JobRunner
from bot.jobs.service import JobService
from bot.media import InputImage, check_input
from bot.providers.catalog import ImageOptions
from bot.providers.http import RetryPolicy
from bot.providers.mindvideo import MindVideoProvider
from bot.providers.router import Router
from bot.providers.transport import make_client
from bot.quota.policy import Limit, Period
from bot.quota.service import QuotaConfig, QuotaService
from bot.rendering import text
from tests.fakes.hub import Fault, Plan
from tests.fakes.images import png
from tests.fakes.mindvideo import FakeMindVideo
from tests.unit.world import (
    ALICE,
    FAST,
    UNLIMITED,
    MemoryPublisher,
    World,
    finished,
    inputs,
    killed_after_posting,
    wait_state,
)

PRICED = QuotaConfig(
    default_limit=Limit(20, Period.DAY), weights=DEFAULT_COSTS, max_running_per_user=100, max_waiting_per_user=1000
)


def image() -> InputImage:
    return check_input(png(), "cat.png", "image/png")


def config(**changes: float) -> RunnerConfig:
    return dataclasses.replace(FAST, **changes)  # type: ignore[arg-type]


async def used(service: JobService) -> int:
    usage = await service._quota.usage(service._db, ALICE.guild_id, ALICE.user_id, ())  # type: ignore[attr-defined]
    return int(usage.used)


# -- 1. one price, computed once -----------------------------------------------------------------------


async def test_edits_upscales_and_custom_sizes_are_priced_by_family_and_resolution(world: World) -> None:
    runner, service = world.make(quota_config=PRICED)
    world.hub.default_plan = lambda: Plan(duration=0.0)
    upscale = await service.create_edit(
        ALICE, "nano-banana-pro-edit", "upscale", 1, ImageOptions(resolution="4K"), inputs([image()])
    )
    assert upscale.cost == 4  # a Pro 4K upscale costs what a Pro 4K image costs, not 1
    gpt = await service.create_generate(ALICE, "gpt-image-2", "x", ImageOptions(aspect_ratio="16:9", resolution="4K"))
    assert gpt.cost == 4  # its resolution is stored as a custom size
    await finished(world, gpt.id, runner)
    reroll = await service.rerun(ALICE, gpt)
    assert reroll.cost == 4
    assert await used(service) == 12  # what was charged is exactly the stored prices
    await finished(world, upscale.id, runner)
    await finished(world, reroll.id, runner)


# -- 2. resume polls before it judges ------------------------------------------------------------------


async def test_a_task_that_finished_during_an_outage_is_delivered_not_timed_out(world: World) -> None:
    first, service = world.make(config(deadline_seconds=0.4))
    world.hub.plan_next(duration=0.2)
    job = await service.create_generate(ALICE, "nano-banana", "x", ImageOptions())
    await wait_state(world, job.id, lambda j: j.state in (JobState.SUBMITTED, JobState.RUNNING))
    await first.close()
    await asyncio.sleep(0.6)  # the bot is down past the deadline; the provider finished (and billed) meanwhile
    second, _ = world.make(config(deadline_seconds=0.4))
    await second.start()
    job = await finished(world, job.id, second)
    assert job.state is JobState.SUCCEEDED and world.chat.results[job.id] == [job.result_message_id]


# -- 3. no stranded jobs -----------------------------------------------------------------------------------


async def test_a_failed_lookup_of_an_earlier_delivery_does_not_strand_the_job(world: World) -> None:
    job = await killed_after_posting(world)
    world.chat.fail_finds.append(DeliveryError("403 Missing Access (Read Message History)", permanent=True))
    second, _ = world.make()
    await second.start()
    job = await finished(world, job.id, second)
    assert job.delivered_at is not None and job.closed_at is not None
    assert world.chat.statuses[job.id][-1].phase is Phase.DONE


async def test_a_transient_outage_postpones_delivery_across_restarts_then_delivers(world: World) -> None:
    patient = config(delivery_retries=0, delivery_postpone_base=0.05, sweep_interval=0.02)
    runner, service = world.make(patient)
    world.hub.plan_next(duration=0.0)
    world.chat.fail_results.extend(DeliveryError("Discord 503", permanent=False) for _ in range(2))
    await runner.start()
    job = await service.create_generate(ALICE, "nano-banana", "x", ImageOptions())
    job = await wait_state(world, job.id, lambda j: j.closed_at is not None)
    assert job.state is JobState.SUCCEEDED and job.delivery_attempts == 2
    assert world.chat.results[job.id] == [job.result_message_id]


async def test_a_delivery_that_never_succeeds_fails_refunded_and_the_status_says_so(world: World) -> None:
    patient = config(delivery_retries=0, delivery_postpone_base=0.01, sweep_interval=0.02, delivery_max_attempts=3)
    runner, service = world.make(patient, quota_config=PRICED)
    world.hub.plan_next(duration=0.0)
    world.chat.fail_results.extend(DeliveryError("Discord 503", permanent=False) for _ in range(10))
    await runner.start()
    job = await service.create_generate(ALICE, "nano-banana", "x", ImageOptions())
    job = await wait_state(world, job.id, lambda j: j.closed_at is not None)
    assert job.state is JobState.FAILED and job.error_code == "undeliverable"
    final = world.chat.statuses[job.id][-1]
    assert final.phase is Phase.FAILED and final.refunded and final.reason == text.RESULT_NOT_POSTED
    assert await used(service) == 0


# -- 4. one job, at most one paid task ------------------------------------------------------------------


@pytest.fixture
async def mindvideo(world: World) -> AsyncIterator[tuple[FakeMindVideo, MindVideoProvider]]:
    async with FakeMindVideo() as fake, make_client(fake.url, 0.5) as client:
        policy = RetryPolicy(max_retries=1, base_seconds=0.01, allow_private_urls=True)  # the fake runs on loopback
        yield fake, MindVideoProvider(client, SecretStr(fake.api_key), policy)


def with_mindvideo(world: World, provider: MindVideoProvider, order: list[str]) -> tuple[JobRunner, JobService]:
    hub_runner, _ = world.make()
    providers = {"hub": hub_runner._providers["hub"], "mindvideo": provider}  # type: ignore[attr-defined]
    quota = QuotaService(world.db, UNLIMITED)
    runner = JobRunner(world.store, providers, MemoryPublisher(world.chat), quota, FAST)
    world.runners.append(runner)
    return runner, JobService(world.db, world.store, runner, quota, Router(providers, {"nano-banana": order}))


async def test_a_submit_sent_without_an_answer_never_fails_over(
    world: World, mindvideo: tuple[FakeMindVideo, MindVideoProvider]
) -> None:
    fake, provider = mindvideo
    fake.submit_faults.extend(Fault(drop=True) for _ in range(5))  # sent each time, never answered
    runner, service = with_mindvideo(world, provider, ["mindvideo", "hub"])
    job = await finished(world, (await service.create_generate(ALICE, "nano-banana", "x", ImageOptions())).id, runner)
    assert job.state is JobState.FAILED and job.error_code == "submit_unknown"
    assert world.hub.submit_calls == 0  # a task may exist at MindVideo: the Hub must not make a second one


async def test_two_runners_on_one_database_never_drive_the_same_job(world: World) -> None:
    short = config(lease_seconds=0.3, sweep_interval=0.05)
    creator, service = world.make(short)
    creator.enqueue = lambda job_id: None  # type: ignore[method-assign]  # the creating process "dies" at once
    world.hub.default_plan = lambda: Plan(duration=0.05)
    jobs = [await service.create_generate(ALICE, "nano-banana", f"p{i}", ImageOptions()) for i in range(12)]
    first, _ = world.make(short)
    second, _ = world.make(short)
    await asyncio.gather(first.start(), second.start())  # an overlapping deploy: both sweep the same rows
    for job in jobs:
        done = await wait_state(world, job.id, lambda j: j.closed_at is not None)
        assert done.state is JobState.SUCCEEDED and len(world.chat.results[job.id]) == 1
    assert world.hub.submit_calls == 12 and len(world.hub.tasks) == 12


# -- 5. idempotency keys that cannot collide, resends that are identical --------------------------------


async def test_a_resubmit_after_a_restart_is_byte_identical_under_a_random_key(
    world: World, mindvideo: tuple[FakeMindVideo, MindVideoProvider]
) -> None:
    fake, provider = mindvideo
    fake.slow_answers = 1  # the task is created; the process dies before the answer arrives
    first, service = with_mindvideo(world, provider, ["mindvideo"])
    job = await service.create_edit(ALICE, "nano-banana-edit", "add a hat", 1, ImageOptions(), inputs([image()]))
    async with asyncio.timeout(5):
        while not fake.tasks:
            await asyncio.sleep(0.01)
    await first.close()
    second, _ = with_mindvideo(world, provider, ["mindvideo"])
    await second.start()
    job = await finished(world, job.id, second)
    assert job.state is JobState.SUCCEEDED
    assert len(fake.tasks) == 1  # MindVideo recognised the resend: same key, same body (old image URLs)
    assert len(fake.keys) == 2 and len(set(fake.keys)) == 1 and fake.keys[0] == f"imagebot-{job.idempotency_key}"
    assert len(job.idempotency_key) == 32 and fake.keys[0] != f"imagebot-job-{job.id}"  # not the row id


# -- 8. input bytes never outlive the job ----------------------------------------------------------------


async def test_input_bytes_are_dropped_however_the_job_ends_and_swept_at_startup(world: World) -> None:
    runner, service = world.make(config(max_active=1))
    world.hub.default_plan = lambda: Plan(duration=30)
    blocker = await service.create_generate(ALICE, "nano-banana", "slow", ImageOptions())
    waiting = await service.create_edit(ALICE, "nano-banana-edit", "hat", 1, ImageOptions(), inputs([image()]))
    assert [i.data for i in await world.store.inputs(waiting.id)] == [png()]
    cancelled = await runner.cancel(waiting.id)  # refunded, and its 10 MB must not stay behind for free
    assert cancelled.state is JobState.CANCELLED
    assert [i.data for i in await world.store.inputs(waiting.id)] == [None]
    await runner.cancel(blocker.id)
    runner.enqueue = lambda job_id: None  # type: ignore[method-assign]
    legacy = await service.create_edit(ALICE, "nano-banana-edit", "hat", 1, ImageOptions(), inputs([image()]))
    await runner.close()
    await world.db.execute("UPDATE jobs SET state = 'failed', closed_at = 1 WHERE id = ?", (legacy.id,))
    fresh, _ = world.make()
    await fresh.start()
    assert [i.data for i in await world.store.inputs(legacy.id)] == [None]


# -- 10. nothing acknowledged is forgotten --------------------------------------------------------------


async def test_the_row_and_charge_exist_before_the_acknowledgement(world: World) -> None:
    _, service = world.make(quota_config=PRICED)
    seen: list[tuple[str, int]] = []

    async def ack(_: Job) -> None:
        row = await world.db.fetchone("SELECT state, cost FROM jobs WHERE user_id = ?", (ALICE.user_id,))
        assert row is not None
        seen.append((str(row[0]), await used(service)))

    await service.create_generate(ALICE, "nano-banana-pro", "x", ImageOptions(), ack=ack)
    await service.create_edit(ALICE, "nano-banana-edit", "x", 1, ImageOptions(), inputs([image()]), ack=ack)
    assert seen == [("queued", 2), ("queued", 3)]


async def test_an_edit_interrupted_while_reading_its_images_is_told_and_refunded(world: World) -> None:
    short = config(lease_seconds=0.2, sweep_interval=0.05)
    first, service = world.make(short, quota_config=PRICED)
    never = asyncio.Event()

    async def slow_read() -> tuple[list[InputImage], InputImage | None]:
        await never.wait()  # the process dies while downloading the attachments
        return [], None

    creating = asyncio.create_task(service.create_edit(ALICE, "nano-banana-edit", "hat", 1, ImageOptions(), slow_read))
    async with asyncio.timeout(5):
        while (row := await world.db.fetchone("SELECT id FROM jobs")) is None:
            await asyncio.sleep(0.01)
    job = await world.job(int(row[0]))
    assert job.state is JobState.PREPARING and await used(service) == 1
    second, _ = world.make(short, quota_config=PRICED)  # the first never renews its lease: it is "dead"
    await second.start()
    job = await wait_state(world, job.id, lambda j: j.closed_at is not None)
    assert job.state is JobState.FAILED and await used(service) == 0
    final = world.chat.statuses[job.id][-1]
    assert final.phase is Phase.FAILED and final.reason == text.INTERRUPTED and final.refunded
    creating.cancel()
    await asyncio.gather(creating, return_exceptions=True)
    assert (await world.job(job.id)).state is JobState.FAILED and await used(service) == 0
    del first


async def test_a_status_message_posted_before_a_crash_is_found_not_posted_again(world: World) -> None:
    first, service = world.make()
    world.hub.plan_next(duration=0.3)
    world.chat.hang_after_status_post = True
    job = await service.create_generate(ALICE, "nano-banana", "x", ImageOptions())
    async with asyncio.timeout(5):
        while job.id not in world.chat.status_posts:
            await asyncio.sleep(0.01)
    await first.close()  # killed between posting the status message and recording its id
    world.chat.hang_after_status_post = False
    second, _ = world.make()
    await second.start()
    job = await finished(world, job.id, second)
    assert job.state is JobState.SUCCEEDED
    assert world.chat.status_posts[job.id] == [job.status_message_id]  # one status message, reused


async def test_a_request_whose_acknowledgement_fails_is_ended_refunded_not_left_charged(world: World) -> None:
    _, service = world.make(quota_config=PRICED)

    async def too_late(_: Job) -> None:
        raise TimeoutError("Unknown interaction (10062)")  # Discord no longer takes the acknowledgement

    with pytest.raises(TimeoutError):
        await service.create_generate(ALICE, "nano-banana", "x", ImageOptions(), ack=too_late)
    row = await world.db.fetchone("SELECT id, state, closed_at FROM jobs")
    assert row is not None and row[1] == "failed" and row[2] is not None
    assert await used(service) == 0 and world.hub.submit_calls == 0


async def test_a_process_that_takes_a_job_over_answers_the_members_request_again(world: World) -> None:
    first, service = world.make()
    world.hub.plan_next(duration=0.3)
    asker = dataclasses.replace(ALICE, answer_token="interaction-token")
    job = await service.create_generate(asker, "nano-banana", "x", ImageOptions())
    await wait_state(world, job.id, lambda j: j.state in (JobState.SUBMITTED, JobState.RUNNING))
    await first.close()  # died before the command's "On it" reached the member
    assert job.id not in world.chat.answers
    second, _ = world.make()
    await second.start()
    job = await finished(world, job.id, second)
    assert world.chat.answers[job.id] == [text.queued_answer(job.id)]
    assert job.answer_token is None  # a credential: gone once the job is closed
