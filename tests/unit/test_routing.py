"""Routing across providers and failover at submit, on a real database with the fake MountSea and MindVideo."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from pydantic import SecretStr

from bot.errors import InvalidRequest
from bot.jobs.models import JobState
from bot.jobs.runner import JobRunner
from bot.jobs.service import JobService
from bot.providers.base import ImageProvider
from bot.providers.catalog import ImageOptions
from bot.providers.gemini import GeminiProvider
from bot.providers.http import RetryPolicy
from bot.providers.hub import HubProvider
from bot.providers.mindvideo import MindVideoProvider
from bot.providers.router import Router
from bot.providers.transport import make_client
from bot.quota.service import QuotaService
from tests.fakes.hub import FakeHub, Fault
from tests.fakes.mindvideo import FakeMindVideo
from tests.unit.world import ALICE, FAST, UNLIMITED, MemoryPublisher, World, finished, wait_state


@pytest.fixture
async def providers(hub: FakeHub) -> AsyncIterator[tuple[dict[str, ImageProvider], FakeMindVideo]]:
    policy = RetryPolicy(max_retries=1, base_seconds=0.01, allow_private_urls=True)
    async with (
        FakeMindVideo() as mv,
        make_client(hub.url, 2) as c1,
        make_client(hub.url, 2) as c2,
        make_client(mv.url, 2) as c3,
    ):
        yield (
            {
                "hub": HubProvider(c1, SecretStr(hub.api_key), policy),
                "gemini": GeminiProvider(c2, SecretStr(hub.api_key), policy),
                "mindvideo": MindVideoProvider(c3, SecretStr(mv.api_key), policy),
            },
            mv,
        )


def build(
    world: World, providers: dict[str, ImageProvider], order: dict[str, list[str]]
) -> tuple[JobRunner, JobService]:
    quota = QuotaService(world.db, UNLIMITED)
    runner = JobRunner(world.store, providers, MemoryPublisher(world.chat), quota, FAST)
    world.runners.append(runner)
    return runner, JobService(world.db, world.store, runner, quota, Router(providers, order))


async def test_first_provider_down_the_next_serves_with_one_task(world: World, providers: tuple, hub: FakeHub) -> None:
    chosen, mv = providers
    runner, service = build(world, chosen, {"nano-banana": ["hub", "mindvideo"]})
    hub.submit_faults.extend(Fault(status=429) for _ in range(10))  # refused: nothing was created
    job = await service.create_generate(ALICE, "nano-banana", "a fox", ImageOptions(count=2))
    assert job.route == ("hub", "mindvideo")
    job = await finished(world, job.id, runner)
    assert job.state is JobState.SUCCEEDED and job.provider == "mindvideo"
    assert len(mv.tasks) == 1 and hub.tasks == {}  # exactly one task anywhere
    assert job.provider_cost == pytest.approx(2 * 0.0351)
    assert job.duration_key.startswith("mindvideo:")


async def test_refusals_do_not_fail_over(world: World, providers: tuple, hub: FakeHub) -> None:
    chosen, mv = providers
    runner, service = build(world, chosen, {"nano-banana": ["hub", "mindvideo"]})
    hub.submit_faults.append(Fault(status=422, body={"message": "prompt refused"}))
    job = await finished(world, (await service.create_generate(ALICE, "nano-banana", "x", ImageOptions())).id, runner)
    assert job.state is JobState.FAILED and job.provider == "hub" and mv.submit_calls == 0


async def test_requests_route_around_what_a_provider_cannot_do(world: World, providers: tuple, hub: FakeHub) -> None:
    chosen, _ = providers
    runner, service = build(world, chosen, {"nano-banana": ["gemini", "mindvideo", "hub"]})
    with_seed = await service.create_generate(ALICE, "nano-banana", "x", ImageOptions(seed=4))
    assert with_seed.route == ("hub",)  # only the Hub takes a seed
    plain = await service.create_generate(ALICE, "nano-banana", "y", ImageOptions())
    assert plain.route == ("gemini", "mindvideo", "hub")
    assert (await finished(world, plain.id, runner)).state is JobState.SUCCEEDED
    assert any(s.get("endpoint") == "gemini" for s in hub.submissions)
    only_mindvideo = {"mindvideo": chosen["mindvideo"]}
    _, limited = build(world, only_mindvideo, {})
    with pytest.raises(InvalidRequest, match="MindVideo: it takes no seed"):
        await limited.create_generate(ALICE, "nano-banana", "x", ImageOptions(seed=4))


async def test_a_restarted_mindvideo_submit_is_resent_safely(world: World, providers: tuple) -> None:
    chosen, mv = providers
    first, service = build(world, {"mindvideo": chosen["mindvideo"]}, {})
    mv.submit_faults.append(Fault(delay=30))
    job = await service.create_generate(ALICE, "nano-banana", "x", ImageOptions())
    await wait_state(world, job.id, lambda j: j.submit_started_at is not None)
    await first.close()  # died after sending: the outcome is unknown
    second, _ = build(world, {"mindvideo": chosen["mindvideo"]}, {})
    await second.start()
    job = await finished(world, job.id, second)
    assert job.state is JobState.SUCCEEDED  # the Idempotency-Key makes resubmitting safe
    assert len(mv.tasks) == 1


async def test_a_partly_accepted_multi_image_request_never_fails_over(
    world: World, providers: tuple, hub: FakeHub
) -> None:
    chosen, mv = providers
    runner, service = build(world, chosen, {"nano-banana": ["gemini", "mindvideo"]})
    hub.submit_faults.extend([None, Fault(status=429), Fault(status=429), Fault(status=429)])  # task 1, then refused
    job = await service.create_generate(ALICE, "nano-banana", "y", ImageOptions(count=2))
    job = await finished(world, job.id, runner)
    assert job.state is JobState.FAILED and job.error_code == "partial_submit"
    assert job.provider == "gemini" and mv.submit_calls == 0 and len(hub.tasks) == 1
