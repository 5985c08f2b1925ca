"""The Hub's live model list: parsing, hourly refresh, fallback, and provider request metrics."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from pydantic import SecretStr

from bot.i18n import render
from bot.ops.metrics import Metrics
from bot.providers.base import ProviderAuthError, ProviderProtocolError, ProviderRejected, ProviderUnavailable
from bot.providers.http import RetryPolicy
from bot.providers.hub import HubProvider, parse_model_list
from bot.providers.live_catalog import ModelCatalogue
from bot.providers.transport import make_client
from tests.fakes.hub import FakeHub, Fault
from tests.unit.submitting import submit_to


@pytest.fixture
async def metrics_hub(hub: FakeHub) -> AsyncIterator[tuple[HubProvider, Metrics]]:
    metrics = Metrics()
    async with make_client(hub.url, 2.0) as client:
        policy = RetryPolicy(max_retries=1, base_seconds=0.01)
        yield HubProvider(client, SecretStr(hub.api_key), policy, metrics.provider_request), metrics


def count(metrics: Metrics, outcome: str) -> float:
    value = metrics.registry.get_sample_value(
        "imagebot_provider_requests_total", {"provider": "hub", "outcome": outcome}
    )
    return value or 0.0


@pytest.mark.parametrize(
    "payload",
    [
        ["nano-banana", "gpt-image-2"],
        {"data": [{"model": "nano-banana"}, {"id": "gpt-image-2"}, {"model": "veo", "capability": "video"}]},
        {"models": [{"name": "nano-banana"}, {"slug": "gpt-image-2"}]},
    ],
)
def test_model_lists_in_any_plausible_shape(payload: Any) -> None:
    assert parse_model_list(payload) == {"nano-banana", "gpt-image-2"}


@pytest.mark.parametrize("payload", [{"error": "x"}, [{"weird": 1}], "nano-banana"])
def test_unreadable_model_lists_are_protocol_errors(payload: Any) -> None:
    with pytest.raises(ProviderProtocolError):
        parse_model_list(payload)


async def test_the_catalogue_follows_the_hub_every_interval(
    hub: FakeHub, metrics_hub: tuple[HubProvider, Metrics]
) -> None:
    provider, _ = metrics_hub
    catalogue = ModelCatalogue(provider, refresh_seconds=0.05)
    await catalogue.refresh()
    assert catalogue.live and catalogue.is_offered("nano-banana-pro")
    hub.listed_models.discard("nano-banana-pro")
    catalogue.start()
    try:
        async with asyncio.timeout(5):
            while catalogue.is_offered("nano-banana-pro"):
                await asyncio.sleep(0.02)
    finally:
        await catalogue.close()
    assert "nano-banana-pro" not in catalogue.offered_families()
    assert "no longer offered" in render(catalogue.refusal("nano-banana-pro") or "", "en")
    assert hub.models_calls >= 2


async def test_models_the_bot_cannot_validate_are_never_offered(
    hub: FakeHub, metrics_hub: tuple[HubProvider, Metrics]
) -> None:
    hub.listed_models.add("flux-9000")
    catalogue = ModelCatalogue(metrics_hub[0])
    await catalogue.refresh()
    assert not catalogue.is_offered("flux-9000") and catalogue.is_offered("nano-banana")


async def test_failures_fall_back_to_the_bundled_catalogue(
    hub: FakeHub, metrics_hub: tuple[HubProvider, Metrics]
) -> None:
    provider, _ = metrics_hub
    catalogue = ModelCatalogue(provider)
    hub.listed_models = {"nano-banana"}
    await catalogue.refresh()
    assert not catalogue.is_offered("gpt-image-2")
    hub.models_faults.extend([Fault(status=503), Fault(status=503)])
    await catalogue.refresh()
    assert not catalogue.live and catalogue.is_offered("gpt-image-2")


async def test_a_refused_key_is_raised_for_the_startup_check(hub: FakeHub) -> None:
    async with make_client(hub.url, 2.0) as client:
        catalogue = ModelCatalogue(HubProvider(client, SecretStr("wrong"), RetryPolicy()))
        with pytest.raises(ProviderAuthError):
            await catalogue.refresh(raise_auth=True)
        await catalogue.refresh()  # in the hourly refresh it is only logged
    assert not catalogue.live


async def test_provider_requests_are_counted_by_outcome(hub: FakeHub, metrics_hub: tuple[HubProvider, Metrics]) -> None:
    provider, metrics = metrics_hub
    task_id = await submit_to(provider, "nano-banana", {"prompt": "cat"}, "job-1")
    await provider.poll(task_id)
    hub.submit_faults.append(Fault(status=422, body={"message": "bad"}))
    with pytest.raises(ProviderRejected):
        await submit_to(provider, "nano-banana", {"prompt": "cat"}, "job-2")
    hub.submit_faults.extend([Fault(status=429), Fault(status=429)])
    with pytest.raises(ProviderUnavailable):
        await submit_to(provider, "nano-banana", {"prompt": "cat"}, "job-3")
    hub.poll_faults.append(Fault(status=401))
    with pytest.raises(ProviderAuthError):
        await provider.poll(task_id)
    hub.poll_faults.append(Fault(status=200, body="not json"))
    with pytest.raises(ProviderProtocolError):
        await provider.poll(task_id)
    assert [count(metrics, o) for o in ("ok", "rejected", "unavailable", "auth", "unknown")] == [2, 1, 1, 1, 1]
