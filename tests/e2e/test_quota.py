"""Quotas end to end: admins set limits, members are refused or refunded, through real commands."""

from __future__ import annotations

import asyncio
from typing import Any

from bot.client import ImageBot
from tests.e2e.test_imagine import ephemeral_reply, has_files
from tests.fakes.discord import FakeDiscord
from tests.fakes.discord.payloads import MANAGE_GUILD, MEMBER_PERMISSIONS
from tests.fakes.hub import FakeHub

ADMIN = MEMBER_PERMISSIONS | MANAGE_GUILD


async def command(discord_fake: FakeDiscord, name: str, options: dict[str, Any] | None = None, **kw: Any) -> str:
    interaction = await discord_fake.slash(name, options, **kw)
    return await ephemeral_reply(discord_fake, interaction)


async def test_a_limit_of_one_refuses_the_second_image_before_the_provider(
    bot: ImageBot, discord_fake: FakeDiscord, hub: FakeHub
) -> None:
    answer = await command(
        discord_fake, "quota set user", {"member": "alice", "limit": "1"}, user="admin", member_permissions=ADMIN
    )
    assert "→ **1 per day**" in answer
    await discord_fake.slash("imagine", {"prompt": "first"})
    await discord_fake.wait_for_message(has_files)
    refusal = await command(discord_fake, "imagine", {"prompt": "second"})
    assert "needs **1** credit and you have **0** left" in refusal and "come back <t:" in refusal
    await asyncio.sleep(0.1)
    assert hub.submit_calls == 1
    usage = await command(discord_fake, "usage")
    assert "**0** credits left: 1 per day (set for you)" in usage and "#1 · Nano Banana · succeeded · 1 credit" in usage


async def test_a_failed_image_gives_the_credit_back(bot: ImageBot, discord_fake: FakeDiscord, hub: FakeHub) -> None:
    await command(discord_fake, "quota default", {"limit": "2"}, user="admin", member_permissions=ADMIN)
    hub.plan_next(duration=0.05, outcome="failed")
    await discord_fake.slash("imagine", {"prompt": "blocked"})
    failed = await discord_fake.wait_for_message(lambda m: "Failed" in str(m["embeds"]), kinds=("message_update",))
    fields = {f["name"]: f["value"] for f in failed["embeds"][0]["fields"]}
    assert fields["Credits"] == "1 (given back)"
    usage = await command(discord_fake, "usage")
    assert "**2** credits left: 2 per day (the server default), 0 used" in usage
    assert "failed · 1 credit (given back)" in usage


async def test_members_without_manage_server_cannot_change_quotas(bot: ImageBot, discord_fake: FakeDiscord) -> None:
    answer = await command(discord_fake, "quota set user", {"member": "alice", "limit": "unlimited"}, user="alice")
    assert "You need the Manage Server permission" in answer
    assert await bot.quota.audit_log(discord_fake.guild_id) == []
    shown = await command(discord_fake, "quota show", {"member": "alice"}, user="admin", member_permissions=ADMIN)
    assert "25 per day (the bot's default)" in shown


async def test_role_limits_grants_costs_and_top(bot: ImageBot, discord_fake: FakeDiscord, hub: FakeHub) -> None:
    discord_fake.member_roles["bob"] = [discord_fake.roles["vip"]]
    await command(
        discord_fake,
        "quota set role",
        {"role": "vip", "limit": "unlimited", "period": "week"},
        user="admin",
        member_permissions=ADMIN,
    )
    assert "unlimited credits (from the role" in await command(discord_fake, "usage", user="bob")
    await command(
        discord_fake, "quota cost", {"model": "nano-banana", "credits": 3}, user="admin", member_permissions=ADMIN
    )
    answer = await command(
        discord_fake, "quota grant", {"member": "alice", "credits": 5}, user="admin", member_permissions=ADMIN
    )
    assert "bonus is now **5**" in answer
    await discord_fake.slash("imagine", {"prompt": "costly"}, user="alice")
    result = await discord_fake.wait_for_message(has_files)
    assert "3 credits" in result["embeds"][0]["footer"]["text"]
    top = await command(discord_fake, "quota top", user="admin", member_permissions=ADMIN)
    assert top.startswith(f"1. <@{discord_fake.users['alice']['id']}> — 3 credits")
    shown = await command(discord_fake, "quota show", {"member": "alice"}, user="admin", member_permissions=ADMIN)
    assert "grant" in shown and "set cost" in shown and "set role limit" in shown
