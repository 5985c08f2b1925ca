from __future__ import annotations

import asyncio
import base64
from collections.abc import AsyncIterator

import httpx
import pytest
from pydantic import SecretStr

from bot.i18n import render
from bot.providers.base import (
    ProviderAuthError,
    ProviderProtocolError,
    ProviderRejected,
    ProviderUnavailable,
    SubmitOutcomeUnknown,
    TaskState,
)
from bot.providers.http import RetryPolicy, parse_retry_after
from bot.providers.hub import HubProvider, extract_image_urls, parse_task
from bot.providers.transport import make_client
from tests.fakes.hub import FakeHub, Fault
from tests.fakes.images import png
from tests.unit.submitting import submit_to


class Sleeps:
    def __init__(self) -> None:
        self.calls: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.calls.append(seconds)


@pytest.fixture
def sleeps() -> Sleeps:
    return Sleeps()


@pytest.fixture
async def provider(hub: FakeHub, sleeps: Sleeps) -> AsyncIterator[HubProvider]:
    async with make_client(hub.url, 2.0) as client:
        yield HubProvider(
            client,
            SecretStr(hub.api_key),
            RetryPolicy(max_retries=3, base_seconds=0.01, sleep=sleeps, allow_private_urls=True),
        )


async def wait_done(provider: HubProvider, task_id: str) -> object:
    for _ in range(200):
        status = await provider.poll(task_id)
        if status.state.terminal:
            return status
        await asyncio.sleep(0.02)
    raise AssertionError("task never finished")


async def test_submit_sends_model_and_input_and_reads_task_id(provider: HubProvider, hub: FakeHub) -> None:
    hub.plan_next(duration=0.05)
    task_id = await submit_to(provider, "nano-banana", {"prompt": "cat", "num_images": 2}, "job-1")
    assert task_id.startswith("hub-")
    assert hub.submissions == [{"model": "nano-banana", "input": {"prompt": "cat", "num_images": 2}}]
    status = await wait_done(provider, task_id)
    assert status.state is TaskState.SUCCEEDED and len(status.images) == 2  # type: ignore[attr-defined]
    assert status.elapsed_ms == 50  # type: ignore[attr-defined]
    assert await provider.download(status.images[0], 10_000_000) == png()  # type: ignore[attr-defined]


async def test_submit_accepts_the_camel_case_id(provider: HubProvider, hub: FakeHub) -> None:
    hub.id_style = "taskId"
    task_id = await submit_to(provider, "nano-banana", {"prompt": "cat"}, "job-1")
    assert task_id in hub.tasks


async def test_status_progression_pending_processing_completed(provider: HubProvider, hub: FakeHub) -> None:
    hub.plan_next(duration=0.3)
    task_id = await submit_to(provider, "nano-banana", {"prompt": "cat"}, "job-1")
    assert (await provider.poll(task_id)).state is TaskState.PENDING
    await asyncio.sleep(0.1)
    assert (await provider.poll(task_id)).state is TaskState.RUNNING


@pytest.mark.parametrize(
    ("outcome", "state"),
    [("failed", TaskState.FAILED), ("timeout", TaskState.TIMEOUT), ("cancelled", TaskState.CANCELLED)],
)
async def test_failed_tasks_carry_the_reason(
    provider: HubProvider, hub: FakeHub, outcome: str, state: TaskState
) -> None:
    hub.plan_next(duration=0.0, outcome=outcome)
    status = await wait_done(provider, await submit_to(provider, "nano-banana", {"prompt": "cat"}, "job-1"))
    assert status.state is state  # type: ignore[attr-defined]
    assert status.error_message == "The prompt was blocked by the safety filter"  # type: ignore[attr-defined]


async def test_401_is_a_configuration_error_and_never_retried(hub: FakeHub, sleeps: Sleeps) -> None:
    async with make_client(hub.url, 2.0) as client:
        wrong = HubProvider(
            client, SecretStr("wrong-key"), RetryPolicy(max_retries=3, sleep=sleeps, allow_private_urls=True)
        )
        with pytest.raises(ProviderAuthError) as info:
            await submit_to(wrong, "nano-banana", {"prompt": "cat"}, "job-1")
    assert hub.submit_calls == 1 and sleeps.calls == []
    assert "wrong-key" not in str(info.value) and "admin" in render(info.value.user_message, "en")


@pytest.mark.parametrize(("status", "needle"), [(400, "bad input"), (402, "credits"), (422, "bad input")])
async def test_refusals_are_not_retried_and_explain_why(
    provider: HubProvider, hub: FakeHub, sleeps: Sleeps, status: int, needle: str
) -> None:
    hub.submit_faults.append(Fault(status=status, body={"message": "bad input"}))
    with pytest.raises(ProviderRejected) as info:
        await submit_to(provider, "nano-banana", {"prompt": "cat"}, "job-1")
    assert needle in render(info.value.user_message, "en")
    assert hub.submit_calls == 1 and sleeps.calls == []


async def test_unknown_model_is_refused(provider: HubProvider) -> None:
    with pytest.raises(ProviderRejected, match="Unknown model"):
        await submit_to(provider, "dall-e-9", {"prompt": "cat"}, "job-1")


async def test_429_is_retried_honouring_retry_after(provider: HubProvider, hub: FakeHub, sleeps: Sleeps) -> None:
    hub.submit_faults.append(Fault(status=429, body={"message": "slow down"}, headers={"Retry-After": "7"}))
    hub.submit_faults.append(Fault(status=429))
    task_id = await submit_to(provider, "nano-banana", {"prompt": "cat"}, "job-1")
    assert task_id in hub.tasks and hub.submit_calls == 3
    assert sleeps.calls[0] >= 7  # the server asked for 7 s
    assert len(sleeps.calls) == 2


async def test_persistent_429s_give_up_as_unavailable(provider: HubProvider, hub: FakeHub, sleeps: Sleeps) -> None:
    hub.submit_faults.extend(Fault(status=429) for _ in range(10))
    with pytest.raises(ProviderUnavailable):
        await submit_to(provider, "nano-banana", {"prompt": "cat"}, "job-1")
    assert hub.submit_calls == 4  # 1 + 3 retries
    assert len(sleeps.calls) == 3


async def test_a_5xx_at_submit_is_an_unknown_outcome_never_resent(provider: HubProvider, hub: FakeHub) -> None:
    # The Hub has no idempotency key and a 5xx may come after it created the task.
    hub.submit_faults.extend(Fault(status=503) for _ in range(10))
    with pytest.raises(SubmitOutcomeUnknown):
        await submit_to(provider, "nano-banana", {"prompt": "cat"}, "job-1")
    assert hub.submit_calls == 1


async def test_persistent_500s_on_polls_give_up_as_unavailable(provider: HubProvider, hub: FakeHub) -> None:
    task_id = await submit_to(provider, "nano-banana", {"prompt": "cat"}, "job-1")
    hub.poll_faults.extend(Fault(status=500) for _ in range(10))
    with pytest.raises(ProviderUnavailable):
        await provider.poll(task_id)


async def test_connection_refused_is_retried_then_unavailable(sleeps: Sleeps) -> None:
    async with make_client("http://127.0.0.1:9", 1.0) as client:
        provider = HubProvider(
            client, SecretStr("k"), RetryPolicy(max_retries=2, base_seconds=0.01, sleep=sleeps, allow_private_urls=True)
        )
        with pytest.raises(ProviderUnavailable):
            await submit_to(provider, "nano-banana", {"prompt": "cat"}, "job-1")
    assert len(sleeps.calls) == 2


async def test_submit_dropped_after_sending_is_not_retried(provider: HubProvider, hub: FakeHub) -> None:
    hub.submit_faults.append(Fault(drop=True))
    with pytest.raises(SubmitOutcomeUnknown):
        await submit_to(provider, "nano-banana", {"prompt": "cat"}, "job-1")
    assert hub.submit_calls == 1


async def test_poll_retries_dropped_connections(provider: HubProvider, hub: FakeHub) -> None:
    task_id = await submit_to(provider, "nano-banana", {"prompt": "cat"}, "job-1")
    hub.poll_faults.append(Fault(drop=True))
    assert (await provider.poll(task_id)).state in (TaskState.PENDING, TaskState.RUNNING, TaskState.SUCCEEDED)


async def test_malformed_answers_are_protocol_errors(provider: HubProvider, hub: FakeHub) -> None:
    hub.submit_faults.append(Fault(status=200, body={"unexpected": True}))
    with pytest.raises(ProviderProtocolError):
        await submit_to(provider, "nano-banana", {"prompt": "cat"}, "job-1")
    hub.poll_faults.append(Fault(status=200, body="<html>oops</html>"))
    with pytest.raises(ProviderProtocolError):
        await provider.poll("hub-x")


async def public_dns(host: str, port: int) -> list[str]:
    """A resolver for made-up hosts: a public documentation address (no test touches real DNS)."""
    return ["93.184.215.14"]


async def test_api_key_is_never_sent_to_result_hosts(hub: FakeHub) -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, content=png())

    async with make_client("https://api.example", 2.0, transport=httpx.MockTransport(handler)) as client:
        provider = HubProvider(client, SecretStr("secret-key"), RetryPolicy(resolve=public_dns))
        await provider.download("https://cdn.example/out.png", 1_000_000)
    assert "authorization" not in seen[0].headers


async def test_download_refuses_oversize_results(provider: HubProvider, hub: FakeHub) -> None:
    hub.plan_next(duration=0.0)
    status = await wait_done(provider, await submit_to(provider, "nano-banana", {"prompt": "cat"}, "job-1"))
    with pytest.raises(Exception, match=r"exceeds|bytes"):
        await provider.download(status.images[0], 10)  # type: ignore[attr-defined]


def test_image_urls_are_read_from_every_known_shape() -> None:
    uri = "data:image/png;base64," + base64.b64encode(b"x").decode()
    assert extract_image_urls({"images": [{"url": "https://a/1.png"}]}) == ("https://a/1.png",)
    assert extract_image_urls({"images": ["https://a/1.png"]}) == ("https://a/1.png",)
    assert extract_image_urls({"image": {"url": "https://a/1.png"}}) == ("https://a/1.png",)
    assert extract_image_urls({"url": "https://a/1.png"}) == ("https://a/1.png",)
    assert extract_image_urls({"imageUrls": ["https://a/1.png"]}) == ("https://a/1.png",)
    assert extract_image_urls({"output": {"images": [{"url": uri}]}}) == (uri,)
    assert extract_image_urls({"description": "nothing"}) == ()
    assert extract_image_urls({"images": [{"url": "file:///etc/passwd"}]}) == ()


def test_ready_without_a_known_status_is_not_taken_for_success() -> None:
    assert parse_task({"status": "weird", "ready": True}).state is TaskState.RUNNING
    with_image = {"status": "weird", "ready": True, "data": {"images": ["https://a"]}}
    assert parse_task(with_image).state is TaskState.SUCCEEDED
    assert parse_task({"status": "processing", "ready": False}).state is TaskState.RUNNING


async def test_data_uri_results_are_decoded(provider: HubProvider) -> None:
    encoded = base64.b64encode(png()).decode()
    assert await provider.download(f"data:image/png;base64,{encoded}", 1_000_000) == png()
    with pytest.raises(ProviderProtocolError):
        await provider.download("data:image/png;base64,!!!", 1_000_000)


def test_retry_after_forms() -> None:
    assert parse_retry_after("3") == 3.0
    assert parse_retry_after(None) is None
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0
    assert parse_retry_after("soon") is None
