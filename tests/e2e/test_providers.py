"""`/imagine` served by each image API, failover the user can see, and `/models`."""

from __future__ import annotations

from collections.abc import Callable

from bot.config import Settings
from tests.e2e.test_buttons import buttons
from tests.e2e.test_imagine import ephemeral_reply, has_files
from tests.fakes.discord import FakeDiscord
from tests.fakes.hub import FakeHub, Fault
from tests.fakes.mindvideo import FakeMindVideo
from tests.harness import running_bot


def served_by(result: dict[str, object]) -> str:
    embed = result["embeds"][0]  # type: ignore[index]
    return next(f["value"] for f in embed["fields"] if f["name"] == "Service")


async def test_imagine_on_the_gemini_endpoint(
    settings_for: Callable[..., Settings], discord_fake: FakeDiscord, hub: FakeHub
) -> None:
    async with running_bot(settings_for(provider_order={"nano-banana-pro": ["gemini", "hub"]})):
        await discord_fake.slash(
            "imagine", {"prompt": "a fox", "model": "nano-banana-pro", "count": 2, "resolution": "2K"}
        )
        result = await discord_fake.wait_for_message(has_files)
    assert served_by(result) == "MountSea Gemini" and len(result["attachments"]) == 2
    assert [s["endpoint"] for s in hub.submissions] == ["gemini", "gemini"]  # one task per image
    assert hub.submissions[0]["model"] == "nano-banana-pro" and hub.submissions[0]["resolution"] == "2K"


async def test_imagine_on_mindvideo_with_its_reported_cost(
    settings_for: Callable[..., Settings], discord_fake: FakeDiscord, hub: FakeHub, mindvideo_fake: FakeMindVideo
) -> None:
    settings = settings_for(
        provider_order={"gpt-image-2": ["mindvideo"]},
        mindvideo_api_key=mindvideo_fake.api_key,
        mindvideo_base_url=mindvideo_fake.url,
    )
    async with running_bot(settings):
        await discord_fake.slash("imagine", {"prompt": "a fox", "model": "gpt-image-2", "quality": "low"})
        result = await discord_fake.wait_for_message(has_files)
        info = await ephemeral_reply(discord_fake, await discord_fake.click(result, buttons(result)["Info"]))
        usage = await ephemeral_reply(discord_fake, await discord_fake.slash("usage"))
    assert served_by(result) == "MindVideo"
    assert mindvideo_fake.submissions[0] == {"model": "gpt-image-2", "input": {"prompt": "a fox", "n": 1}}
    assert "on MindVideo (it reported a cost of 0.0351)" in info
    assert "service cost 0.0351" in usage
    assert hub.submit_calls == 0


async def test_failover_is_visible_and_charges_once(
    settings_for: Callable[..., Settings], discord_fake: FakeDiscord, hub: FakeHub, mindvideo_fake: FakeMindVideo
) -> None:
    # Rate-limited on every try: the Hub created nothing, so MindVideo may take the job.
    hub.submit_faults.extend(Fault(status=429) for _ in range(20))
    settings = settings_for(
        provider_order={"nano-banana": ["hub", "mindvideo"]},
        mindvideo_api_key=mindvideo_fake.api_key,
        mindvideo_base_url=mindvideo_fake.url,
    )
    async with running_bot(settings):
        await discord_fake.slash("imagine", {"prompt": "a fox"})
        result = await discord_fake.wait_for_message(has_files)
        usage = await ephemeral_reply(discord_fake, await discord_fake.slash("usage"))
    assert served_by(result) == "MindVideo"
    assert len(mindvideo_fake.tasks) == 1 and hub.tasks == {}
    assert "**24** credits left" in usage


async def test_models_lists_families_services_and_costs(
    settings_for: Callable[..., Settings], discord_fake: FakeDiscord
) -> None:
    async with running_bot(settings_for()):
        listing = await ephemeral_reply(discord_fake, await discord_fake.slash("models"))
    assert "**Nano Banana** (default) — 1 credit per image; served by MountSea Hub, MountSea Gemini" in listing
    assert "**GPT Image 2** — 2 credits per image; served by MountSea Hub\n" in listing  # no MindVideo key here
    assert "`quality` (auto, low, medium, high)" in listing


async def test_a_5xx_at_submit_is_never_resent_nor_failed_over(
    settings_for: Callable[..., Settings], discord_fake: FakeDiscord, hub: FakeHub, mindvideo_fake: FakeMindVideo
) -> None:
    # A 502 may come after the Hub created the task: sending it again, here or elsewhere, could bill twice.
    hub.submit_faults.extend(Fault(status=502) for _ in range(20))
    settings = settings_for(
        provider_order={"nano-banana": ["hub", "mindvideo"]},
        mindvideo_api_key=mindvideo_fake.api_key,
        mindvideo_base_url=mindvideo_fake.url,
    )
    async with running_bot(settings):
        await discord_fake.slash("imagine", {"prompt": "a fox"})
        status = await discord_fake.wait_for_message(
            lambda m: "Failed" in str(m.get("embeds")), kinds=("message_create", "message_update")
        )
        usage = await ephemeral_reply(discord_fake, await discord_fake.slash("usage"))
    assert hub.submit_calls == 1 and mindvideo_fake.tasks == {}
    assert "did not confirm the request" in str(status["embeds"])
    assert "**25** credits left" in usage
