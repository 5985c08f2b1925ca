"""The runner against the fake Hub through the real Hub client; Discord replaced by an in-memory Publisher."""

from __future__ import annotations

import asyncio
import dataclasses
from typing import Any

import pytest

from bot.i18n import render
from bot.jobs.delivery import DeliveryError, Phase
from bot.jobs.messages import RunnerConfig
from bot.jobs.models import JobState
from bot.jobs.runner import JobRunner
from bot.jobs.service import Requester
from bot.media import check_input
from bot.providers.catalog import ImageOptions
from tests.fakes.hub import Fault, Plan
from tests.fakes.images import noise_png, png
from tests.unit.world import ALICE, FAST, World, finished, inputs, killed_after_posting, wait_state


async def test_success_is_delivered_once_with_status_updates(world: World) -> None:
    runner, service = world.make()
    world.hub.plan_next(duration=0.1)
    job = await service.create_generate(ALICE, "nano-banana", "a lighthouse", ImageOptions(count=2, seed=5))
    assert job.state is JobState.QUEUED  # the row exists before the provider hears of it
    job = await finished(world, job.id, runner)
    assert job.state is JobState.SUCCEEDED and job.delivered_at is not None
    assert world.chat.results[job.id] == [job.result_message_id]
    assert len(world.chat.images[job.id]) == 2
    assert [u.phase for u in world.chat.statuses[job.id]] == [Phase.GENERATING, Phase.DONE]
    assert world.hub.submissions[0]["input"]["seed"] == 5
    assert job.duration_ms == 100  # the provider's elapsed_ms


@pytest.mark.parametrize(
    ("outcome", "state", "needle"),
    [
        ("failed", JobState.FAILED, "blocked by the safety filter"),
        ("timeout", JobState.TIMED_OUT, "timed out"),
        ("cancelled", JobState.CANCELLED, "cancelled"),
    ],
)
async def test_provider_failures_are_explained_on_the_status_message(
    world: World, outcome: str, state: JobState, needle: str
) -> None:
    runner, service = world.make()
    world.hub.plan_next(duration=0.05, outcome=outcome)
    job = await finished(world, (await service.create_generate(ALICE, "nano-banana", "x", ImageOptions())).id, runner)
    assert job.state is state and job.closed_at is not None
    final = world.chat.statuses[job.id][-1]
    assert final.phase is Phase.FAILED and needle in render(final.reason or "", "en")
    assert job.id not in world.chat.results


async def test_deadline_stops_polling(world: World) -> None:
    runner, service = world.make(RunnerConfig(**{**FAST.__dict__, "deadline_seconds": 0.3}))
    world.hub.plan_next(duration=30)
    job = await service.create_generate(ALICE, "nano-banana", "slow", ImageOptions())
    job = await finished(world, job.id, runner)
    assert job.state is JobState.TIMED_OUT
    assert "too long" in render(world.chat.statuses[job.id][-1].reason or "", "en")
    polls = world.hub.poll_calls
    await asyncio.sleep(0.2)
    assert world.hub.poll_calls == polls


async def test_transient_errors_are_retried_and_refusals_are_not(world: World) -> None:
    runner, service = world.make()
    world.hub.submit_faults.extend([Fault(status=429), Fault(status=429, headers={"Retry-After": "0"})])
    world.hub.poll_faults.extend([Fault(status=502), Fault(drop=True)])
    ok = await finished(world, (await service.create_generate(ALICE, "nano-banana", "x", ImageOptions())).id, runner)
    assert ok.state is JobState.SUCCEEDED and world.hub.submit_calls == 3
    world.hub.submit_faults.append(Fault(status=422, body={"message": "prompt rejected"}))
    bad = await finished(world, (await service.create_generate(ALICE, "nano-banana", "y", ImageOptions())).id, runner)
    assert bad.state is JobState.FAILED and world.hub.submit_calls == 4
    assert "prompt rejected" in render(world.chat.statuses[bad.id][-1].reason or "", "en")


async def test_provider_down_fails_clearly(world: World) -> None:
    runner, service = world.make()
    world.hub.submit_faults.extend(Fault(status=429) for _ in range(5))
    job = await finished(world, (await service.create_generate(ALICE, "nano-banana", "x", ImageOptions())).id, runner)
    assert job.state is JobState.FAILED and job.error_code == "provider_unavailable"
    assert "unavailable" in render(world.chat.statuses[job.id][-1].reason or "", "en")


@pytest.mark.parametrize(
    ("plan", "needle"),
    [
        ({"data_style": "empty"}, "no image"),
        ({"image": b"<html>not an image</html>"}, "isn't a usable image"),
    ],
)
async def test_unusable_results_fail_the_job(world: World, plan: dict[str, Any], needle: str) -> None:
    runner, service = world.make()
    world.hub.plan_next(duration=0.0, **plan)
    job = await finished(world, (await service.create_generate(ALICE, "nano-banana", "x", ImageOptions())).id, runner)
    assert job.state is JobState.FAILED and needle in render(world.chat.statuses[job.id][-1].reason or "", "en")


async def test_results_over_the_upload_limit_are_compressed(world: World) -> None:
    runner, service = world.make()
    big = noise_png(500, 500)
    world.hub.plan_next(duration=0.0, image=big)
    small = Requester(user_id=1, guild_id=10, channel_id=100, upload_limit=len(big) // 2)
    job = await finished(world, (await service.create_generate(small, "nano-banana", "x", ImageOptions())).id, runner)
    image = world.chat.images[job.id][0]
    assert job.state is JobState.SUCCEEDED and image.compressed and len(image.data) <= len(big) // 2


async def test_restart_mid_poll_resumes_without_resubmitting(world: World) -> None:
    first, service = world.make()
    world.hub.plan_next(duration=0.6)
    job = await service.create_generate(ALICE, "nano-banana", "x", ImageOptions())
    await wait_state(world, job.id, lambda j: j.state in (JobState.SUBMITTED, JobState.RUNNING))
    await first.close()
    second, _ = world.make()
    await second.start()
    job = await finished(world, job.id, second)
    assert job.state is JobState.SUCCEEDED
    assert world.hub.submit_calls == 1
    assert len(world.chat.results[job.id]) == 1


async def test_crash_after_posting_does_not_post_twice(world: World) -> None:
    job = await killed_after_posting(world)
    second, _ = world.make()
    await second.start()
    job = await finished(world, job.id, second)
    assert world.chat.results[job.id] == [job.result_message_id]  # found, not posted again


async def test_unknown_submit_outcome_is_never_resubmitted(world: World) -> None:
    first, service = world.make()
    world.hub.submit_faults.append(Fault(delay=30))  # the request is sent, the answer never comes
    job = await service.create_generate(ALICE, "nano-banana", "x", ImageOptions())
    await wait_state(world, job.id, lambda j: j.submit_started_at is not None)
    async with asyncio.timeout(5):
        while not world.hub.submit_calls:  # the request has reached the Hub (not just been recorded)
            await asyncio.sleep(0.01)
    await first.close()
    second, _ = world.make()
    await second.start()
    job = await finished(world, job.id, second)
    assert job.state is JobState.FAILED and job.error_code == "submit_unknown"
    assert world.hub.submit_calls == 1
    assert "try again" in render(world.chat.statuses[job.id][-1].reason or "", "en")


async def test_transient_chat_errors_are_retried_permanent_ones_recorded(world: World) -> None:
    runner, service = world.make()
    world.chat.fail_results.append(DeliveryError("502", permanent=False))
    ok = await finished(world, (await service.create_generate(ALICE, "nano-banana", "x", ImageOptions())).id, runner)
    assert ok.result_message_id is not None and ok.delivery_error is None
    world.chat.fail_results.append(DeliveryError("403 Missing Access", permanent=True))
    lost = await finished(world, (await service.create_generate(ALICE, "nano-banana", "y", ImageOptions())).id, runner)
    assert lost.state is JobState.FAILED and lost.result_message_id is None and "403" in (lost.delivery_error or "")
    assert lost.closed_at is not None and world.chat.statuses[lost.id][-1].refunded  # the status says so


async def test_active_jobs_are_bounded_and_the_rest_wait_in_line(world: World) -> None:
    runner, service = world.make(RunnerConfig(**{**FAST.__dict__, "max_active": 2}))
    world.hub.default_plan = lambda: Plan(duration=60)  # nothing finishes until the test says so
    jobs = [await service.create_generate(ALICE, "nano-banana", f"p{i}", ImageOptions()) for i in range(2)]
    for job in jobs:  # the two slot holders are submitted (and out of the line) before the others arrive
        await wait_state(world, job.id, lambda j: j.state is not JobState.QUEUED)
    jobs += [await service.create_generate(ALICE, "nano-banana", f"p{i}", ImageOptions()) for i in range(2, 5)]

    def queued() -> list[Any]:
        return [u for j in jobs for u in world.chat.statuses.get(j.id, []) if u.phase is Phase.QUEUED]

    async with asyncio.timeout(5):
        while len(queued()) < 3:
            await asyncio.sleep(0.01)
    assert world.hub.submit_calls == 2  # the other three wait for a slot
    # Each waiting job counts the queued jobs ahead of it.
    assert sorted(u.position for u in queued()) == [0, 1, 2]
    for task in world.hub.tasks.values():
        task.plan.duration = 0  # let the running ones finish; the rest follow
    async with asyncio.timeout(10):
        while len(world.hub.tasks) < 5:
            for task in world.hub.tasks.values():
                task.plan.duration = 0
            await asyncio.sleep(0.01)
    for task in world.hub.tasks.values():
        task.plan.duration = 0
    for job in jobs:
        assert (await finished(world, job.id, runner)).state is JobState.SUCCEEDED


async def test_durations_are_learned_and_reloaded(world: World) -> None:
    runner, service = world.make()
    for i in range(10):  # enough finished jobs for learned figures to replace the prior
        world.hub.plan_next(duration=0.05)
        await finished(world, (await service.create_generate(ALICE, "nano-banana", f"p{i}", ImageOptions())).id, runner)
    fresh, _ = world.make()
    await fresh.start()
    estimate = fresh.stats.estimate("hub:nano-banana:default", 12)
    assert estimate.early == pytest.approx(0.05) and estimate.late == pytest.approx(0.05)


async def test_a_restarted_bot_keeps_what_it_learned_of_when_tasks_start(world: World) -> None:
    """The start-to-finish model (where a task's "processing" pins its finish) survives a restart, so the first
    burst after one is planned as closely as the last one before it."""
    runner, service = world.make(dataclasses.replace(FAST, poll_max_interval=0.02))
    world.hub.default_plan = lambda: Plan(duration=1.0)  # "pending" for its first 0.1 s
    jobs = [await service.create_generate(ALICE, "nano-banana", f"p{i}", ImageOptions()) for i in range(4)]
    for job in jobs:
        assert (await finished(world, job.id, runner)).state is JobState.SUCCEEDED
    key = "hub:nano-banana:default"

    def brackets(runner: JobRunner) -> list[tuple[int, int]]:  # in ms, as the rows keep them
        samples = runner.stats._samples[key]
        return sorted(
            (round(f.start_low * 1000), round(f.start_high * 1000)) for f in samples if f.start_low and f.start_high
        )

    learned = brackets(runner)
    assert len(learned) >= 3 and runner.stats.model(key, 12).paired
    fresh, _ = world.make()
    await fresh.start()
    assert brackets(fresh) == learned and fresh.stats.model(key, 12).paired


async def test_edit_inputs_survive_a_restart_and_are_dropped_once_hosted(world: World) -> None:
    first, service = world.make()
    image = check_input(png(), "cat.png", "image/png")
    job = await service.create_edit(ALICE, "nano-banana-edit", "make it snowy", 1, ImageOptions(), inputs([image]))
    await first.close()  # stopped before anything was hosted or submitted
    assert [i.data for i in await world.store.inputs(job.id)] == [png()]
    second, _ = world.make()
    await second.start()
    job = await finished(world, job.id, second)
    assert job.state is JobState.SUCCEEDED
    sent = world.hub.submissions[0]
    assert sent["model"] == "nano-banana-edit"
    assert [u.split("?")[0] for u in sent["input"]["image_urls"]] == world.chat.hosted[job.id]
    assert [i.data for i in await world.store.inputs(job.id)] == [None]


async def test_per_user_slots_are_released_when_the_users_jobs_end(world: World) -> None:
    runner, service = world.make(RunnerConfig(**{**FAST.__dict__, "max_running_per_user": 1}))
    jobs = [await service.create_generate(ALICE, "nano-banana", f"p{i}", ImageOptions()) for i in range(3)]
    for job in jobs:
        assert (await finished(world, job.id, runner)).state is JobState.SUCCEEDED
    assert runner._user_slots == {} and not runner._user_jobs  # a long-running bot must not keep one per user forever


async def test_the_place_in_line_stays_current_as_jobs_ahead_finish(world: World) -> None:
    runner, service = world.make(RunnerConfig(**{**FAST.__dict__, "max_active": 1, "queue_edit_interval": 0.0}))
    world.hub.default_plan = lambda: Plan(duration=60)
    jobs = []
    for i in range(3):  # each in line before the next (jobs of one process may otherwise line up in any order)
        jobs.append(await service.create_generate(ALICE, "nano-banana", f"p{i}", ImageOptions()))
        await wait_state(world, jobs[-1].id, lambda j: j.status_message_id is not None)
    last = jobs[-1]

    def places() -> list[int]:
        return [u.position for u in world.chat.statuses.get(last.id, []) if u.phase is Phase.QUEUED]

    async with asyncio.timeout(5):
        while places()[-1:] != [1]:  # the last job waits behind the second (the first runs)
            await asyncio.sleep(0.01)
    for task in world.hub.tasks.values():
        task.plan.duration = 0  # job 0 finishes; job 1 takes its slot
    async with asyncio.timeout(5):
        while places()[-1] != 0:
            await asyncio.sleep(0.01)
    shown = places()
    assert shown[-2:] == [1, 0] and shown == sorted(shown, reverse=True)  # "1 ahead of you" did not stay
    world.hub.default_plan = lambda: Plan(duration=0)
    for task in world.hub.tasks.values():
        task.plan.duration = 0
    for job in jobs:
        assert (await finished(world, job.id, runner)).state is JobState.SUCCEEDED
