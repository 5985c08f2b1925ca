"""The startup key checks: a refused key is one line, an accepted one or an unreachable service is not."""

from __future__ import annotations

import pytest
from pydantic import SecretStr

from bot.ops.startup import check_api_keys, invite_url
from bot.providers.http import RetryPolicy
from bot.providers.hub import HubProvider
from bot.providers.live_catalog import ModelCatalogue
from bot.providers.mindvideo import MindVideoProvider
from bot.providers.transport import make_client
from tests.fakes.hub import FakeHub
from tests.fakes.mindvideo import FakeMindVideo

FAST = RetryPolicy(max_retries=1, base_seconds=0.01)


async def test_accepted_keys_pass_and_load_the_live_list(hub: FakeHub, mindvideo_fake: FakeMindVideo) -> None:
    async with make_client(hub.url, 2.0) as hub_http, make_client(mindvideo_fake.url, 2.0) as mv_http:
        hub_provider = HubProvider(hub_http, SecretStr(hub.api_key), FAST)
        providers = {
            "hub": hub_provider,
            "mindvideo": MindVideoProvider(mv_http, SecretStr(mindvideo_fake.api_key), FAST),
        }
        catalogue = ModelCatalogue(hub_provider)
        assert await check_api_keys(providers, catalogue) is None
    assert catalogue.live and hub.models_calls == 1


async def test_an_unreachable_service_is_only_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    async with make_client("http://127.0.0.1:9", 1.0) as http:
        providers = {"mindvideo": MindVideoProvider(http, SecretStr("key-123456"), FAST)}
        assert await check_api_keys(providers, ModelCatalogue(None)) is None
    assert "could not check the MindVideo API key" in caplog.text


async def test_a_refused_key_names_the_setting(mindvideo_fake: FakeMindVideo) -> None:
    async with make_client(mindvideo_fake.url, 2.0) as http:
        providers = {"mindvideo": MindVideoProvider(http, SecretStr("wrong-key"), FAST)}
        line = await check_api_keys(providers, ModelCatalogue(None))
    assert line is not None and line.startswith("Configuration error: MindVideo refused MINDVIDEO_API_KEY")
    assert "wrong-key" not in line


def test_the_invite_asks_for_exactly_the_permissions_the_bot_needs() -> None:
    assert invite_url(123) == (
        "https://discord.com/oauth2/authorize?client_id=123&scope=bot+applications.commands&permissions=274878024704"
    )
