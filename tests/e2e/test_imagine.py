"""`/imagine` end to end: the real discord.py client, the fake Discord, the fake Hub."""

from __future__ import annotations

import asyncio
import io
import logging
import time
from collections.abc import Callable
from typing import Any

import pytest
from PIL import Image

from bot.client import ImageBot
from bot.config import Settings
from bot.jobs.models import JobState
from bot.publisher import DiscordPublisher
from tests.fakes.discord import FakeDiscord
from tests.fakes.discord.payloads import BOT_PERMISSIONS
from tests.fakes.hub import FakeHub, Plan
from tests.fakes.images import noise_png
from tests.harness import fake_discord, running_bot


def has_files(message: dict[str, Any]) -> bool:
    return bool(message["attachments"])


def embed_title(message: dict[str, Any]) -> str:
    return str((message.get("embeds") or [{}])[0].get("title", ""))


async def delivered_result(discord_fake: FakeDiscord) -> dict[str, Any]:
    """The next result message, once the bot has recorded it (its status message then says Done), as a member
    would see it before replying to it."""
    result = await discord_fake.wait_for_message(has_files)
    await discord_fake.wait_for_message(lambda m: "Done" in embed_title(m), kinds=("message_create", "message_update"))
    return result


async def ephemeral_reply(discord_fake: FakeDiscord, interaction: Any) -> str:
    """The text the user privately sees in answer to their command."""

    def answered(message: dict[str, Any]) -> bool:
        return int(message["id"]) == interaction.original_id and bool(message["content"])

    if interaction.original_id is None:
        await discord_fake.wait_for(lambda e: e.kind == "callback" and e.data["interaction"] == interaction.id)
    original = discord_fake.original(interaction)
    if original is None or not original["content"]:
        original = await discord_fake.wait_for_message(answered, kinds=("message_create", "message_update"))
    assert original["flags"] & 64, "the answer should be ephemeral"
    return str(original["content"])


async def test_imagine_posts_the_image_and_tracks_status(
    bot: ImageBot, discord_fake: FakeDiscord, hub: FakeHub
) -> None:
    hub.plan_next(duration=0.1)  # polled 0.2 s apart at most: done well within the half second "0s" allows
    interaction = await discord_fake.slash(
        "imagine",
        {
            "prompt": "a lighthouse at dusk",
            "model": "nano-banana-pro",
            "aspect_ratio": "16:9",
            "resolution": "2K",
            "count": 2,
            "seed": 1234,
        },
    )
    result = await discord_fake.wait_for_message(has_files)
    # Options reach the provider exactly.
    assert hub.submissions[0]["model"] == "nano-banana-pro"
    assert {
        k: hub.submissions[0]["input"][k] for k in ("prompt", "aspect_ratio", "resolution", "num_images", "seed")
    } == {"prompt": "a lighthouse at dusk", "aspect_ratio": "16:9", "resolution": "2K", "num_images": 2, "seed": 1234}
    # Two valid PNG files, with model, seed and time.
    assert len(result["attachments"]) == 2
    for attachment in result["attachments"]:
        image = Image.open(io.BytesIO(discord_fake.attachment_bytes(attachment)))
        assert image.format == "PNG"
    fields = {f["name"]: f["value"] for f in result["embeds"][0]["fields"]}
    assert fields["Model"] == "Nano Banana Pro" and fields["Seed"] == "1234" and fields["Time"] == "0s"
    assert result["embeds"][0]["description"] == "a lighthouse at dusk"
    # The requester is told privately that the job is on, and pinged (alone) when it is done.
    assert "job **#1**" in await ephemeral_reply(discord_fake, interaction)
    assert [m["id"] for m in result["mentions"]] == [str(interaction.user_id)]
    # The public status message went from generating to done, and the result replies to it.
    status_id = result["message_reference"]["message_id"]
    await discord_fake.wait_for_message(
        lambda m: m["id"] == status_id and embed_title(m) == "✅ Done", kinds=("message_update",)
    )
    titles = [
        embed_title(e.data)
        for e in discord_fake.events
        if e.kind in ("message_create", "message_update") and e.data["id"] == status_id
    ]
    assert titles[0] == "🎨 Generating…" and titles[-1] == "✅ Done"
    job = await bot.store.get(1)
    assert job.state is JobState.SUCCEEDED and job.result_message_id == int(result["id"])


async def test_acknowledges_before_anything_reaches_the_provider(
    bot: ImageBot, discord_fake: FakeDiscord, hub: FakeHub
) -> None:
    interaction = await discord_fake.slash("imagine", {"prompt": "cat"})
    ack = await discord_fake.wait_for(lambda e: e.kind == "callback" and e.data["interaction"] == interaction.id)
    # One private message that already names the job: no "thinking…" and no second call to edit it.
    assert ack.data["type"] == 4 and ack.data["data"]["flags"] == 64
    assert "**#1**" in ack.data["data"]["content"]
    await discord_fake.wait_for_message(has_files)
    submitted = next(t for (t, method, path) in hub_requests(hub) if method == "POST")
    assert ack.at <= submitted
    assert ack.at - interaction.sent_at < 1.0
    assert not [path for _, method, path in discord_fake.requests if path.endswith("/messages/@original")]


def hub_requests(hub: FakeHub) -> list[tuple[float, str, str]]:
    return [(task.created, "POST", task.id) for task in hub.tasks.values()]


async def test_unsupported_option_is_refused_privately_and_nothing_is_sent(
    bot: ImageBot, discord_fake: FakeDiscord, hub: FakeHub
) -> None:
    interaction = await discord_fake.slash("imagine", {"prompt": "cat", "model": "nano-banana", "resolution": "4K"})
    answer = await ephemeral_reply(discord_fake, interaction)
    assert "does not support `resolution`" in answer and "`aspect_ratio`" in answer
    interaction = await discord_fake.slash("imagine", {"prompt": "   "})
    assert "prompt is empty" in await ephemeral_reply(discord_fake, interaction)
    await asyncio.sleep(0.1)
    assert hub.submit_calls == 0
    assert discord_fake.channel_messages() == []


async def test_failed_task_is_explained_on_the_status_message(
    bot: ImageBot, discord_fake: FakeDiscord, hub: FakeHub
) -> None:
    hub.plan_next(duration=0.05, outcome="failed", error_message="Content blocked by safety policy")
    await discord_fake.slash("imagine", {"prompt": "something forbidden"})
    failed = await discord_fake.wait_for_message(
        lambda m: embed_title(m) == "❌ Failed", kinds=("message_create", "message_update")
    )
    why = next(f["value"] for f in failed["embeds"][0]["fields"] if f["name"] == "Why")
    assert "Content blocked by safety policy" in why
    assert not any(has_files(m) for m in discord_fake.channel_messages())


async def test_provider_down_is_explained(settings_for: Callable[..., Settings], discord_fake: FakeDiscord) -> None:
    async with running_bot(settings_for(mountsea_base_url="http://127.0.0.1:9", provider_max_retries=1)):
        await discord_fake.slash("imagine", {"prompt": "cat"})
        failed = await discord_fake.wait_for_message(
            lambda m: embed_title(m) == "❌ Failed", kinds=("message_create", "message_update")
        )
    assert "unavailable" in failed["embeds"][0]["fields"][0]["value"]


async def test_everyone_in_a_prompt_pings_nobody(bot: ImageBot, discord_fake: FakeDiscord, hub: FakeHub) -> None:
    prompt = "@everyone @here <@&123> look at this <@999>"
    interaction = await discord_fake.slash("imagine", {"prompt": prompt})
    await discord_fake.wait_for_message(has_files)
    messages = discord_fake.channel_messages()
    assert any(prompt in str(m["embeds"]) for m in messages)
    for message in messages:
        assert not message["mention_everyone"] and message["mention_roles"] == []
        assert {m["id"] for m in message["mentions"]} <= {str(interaction.user_id)}


async def test_oversize_result_is_compressed_under_the_channel_limit(
    settings_for: Callable[..., Settings], hub: FakeHub
) -> None:
    hub.plan_next(duration=0.0, image=noise_png(500, 500))  # ~750 kB, over the limit
    async with fake_discord(upload_limit=400_000) as discord_fake, running_bot(settings_for()):
        await discord_fake.slash("imagine", {"prompt": "noise"})
        result = await discord_fake.wait_for_message(has_files)
    attachment = result["attachments"][0]
    assert attachment["size"] <= 400_000 and attachment["filename"].endswith(".jpg")
    assert "compressed" in result["embeds"][0]["footer"]["text"]
    Image.open(io.BytesIO(discord_fake.attachment_bytes(attachment))).load()


async def test_result_that_cannot_fit_is_a_clear_failure(settings_for: Callable[..., Settings], hub: FakeHub) -> None:
    hub.plan_next(duration=0.0, image=noise_png(400, 400))
    async with fake_discord(upload_limit=3_000) as discord_fake, running_bot(settings_for()):
        await discord_fake.slash("imagine", {"prompt": "noise"})
        failed = await discord_fake.wait_for_message(
            lambda m: embed_title(m) == "❌ Failed", kinds=("message_create", "message_update")
        )
    assert "too large" in failed["embeds"][0]["fields"][0]["value"]


async def test_restart_mid_poll_delivers_exactly_once(
    settings_for: Callable[..., Settings], discord_fake: FakeDiscord, hub: FakeHub
) -> None:
    settings = settings_for()
    hub.plan_next(duration=1.0)
    async with running_bot(settings) as first:
        await discord_fake.slash("imagine", {"prompt": "survive a restart"})
        async with asyncio.timeout(5):
            while hub.submit_calls == 0 or (await first.store.get(1)).state is JobState.QUEUED:
                await asyncio.sleep(0.02)
    assert not any(has_files(m) for m in discord_fake.channel_messages())
    async with running_bot(settings):
        await discord_fake.wait_for_message(has_files)
        await asyncio.sleep(0.3)
    assert hub.submit_calls == 1
    assert sum(has_files(m) for m in discord_fake.channel_messages()) == 1
    assert discord_fake.identifies == 2


async def test_delivery_works_after_the_interaction_token_expired(
    settings_for: Callable[..., Settings], hub: FakeHub
) -> None:
    hub.plan_next(duration=1.0)  # finishes after the token died
    async with fake_discord(token_lifetime=0.5) as discord_fake, running_bot(settings_for()):
        await discord_fake.slash("imagine", {"prompt": "slow one"})
        result = await discord_fake.wait_for_message(has_files, timeout=10)
    assert not any(e.kind == "rejected" for e in discord_fake.events)
    assert result["attachments"]


async def test_missing_channel_permissions_are_explained(
    bot: ImageBot, discord_fake: FakeDiscord, hub: FakeHub
) -> None:
    discord_fake.app_permissions[discord_fake.channel_id] = BOT_PERMISSIONS & ~(1 << 15)  # no Attach Files
    interaction = await discord_fake.slash("imagine", {"prompt": "cat"})
    assert "Attach Files" in await ephemeral_reply(discord_fake, interaction)
    assert hub.submit_calls == 0


async def test_discord_rate_limits_are_waited_out(bot: ImageBot, discord_fake: FakeDiscord, hub: FakeHub) -> None:
    discord_fake.rate_limit("POST", r"/channels/\d+/messages$", count=2, retry_after=0.05)
    await discord_fake.slash("imagine", {"prompt": "cat"})
    result = await discord_fake.wait_for_message(has_files)
    assert result["attachments"]


async def test_a_request_can_be_answered_again_through_its_stored_token(
    bot: ImageBot, discord_fake: FakeDiscord, hub: FakeHub
) -> None:
    # What a process that takes a job over after a crash does when the member's answer may still say "thinking…".
    hub.default_plan = lambda: Plan(duration=5)
    interaction = await discord_fake.slash("imagine", {"prompt": "a fox"})
    assert "On it" in await ephemeral_reply(discord_fake, interaction)
    job = await bot.store.get(1)
    assert job.answer_token == interaction.token
    await DiscordPublisher(bot).answer(job, "answered again")
    assert discord_fake.original(interaction)["content"] == "answered again"  # type: ignore[index]


async def test_a_request_acknowledged_too_late_ends_refunded_without_an_error(
    bot: ImageBot, discord_fake: FakeDiscord, hub: FakeHub, caplog: pytest.LogCaptureFixture
) -> None:
    # Under overload an acknowledgement can miss Discord's 3 s: the member saw it fail, so nothing may run.
    await discord_fake.slash("imagine", {"prompt": "late"}, sent_at=time.time() - 5)
    async with asyncio.timeout(5):
        while (row := await bot.db.fetchone("SELECT state, closed_at FROM jobs")) is None or row[1] is None:
            await asyncio.sleep(0.02)
    assert row[0] == "failed" and hub.submit_calls == 0
    refunds = await bot.db.fetchone("SELECT COUNT(*) FROM quota_ledger WHERE kind = 'refund'")
    assert refunds is not None and refunds[0] == 1
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
