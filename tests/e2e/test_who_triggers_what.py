"""Who can start what: reply pings, crossing edit forms, and who may cancel a job."""

from __future__ import annotations

import asyncio
import sys

import pytest

from bot.client import ImageBot
from tests.e2e.test_buttons import buttons, result_of, submission
from tests.e2e.test_edit import hosted_inputs, mention
from tests.e2e.test_imagine import ephemeral_reply, has_files
from tests.fakes.discord import FakeDiscord
from tests.fakes.discord.payloads import MANAGE_GUILD, MANAGE_MESSAGES, MEMBER_PERMISSIONS
from tests.fakes.hub import FakeHub, Plan


async def allow_everyone(discord_fake: FakeDiscord) -> None:
    setting = await discord_fake.slash(
        "settings buttons", {"everyone": True}, user="admin", member_permissions=MEMBER_PERMISSIONS | MANAGE_GUILD
    )
    assert "everyone" in await ephemeral_reply(discord_fake, setting)


async def test_a_reply_ping_alone_starts_no_edit(bot: ImageBot, discord_fake: FakeDiscord, hub: FakeHub) -> None:
    result = await result_of(discord_fake, hub, {"prompt": "a castle"})
    thanks = await discord_fake.send_message("thanks, love it!", user="alice", reply_to=result)
    assert any(m["id"] == discord_fake.bot_user["id"] for m in thanks["mentions"])  # Discord's default reply ping
    quiet = await discord_fake.send_message("so good", user="alice", reply_to=result, ping_reply=False)
    assert quiet["mentions"] == []  # the reply ping switched off in the client
    await asyncio.sleep(0.3)
    assert hub.submit_calls == 1  # only the /imagine
    assert [m for m in discord_fake.channel_messages() if m["author"]["bot"] and m["content"].strip()] == [result]

    await discord_fake.send_message(f"{mention(discord_fake)} make it snowy", user="alice", reply_to=result)
    assert (await submission(hub, 1))["input"]["prompt"] == "make it snowy"  # a typed mention still works


async def test_two_members_edit_forms_never_cross(bot: ImageBot, discord_fake: FakeDiscord, hub: FakeHub) -> None:
    result = await result_of(discord_fake, hub, {"prompt": "two foxes", "count": 2})
    first, second = (discord_fake.attachment_bytes(a) for a in result["attachments"])
    await allow_everyone(discord_fake)
    alices = await discord_fake.click(result, buttons(result)["E1"], user="alice")
    bobs = await discord_fake.click(result, buttons(result)["E2"], user="bob")
    for opened in (alices, bobs):
        await discord_fake.wait_for(lambda e, o=opened: e.kind == "callback" and e.data["interaction"] == o.id)
    assert alices.modal is not None and bobs.modal is not None
    assert alices.modal["custom_id"] != bobs.modal["custom_id"]

    await discord_fake.submit_modal(alices, {discord_fake.modal_fields(alices)[0]["custom_id"]: "alice: a hat"})
    assert await hosted_inputs(discord_fake, hub, index=1) == [first]
    await discord_fake.submit_modal(bobs, {discord_fake.modal_fields(bobs)[0]["custom_id"]: "bob: a scarf"}, user="bob")
    assert await hosted_inputs(discord_fake, hub, index=2) == [second]
    assert hub.submissions[1]["input"]["prompt"] == "alice: a hat"
    assert hub.submissions[2]["input"]["prompt"] == "bob: a scarf"
    assert (await bot.store.get(3)).user_id == int(discord_fake.users["bob"]["id"])


async def test_a_dismissed_form_is_not_kept_forever(
    bot: ImageBot, discord_fake: FakeDiscord, hub: FakeHub, monkeypatch: pytest.MonkeyPatch
) -> None:
    loaded = sys.modules[type(bot.get_cog("Edit")).__module__]  # extensions are loaded as fresh modules
    assert 10 * 60 <= loaded.MODAL_TIMEOUT <= 15 * 60
    monkeypatch.setattr(loaded, "MODAL_TIMEOUT", 0.3)
    result = await result_of(discord_fake, hub, {"prompt": "a fox"})
    opened = await discord_fake.click(result, buttons(result)["Edit"])
    await discord_fake.wait_for(lambda e: e.kind == "callback" and e.data["interaction"] == opened.id)
    assert opened.modal is not None
    modals = bot._connection._view_store._modals  # the library's registry of open forms
    async with asyncio.timeout(2):
        while opened.modal["custom_id"] not in modals:
            await asyncio.sleep(0.01)
        while opened.modal["custom_id"] in modals:  # never submitted: dropped after the timeout
            await asyncio.sleep(0.05)


async def test_only_the_requester_or_a_moderator_may_cancel(
    bot: ImageBot, discord_fake: FakeDiscord, hub: FakeHub
) -> None:
    await allow_everyone(discord_fake)  # opens Reroll/Vary/Edit/Upscale to everyone, never Cancel
    hub.default_plan = lambda: Plan(duration=30)
    await discord_fake.slash("imagine", {"prompt": "slow"})
    status = await discord_fake.wait_for_message(
        lambda m: bool(m["components"]) and "Generating" in str(m["embeds"]), kinds=("message_create", "message_update")
    )
    refused = await discord_fake.click(status, buttons(status)["Cancel"], user="bob")
    assert "Only the person who started this job, or a moderator" in await ephemeral_reply(discord_fake, refused)
    assert not (await bot.store.get(1)).state.terminal
    moderator = await discord_fake.click(
        status, buttons(status)["Cancel"], user="bob", member_permissions=MEMBER_PERMISSIONS | MANAGE_MESSAGES
    )
    assert "Cancelled job #1" in await ephemeral_reply(discord_fake, moderator)
    assert not has_files(status)
