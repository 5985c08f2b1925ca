"""`/settings` end to end: admins change them through real commands; members meet them everywhere."""

from __future__ import annotations

import asyncio
from typing import Any

from bot.client import ImageBot
from tests.e2e.test_buttons import buttons, result_of, submission
from tests.e2e.test_edit import mention, photo
from tests.e2e.test_imagine import ephemeral_reply, has_files
from tests.fakes.discord import FakeDiscord
from tests.fakes.discord.payloads import MANAGE_GUILD, MEMBER_PERMISSIONS
from tests.fakes.hub import FakeHub

ADMIN = MEMBER_PERMISSIONS | MANAGE_GUILD


async def admin(discord_fake: FakeDiscord, name: str, options: dict[str, Any] | None = None) -> str:
    """Run a /settings command as the server admin; the private answer."""
    interaction = await discord_fake.slash(f"settings {name}", options, user="admin", member_permissions=ADMIN)
    return await ephemeral_reply(discord_fake, interaction)


async def answer(discord_fake: FakeDiscord, name: str, options: dict[str, Any] | None = None, **kw: Any) -> str:
    return await ephemeral_reply(discord_fake, await discord_fake.slash(name, options, **kw))


async def dm_to(discord_fake: FakeDiscord, user: str) -> dict[str, Any]:
    async with asyncio.timeout(5):
        while not discord_fake.dm_messages(user):
            await asyncio.sleep(0.01)
    return discord_fake.dm_messages(user)[-1]


async def ledger_rows(bot: ImageBot) -> int:
    row = await bot.db.fetchone("SELECT COUNT(*) FROM quota_ledger")
    return int(row[0]) if row else 0


async def test_only_admins_can_change_or_see_settings(bot: ImageBot, discord_fake: FakeDiscord) -> None:
    assert str(discord_fake.command("settings")["default_member_permissions"]) == str(MANAGE_GUILD)
    for name, options in (
        ("safety", {"level": 1}),
        ("channel", {"channel": discord_fake.other_channel_id, "allowed": True}),
        ("blocklist add", {"term": "fox"}),
        ("show", None),
    ):
        # Discord hides the group from members, but server admins can override that: the bot checks again.
        refused = await answer(discord_fake, f"settings {name}", options, user="alice")
        assert "You need the Manage Server permission" in refused
    assert await bot.db.fetchall("SELECT * FROM guild_settings WHERE key != 'guild_locale'") == []
    assert await bot.db.fetchall("SELECT * FROM quota_audit") == []


async def test_the_allow_list_refuses_commands_buttons_and_mentions_elsewhere(
    bot: ImageBot, discord_fake: FakeDiscord, hub: FakeHub
) -> None:
    general, art = discord_fake.channel_id, discord_fake.other_channel_id
    old = await result_of(discord_fake, hub, {"prompt": "a fox"})  # made in #general before the list existed
    said = await admin(discord_fake, "channel", {"channel": art, "allowed": True})
    assert f"<#{art}> is now allowed" in said
    before = len(discord_fake.channel_messages(general))

    # A command, a button that starts work, the context menu: each refused privately, naming #art.
    assert f"<#{art}>" in await answer(discord_fake, "imagine", {"prompt": "a cat"})
    click = await discord_fake.click(old, buttons(old)["Reroll"])
    assert f"<#{art}>" in await ephemeral_reply(discord_fake, click)
    menu = await discord_fake.context_menu("Edit image", old)
    assert f"<#{art}>" in await ephemeral_reply(discord_fake, menu)
    info = await discord_fake.click(old, buttons(old)["Info"])  # looking at an old result still works
    assert "**Prompt**: a fox" in await ephemeral_reply(discord_fake, info)

    # A mention: answered by DM, never in the channel; silence when the member's DMs are closed.
    await discord_fake.send_message(f"{mention(discord_fake)} make it snowy", user="alice", reply_to=old)
    dm = await dm_to(discord_fake, "alice")
    assert f"<#{art}>" in dm["content"] and dm["mentions"] == [] and not dm["mention_everyone"]
    discord_fake.closed_dms.add("bob")
    await discord_fake.send_message(f"{mention(discord_fake)} add a hat", user="bob", files=[("a.png", photo())])
    await asyncio.sleep(0.3)
    bot_lines = [m for m in discord_fake.channel_messages(general)[before:] if m["author"]["bot"]]
    assert bot_lines == [] and discord_fake.dm_messages("bob") == []
    assert hub.submit_calls == 1  # only the result made before the list

    # In #art everything works; an admin can still use /settings anywhere.
    await discord_fake.slash("imagine", {"prompt": "a cat"}, channel_id=art)
    await discord_fake.wait_for_message(lambda m: has_files(m) and m["channel_id"] == str(art))
    assert f"<#{art}>" in await admin(discord_fake, "show")
    said = await admin(discord_fake, "channel", {"channel": art, "allowed": False})
    assert "every channel" in said
    await discord_fake.slash("imagine", {"prompt": "a dog"})  # the list is empty again: #general works
    assert (await submission(hub, 2))["input"]["prompt"] == "a dog"


async def test_a_blocked_prompt_reaches_no_provider_and_costs_nothing(
    bot: ImageBot, discord_fake: FakeDiscord, hub: FakeHub
) -> None:
    assert "Term added. 1 term is blocked" in await admin(discord_fake, "blocklist add", {"term": "Blood  Bath"})
    await admin(discord_fake, "blocklist add", {"term": "kill"})
    refusals = [
        await answer(discord_fake, "imagine", {"prompt": "a BLOOD-bath at dawn"}),
        await answer(discord_fake, "imagine", {"prompt": "ki\u200bll the lights"}),
        await answer(discord_fake, "edit", {"prompt": "add a blood bath", "image": ("a.png", photo())}),
    ]
    upload = await discord_fake.send_message("look", user="alice", files=[("a.png", photo())])
    menu = await discord_fake.context_menu("Edit image", upload)
    await discord_fake.wait_for(lambda e: e.kind == "callback" and e.data["interaction"] == menu.id)
    field = discord_fake.modal_fields(menu)[0]["custom_id"]
    refusals.append(await ephemeral_reply(discord_fake, await discord_fake.submit_modal(menu, {field: "Kill it"})))
    for refusal in refusals:
        assert "blocked" in refusal and "blood" not in refusal.lower() and "kill" not in refusal.lower()
    # A mention: told by DM; nothing in the channel repeats the term.
    await discord_fake.send_message(f"{mention(discord_fake)} kill the sky", user="bob", reply_to=upload)
    assert "blocked" in (await dm_to(discord_fake, "bob"))["content"]
    await asyncio.sleep(0.2)
    assert hub.submit_calls == 0 and await ledger_rows(bot) == 0
    assert await bot.db.fetchall("SELECT id FROM jobs") == []
    assert all(m["author"]["bot"] is False for m in discord_fake.channel_messages())
    assert "**25** credits left" in await answer(discord_fake, "usage")

    # Whole words only: "skill" is not "kill"; and a removed term is allowed again.
    await discord_fake.slash("imagine", {"prompt": "a skillful fox"})
    assert (await submission(hub, 0))["input"]["prompt"] == "a skillful fox"
    assert "Term removed. 1 term is blocked" in await admin(discord_fake, "blocklist remove", {"term": "blood bath"})
    await discord_fake.slash("imagine", {"prompt": "a blood bath"})
    assert (await submission(hub, 1))["input"]["prompt"] == "a blood bath"


async def test_the_safety_level_reaches_the_provider_everywhere(
    bot: ImageBot, discord_fake: FakeDiscord, hub: FakeHub
) -> None:
    await admin(discord_fake, "safety", {"level": 2})
    result = await result_of(discord_fake, hub, {"prompt": "a fox", "model": "nano-banana-pro"})
    assert hub.submissions[0]["input"]["safety_tolerance"] == "2"

    await admin(discord_fake, "safety", {"level": 5})  # new jobs use the level as it is now
    labels = buttons(result)
    await discord_fake.click(result, labels["Reroll"])
    await discord_fake.click(result, labels["Vary"])
    await discord_fake.click(result, labels["Upscale"])
    sent = [await submission(hub, i) for i in (1, 2, 3)]
    assert [s["model"] for s in sent] == ["nano-banana-pro", "nano-banana-pro-edit", "nano-banana-pro-edit"]
    assert [s["input"]["safety_tolerance"] for s in sent] == ["5", "5", "5"]

    await discord_fake.slash("edit", {"prompt": "add snow", "image": ("a.png", photo())})
    await discord_fake.send_message(f"{mention(discord_fake)} make it night", user="alice", reply_to=result)
    opened = await discord_fake.context_menu("Edit image", result)
    await discord_fake.wait_for(lambda e: e.kind == "callback" and e.data["interaction"] == opened.id)
    await discord_fake.submit_modal(opened, {discord_fake.modal_fields(opened)[0]["custom_id"]: "add a moon"})
    later = [await submission(hub, i) for i in (4, 5, 6)]
    assert {s["input"]["prompt"]: s["input"]["safety_tolerance"] for s in later} == {
        "add snow": "5",
        "make it night": "5",
        "add a moon": "5",
    }
    await discord_fake.slash("imagine", {"prompt": "a fox", "model": "gpt-image-2"})
    assert "safety_tolerance" not in (await submission(hub, 7))["input"]  # GPT Image 2 takes none


async def test_the_server_default_model_is_used_by_imagine(
    bot: ImageBot, discord_fake: FakeDiscord, hub: FakeHub
) -> None:
    await discord_fake.slash("imagine", {"prompt": "before"})
    assert (await submission(hub, 0))["model"] == "nano-banana"  # DEFAULT_MODEL
    said = await admin(discord_fake, "model", {"model": "nano-banana-2"})
    assert "**Nano Banana 2**" in said
    await discord_fake.slash("imagine", {"prompt": "after"})
    assert (await submission(hub, 1))["model"] == "nano-banana-2"
    await discord_fake.slash("imagine", {"prompt": "chosen", "model": "gpt-image-2"})
    assert (await submission(hub, 2))["model"] == "gpt-image-2"  # a chosen model still wins
    await discord_fake.slash("edit", {"prompt": "snow", "image": ("a.png", photo())})
    assert (await submission(hub, 3))["model"] == "nano-banana-2-edit"
    assert "**Nano Banana 2** (default)" in await answer(discord_fake, "models")


async def test_show_lists_every_setting_privately(bot: ImageBot, discord_fake: FakeDiscord) -> None:
    empty = await admin(discord_fake, "show")
    assert "every channel" in empty and "Nano Banana (the bot's default)" in empty
    assert "4 of 1 (strictest) to 6 (the default)" in empty and "**Blocked terms** (0): none" in empty
    await admin(discord_fake, "channel", {"channel": discord_fake.other_channel_id, "allowed": True})
    await admin(discord_fake, "model", {"model": "nano-banana-pro"})
    await admin(discord_fake, "safety", {"level": 1})
    await admin(discord_fake, "blocklist add", {"term": "@everyone *bold*"})
    await admin(discord_fake, "buttons", {"everyone": True})
    interaction = await discord_fake.slash("settings show", user="admin", member_permissions=ADMIN)
    shown = await ephemeral_reply(discord_fake, interaction)
    assert f"**Channels**: <#{discord_fake.other_channel_id}>" in shown
    assert "Nano Banana Pro (set for this server)" in shown and "**Safety level**: 1 of" in shown
    assert "**Blocked terms** (1): “@\u200beveryone \\*bold\\*”" in shown  # escaped: no ping, no formatting
    assert "**Result buttons**: everyone" in shown
    assert "blocklist add" in shown and "safety" in shown  # the recent changes, with who made them
    original = discord_fake.original(interaction)
    assert original is not None and original["mention_everyone"] is False and original["mentions"] == []
    audited = await bot.db.fetchall("SELECT action FROM quota_audit ORDER BY id")
    assert [r[0] for r in audited] == [
        "settings channel",
        "settings model",
        "settings safety",
        "settings blocklist add",
        "settings buttons",
    ]


async def test_buttons_follow_the_blocklist_as_it_is_now(
    bot: ImageBot, discord_fake: FakeDiscord, hub: FakeHub
) -> None:
    result = await result_of(discord_fake, hub, {"prompt": "a red fox"})
    info = await ephemeral_reply(discord_fake, await discord_fake.click(result, buttons(result)["Info"]))
    assert "**Safety level**: 4" in info
    await admin(discord_fake, "blocklist add", {"term": "FOX"})
    for label in ("Reroll", "Vary"):
        refusal = await ephemeral_reply(discord_fake, await discord_fake.click(result, buttons(result)[label]))
        assert "blocked" in refusal and "fox" not in refusal.lower()
    await asyncio.sleep(0.2)
    assert hub.submit_calls == 1 and await ledger_rows(bot) == 1  # only the first image's charge
