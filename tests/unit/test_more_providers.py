"""Contract tests: the Gemini endpoint and MindVideo clients against fakes that follow their documented shapes."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from pydantic import SecretStr

from bot.i18n import render
from bot.providers.base import ProviderRejected, TaskState, TaskStatus
from bot.providers.gemini import GeminiProvider
from bot.providers.http import RetryPolicy
from bot.providers.mindvideo import MindVideoProvider
from bot.providers.transport import make_client
from tests.fakes.hub import FakeHub, Fault
from tests.fakes.images import png
from tests.fakes.mindvideo import COST, FakeMindVideo
from tests.unit.submitting import submit_to


@pytest.fixture
async def gemini(hub: FakeHub) -> AsyncIterator[GeminiProvider]:
    async with make_client(hub.url, 2.0) as client:
        yield GeminiProvider(
            client, SecretStr(hub.api_key), RetryPolicy(max_retries=2, base_seconds=0.01, allow_private_urls=True)
        )


@pytest.fixture
async def mindvideo(mindvideo_fake: FakeMindVideo) -> AsyncIterator[MindVideoProvider]:
    async with make_client(mindvideo_fake.url, 2.0) as client:
        yield MindVideoProvider(
            client,
            SecretStr(mindvideo_fake.api_key),
            RetryPolicy(max_retries=2, base_seconds=0.01, allow_private_urls=True),
        )


async def until_done(provider: Any, task_id: str) -> TaskStatus:
    states = []
    for _ in range(300):
        status: TaskStatus = await provider.poll(task_id)
        states.append(status.state)
        if status.state.terminal:
            status.raw["seen"] = states
            return status
        await asyncio.sleep(0.01)
    raise AssertionError("never finished")


async def test_gemini_maps_the_family_and_treats_ready_as_not_finished(gemini: GeminiProvider, hub: FakeHub) -> None:
    hub.plan_next(duration=0.2)
    task_id = await submit_to(
        gemini, "nano-banana", {"prompt": "cat", "aspect_ratio": "16:9", "num_images": 1}, "job-1"
    )
    assert hub.submissions[0] == {
        "endpoint": "gemini",
        "prompt": "cat",
        "model": "nano-banana-fast",
        "num_images": 1,
        "action": "generate",
        "aspect_ratio": "16:9",
    }
    first = await gemini.poll(task_id)
    assert first.state is TaskState.PENDING  # the fake answers "ready": about to start
    status = await until_done(gemini, task_id)
    assert status.state is TaskState.SUCCEEDED and len(status.images) == 1
    assert await gemini.download(status.images[0], 1_000_000) == png()


async def test_gemini_makes_one_task_per_image(gemini: GeminiProvider, hub: FakeHub) -> None:
    task_id = await submit_to(gemini, "nano-banana-pro", {"prompt": "cat", "num_images": 3, "resolution": "4K"}, "j")
    assert len(json.loads(task_id)) == 3 and hub.submit_calls == 3
    assert all(s["resolution"] == "4K" and s["num_images"] == 1 for s in hub.submissions)
    assert len((await until_done(gemini, task_id)).images) == 3


async def test_gemini_edits_and_failures(gemini: GeminiProvider, hub: FakeHub) -> None:
    await submit_to(
        gemini, "nano-banana-2-edit", {"prompt": "hat", "image_urls": ["https://cdn/x.png"], "aspect_ratio": "4:1"}, "j"
    )
    assert hub.submissions[0]["action"] == "edit" and hub.submissions[0]["image_urls"] == ["https://cdn/x.png"]
    hub.plan_next(duration=0.0, outcome="failed", error_message="blocked")
    failed = await until_done(gemini, await submit_to(gemini, "nano-banana", {"prompt": "x"}, "j"))
    assert failed.state is TaskState.FAILED and failed.error_message == "blocked" and failed.error_code == "1001"


def test_gemini_says_what_it_cannot_do() -> None:
    provider = GeminiProvider(None, SecretStr("k"), RetryPolicy())  # type: ignore[arg-type]
    assert render(provider.unsupported("gpt-image-2", {"prompt": "x"}) or "", "en") == "this endpoint has no such model"
    assert render(provider.unsupported("nano-banana", {"prompt": "x", "seed": 1}) or "", "en") == "it takes no seed"
    assert provider.unsupported("nano-banana-pro", {"prompt": "x", "aspect_ratio": "4:1"}) is not None
    assert provider.unsupported("nano-banana-2", {"prompt": "x", "aspect_ratio": "4:1"}) is None
    assert provider.unsupported("nano-banana-2", {"prompt": "x", "resolution": "0.5K"}) is not None


async def test_mindvideo_sends_only_documented_fields_and_reports_cost(
    mindvideo: MindVideoProvider, mindvideo_fake: FakeMindVideo
) -> None:
    hub_shaped = {
        "prompt": "cat",
        "num_images": 2,
        "aspect_ratio": "16:9",
        "resolution": "1K",
        "output_format": "png",
        "safety_tolerance": "4",
    }
    task_id = await submit_to(mindvideo, "nano-banana", hub_shaped, "job-7")
    assert mindvideo_fake.submissions[0] == {
        "model": "gemini-2-5-flash-image-preview-official",
        "input": {"prompt": "cat", "n": 2, "size": "16:9", "resolution": "1K"},
    }
    status = await until_done(mindvideo, task_id)
    assert status.state is TaskState.SUCCEEDED and len(status.images) == 2 and status.cost == pytest.approx(2 * COST)
    assert TaskState.PENDING in status.raw["seen"] or TaskState.RUNNING in status.raw["seen"]


async def test_mindvideo_retries_are_idempotent_and_mismatches_refused(
    mindvideo: MindVideoProvider, mindvideo_fake: FakeMindVideo
) -> None:
    first = await submit_to(mindvideo, "nano-banana-pro", {"prompt": "cat"}, "job-9")
    again = await submit_to(mindvideo, "nano-banana-pro", {"prompt": "cat"}, "job-9")  # e.g. after a lost answer
    assert first == again and len(mindvideo_fake.tasks) == 1
    with pytest.raises(ProviderRejected) as info:
        await submit_to(mindvideo, "nano-banana-pro", {"prompt": "dog"}, "job-9")
    assert info.value.status == 409


async def test_mindvideo_dropped_submit_is_retried_safely(
    mindvideo: MindVideoProvider, mindvideo_fake: FakeMindVideo
) -> None:
    mindvideo_fake.submit_faults.append(Fault(drop=True))
    task_id = await submit_to(mindvideo, "gpt-image-2", {"prompt": "cat"}, "job-3")
    assert task_id in mindvideo_fake.tasks and len(mindvideo_fake.tasks) == 1


async def test_mindvideo_failures_carry_the_reason(mindvideo: MindVideoProvider, mindvideo_fake: FakeMindVideo) -> None:
    mindvideo_fake.plan_next(duration=0.0, outcome="failed", error_message="unsafe content")
    status = await until_done(mindvideo, await submit_to(mindvideo, "nano-banana", {"prompt": "x"}, "j"))
    assert status.state is TaskState.FAILED and status.error_message == "unsafe content"


def test_mindvideo_says_what_it_cannot_do() -> None:
    provider = MindVideoProvider(None, SecretStr("k"), RetryPolicy())  # type: ignore[arg-type]
    assert provider.unsupported("nano-banana", {"prompt": "x" * 1001}) is not None
    assert provider.unsupported("gpt-image-2", {"prompt": "x", "num_images": 2}) is not None
    assert provider.unsupported("nano-banana-pro-edit", {"prompt": "x", "image_urls": ["u"], "mask_url": "m"})
    assert render(provider.unsupported("nano-banana", {"prompt": "x", "seed": 3}) or "", "en") == "it takes no seed"
    assert provider.unsupported("nano-banana-2", {"prompt": "x", "aspect_ratio": "8:1"}) is not None
    assert provider.unsupported("nano-banana-2", {"prompt": "x", "resolution": "2K"}) is None
