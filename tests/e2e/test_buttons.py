"""Buttons on results and status messages, clicked through the fake Discord."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from bot.client import ImageBot
from bot.config import Settings
from tests.e2e.test_imagine import ephemeral_reply, has_files
from tests.fakes.discord import FakeDiscord
from tests.fakes.discord.payloads import MANAGE_GUILD, MANAGE_MESSAGES, MEMBER_PERMISSIONS
from tests.fakes.hub import FakeHub, Plan
from tests.fakes.images import png
from tests.harness import running_bot


def buttons(message: dict[str, Any]) -> dict[str, str]:
    """label -> custom_id of a message's buttons."""
    return {c["label"]: c["custom_id"] for row in message["components"] for c in row["components"]}


async def result_of(discord_fake: FakeDiscord, hub: FakeHub, options: dict[str, Any], n: int = 1) -> dict[str, Any]:
    await discord_fake.slash("imagine", options)
    async with asyncio.timeout(10):
        while True:
            results = [m for m in discord_fake.channel_messages() if has_files(m) and "ready" in m["content"]]
            if len(results) >= n:
                return results[n - 1]
            await asyncio.sleep(0.02)


async def submission(hub: FakeHub, index: int) -> dict[str, Any]:
    async with asyncio.timeout(10):
        while len(hub.submissions) <= index:
            await asyncio.sleep(0.01)
    return hub.submissions[index]


def hosted_bytes(discord_fake: FakeDiscord, url: str) -> bytes:
    hosted = {a["url"]: a for m in discord_fake.channel_messages() for a in m["attachments"]}
    return discord_fake.attachment_bytes(hosted[url])


async def test_reroll_repeats_the_request_with_a_new_seed(
    bot: ImageBot, discord_fake: FakeDiscord, hub: FakeHub
) -> None:
    result = await result_of(
        discord_fake, hub, {"prompt": "a fox", "model": "nano-banana-2", "seed": 5, "aspect_ratio": "16:9"}
    )
    click = await discord_fake.click(result, buttons(result)["Reroll"])
    assert "job **#2**" in await ephemeral_reply(discord_fake, click)
    first, second = hub.submissions[0], await submission(hub, 1)
    assert second["model"] == "nano-banana-2" and second["input"]["prompt"] == "a fox"
    assert second["input"]["aspect_ratio"] == "16:9" and second["input"]["seed"] != first["input"]["seed"]
    status = await discord_fake.wait_for_message(
        lambda m: m.get("message_reference", {}).get("message_id") == result["id"] and bool(m["embeds"])
    )
    assert status["author"]["bot"]  # the new job's status replies to the result


async def test_vary_edit_and_upscale_use_the_chosen_image(
    bot: ImageBot, discord_fake: FakeDiscord, hub: FakeHub
) -> None:
    result = await result_of(discord_fake, hub, {"prompt": "a fox", "model": "nano-banana-pro", "count": 2})
    labels = buttons(result)
    assert {"V1", "V2", "E1", "E2", "U1", "U2", "Reroll", "Info", "Delete"} <= set(labels)
    second_image = discord_fake.attachment_bytes(result["attachments"][1])

    await discord_fake.click(result, labels["V2"])
    vary = await submission(hub, 1)
    assert vary["model"] == "nano-banana-pro-edit" and "a fox" in vary["input"]["prompt"]
    assert [hosted_bytes(discord_fake, u) for u in vary["input"]["image_urls"]] == [second_image]

    await discord_fake.click(result, labels["U2"])
    up = await submission(hub, 2)
    assert up["model"] == "nano-banana-pro-edit" and up["input"]["resolution"] == "2K"
    assert [hosted_bytes(discord_fake, u) for u in up["input"]["image_urls"]] == [second_image]

    opened = await discord_fake.click(result, labels["E1"])
    await discord_fake.wait_for(lambda e: e.kind == "callback" and e.data["interaction"] == opened.id)
    field = discord_fake.modal_fields(opened)[0]["custom_id"]
    await discord_fake.submit_modal(opened, {field: "add a scarf"})
    edit = await submission(hub, 3)
    assert edit["model"] == "nano-banana-pro-edit" and edit["input"]["prompt"] == "add a scarf"
    assert [hosted_bytes(discord_fake, u) for u in edit["input"]["image_urls"]] == [
        discord_fake.attachment_bytes(result["attachments"][0])
    ]


async def test_no_upscale_where_the_family_has_no_higher_resolution(
    bot: ImageBot, discord_fake: FakeDiscord, hub: FakeHub
) -> None:
    result = await result_of(discord_fake, hub, {"prompt": "a fox", "model": "nano-banana"})
    assert set(buttons(result)) == {"Reroll", "Info", "Delete", "Vary", "Edit"}


async def test_info_shows_everything_privately(bot: ImageBot, discord_fake: FakeDiscord, hub: FakeHub) -> None:
    result = await result_of(discord_fake, hub, {"prompt": "a fox @everyone", "seed": 77})
    click = await discord_fake.click(result, buttons(result)["Info"], user="bob")  # anyone may look
    info = await ephemeral_reply(discord_fake, click)
    task_id = next(iter(hub.tasks))
    assert "a fox @everyone" in info and "**Seed**: 77" in info and task_id in info and "**Credits**: 1" in info


async def test_strangers_are_refused_unless_the_server_allows_everyone(
    bot: ImageBot, discord_fake: FakeDiscord, hub: FakeHub
) -> None:
    result = await result_of(discord_fake, hub, {"prompt": "mine"})
    refused = await discord_fake.click(result, buttons(result)["Reroll"], user="bob")
    assert "Only <@" in await ephemeral_reply(discord_fake, refused)
    await asyncio.sleep(0.1)
    assert hub.submit_calls == 1
    setting = await discord_fake.slash(
        "settings buttons", {"everyone": True}, user="admin", member_permissions=MEMBER_PERMISSIONS | MANAGE_GUILD
    )
    assert "everyone" in await ephemeral_reply(discord_fake, setting)
    await discord_fake.click(result, buttons(result)["Reroll"], user="bob")
    assert (await submission(hub, 1))["input"]["prompt"] == "mine"
    assert (await bot.store.get(2)).user_id == int(discord_fake.users["bob"]["id"])  # bob pays for his reroll


async def test_delete_is_for_the_requester_or_moderators(
    bot: ImageBot, discord_fake: FakeDiscord, hub: FakeHub
) -> None:
    result = await result_of(discord_fake, hub, {"prompt": "mine"})
    refused = await discord_fake.click(result, buttons(result)["Delete"], user="bob")
    assert "or a moderator" in await ephemeral_reply(discord_fake, refused)
    assert any(m["id"] == result["id"] for m in discord_fake.channel_messages())
    await discord_fake.click(
        result, buttons(result)["Delete"], user="bob", member_permissions=MEMBER_PERMISSIONS | MANAGE_MESSAGES
    )
    await discord_fake.wait_for(lambda e: e.kind == "message_delete" and e.data["id"] == result["id"])


async def test_cancel_stops_polling_and_gives_the_credits_back(
    bot: ImageBot, discord_fake: FakeDiscord, hub: FakeHub
) -> None:
    hub.default_plan = lambda: Plan(duration=30)
    await discord_fake.slash("imagine", {"prompt": "slow"})
    status = await discord_fake.wait_for_message(
        lambda m: bool(m["components"]) and "Generating" in str(m["embeds"]), kinds=("message_create", "message_update")
    )
    click = await discord_fake.click(status, buttons(status)["Cancel"])
    assert "Cancelled job #1. Your 1 credit was given back." in await ephemeral_reply(discord_fake, click)
    final = await discord_fake.wait_for_message(lambda m: "Cancelled" in str(m["embeds"]), kinds=("message_update",))
    assert final["components"] == []  # no Cancel button any more
    polls = hub.poll_calls
    await asyncio.sleep(0.3)
    assert hub.poll_calls == polls
    usage = await ephemeral_reply(discord_fake, await discord_fake.slash("usage"))
    assert "**25** credits left" in usage and "cancelled · 1 credit (given back)" in usage


async def test_buttons_keep_working_after_a_restart(
    settings_for: Callable[..., Settings], discord_fake: FakeDiscord, hub: FakeHub
) -> None:
    settings = settings_for()
    async with running_bot(settings):
        result = await result_of(discord_fake, hub, {"prompt": "old result", "model": "nano-banana-2"})
    async with running_bot(settings):  # a new process, same database
        click = await discord_fake.click(result, buttons(result)["Vary"])
        assert "job **#2**" in await ephemeral_reply(discord_fake, click)
        vary = await submission(hub, 1)
    assert vary["model"] == "nano-banana-2-edit"
    assert [hosted_bytes(discord_fake, u) for u in vary["input"]["image_urls"]] == [png()]


async def test_rerolling_an_edit_reuses_its_input_images(
    bot: ImageBot, discord_fake: FakeDiscord, hub: FakeHub
) -> None:
    await discord_fake.slash("edit", {"prompt": "snow", "image": ("cat.png", png(20, 20, (1, 2, 3)))})
    result = await discord_fake.wait_for_message(lambda m: has_files(m) and "ready" in m["content"])
    await discord_fake.click(result, buttons(result)["Reroll"])
    again = await submission(hub, 1)
    assert again["model"] == "nano-banana-edit" and again["input"]["prompt"] == "snow"
    assert [hosted_bytes(discord_fake, u) for u in again["input"]["image_urls"]] == [png(20, 20, (1, 2, 3))]


async def test_a_click_on_a_vanished_job_is_explained(bot: ImageBot, discord_fake: FakeDiscord) -> None:
    ghost = await discord_fake.send_message("old", user="alice")
    ghost["components"] = [
        {"type": 1, "components": [{"type": 2, "style": 1, "label": "Reroll", "custom_id": "img:rr:999999"}]}
    ]
    click = await discord_fake.click(ghost, "img:rr:999999")
    assert "no longer available" in await ephemeral_reply(discord_fake, click)
