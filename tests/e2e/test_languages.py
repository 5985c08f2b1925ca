"""Languages end to end: the synced commands carry Chinese; each member reads private answers in their own
language; public messages follow the server's language, which `/settings language` overrides."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from typing import Any

from bot.client import ImageBot
from bot.config import Settings
from tests.e2e.test_imagine import embed_title, ephemeral_reply, has_files
from tests.e2e.test_settings import admin
from tests.fakes.discord import FakeDiscord
from tests.harness import running_bot


def walk(options: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for option in options:
        yield option
        yield from walk(option.get("options", []))


async def test_the_synced_commands_carry_chinese_for_every_description_and_choice(
    bot: ImageBot, discord_fake: FakeDiscord
) -> None:
    slash = [c for c in discord_fake.commands.values() if c.get("type", 1) == 1]
    assert {"imagine", "edit", "usage", "models", "quota", "settings"} <= {c["name"] for c in slash}
    for command in slash:
        assert command["description_localizations"]["zh-CN"], command["name"]
        for option in walk(command.get("options", [])):
            where = f"/{command['name']} {option['name']}"
            assert 0 < len(option["description_localizations"]["zh-CN"]) <= 100, where
            for choice in option.get("choices", []):
                assert choice["name_localizations"]["zh-CN"], f"{where} {choice['name']}"
    quality = next(o for o in discord_fake.command("imagine")["options"] if o["name"] == "quality")
    assert [c["name_localizations"]["zh-CN"] for c in quality["choices"]] == ["自动", "低", "中", "高"]
    assert discord_fake.command("imagine")["description_localizations"]["zh-CN"] == "根据文字提示词生成图片"
    assert discord_fake.command("Edit image")["name_localizations"]["zh-CN"] == "编辑图片"
    assert all("zh-CN" not in c.get("name_localizations", {}) for c in slash)  # names stay what members type


async def test_each_member_reads_usage_and_refusals_in_their_own_language(
    bot: ImageBot, discord_fake: FakeDiscord
) -> None:
    discord_fake.user_locales["bob"] = "zh-CN"  # alice's client is in English (en-US)
    zh = await ephemeral_reply(discord_fake, await discord_fake.slash("usage", user="bob"))
    en = await ephemeral_reply(discord_fake, await discord_fake.slash("usage", user="alice"))
    assert "你还剩 **" in zh and "积分将于 <t:" in zh and "credit" not in zh
    assert "You have **" in en and "credits left" in en and "Credits come back <t:" in en

    # An option the model does not take: refused privately, in each member's language, nothing sent.
    options = {"prompt": "一只猫 a cat", "model": "gpt-image-2", "seed": 7}
    zh = await ephemeral_reply(discord_fake, await discord_fake.slash("imagine", options, user="bob"))
    en = await ephemeral_reply(discord_fake, await discord_fake.slash("imagine", options, user="alice"))
    assert zh.startswith("**GPT Image 2** 不支持 `seed`。它支持：")
    assert en.startswith("**GPT Image 2** does not support `seed`. It supports:")


async def status_and_result(discord_fake: FakeDiscord, user: str = "alice") -> tuple[str, dict[str, Any], str]:
    """Start a job; its private answer, its result message, and its status message's final title."""
    before = len(discord_fake.channel_messages())
    answer = await ephemeral_reply(discord_fake, await discord_fake.slash("imagine", {"prompt": "猫 cat"}, user=user))
    async with asyncio.timeout(10):
        while True:
            new = discord_fake.channel_messages()[before:]
            results = [m for m in new if has_files(m) and m.get("message_reference")]
            if results:
                status_id = results[0]["message_reference"]["message_id"]
                status = next(m for m in discord_fake.channel_messages() if m["id"] == status_id)
                if embed_title(status) not in ("", "🎨 Generating…", "🎨 生成中…"):
                    return answer, results[0], embed_title(status)
            await asyncio.sleep(0.02)


async def test_public_messages_follow_the_server_language_and_settings_override_it(
    settings_for: Callable[..., Settings], discord_fake: FakeDiscord
) -> None:
    discord_fake.guild_locale = "zh-CN"  # the server's preferred locale; alice's own client is English
    async with running_bot(settings_for()):
        answer, result, title = await status_and_result(discord_fake)
        assert answer.startswith("🎨 On it — job **#1**")  # private: alice's language
        assert title == "✅ 已完成"
        assert "你的图片生成好了" in result["content"] and result["content"].startswith("<@")
        embed = result["embeds"][0]
        assert [f["name"] for f in embed["fields"]][:2] == ["模型", "种子"]
        assert embed["description"] == "猫 cat"  # the prompt as written, never translated
        assert embed["footer"]["text"].startswith("任务 #1")
        labels = [c["label"] for row in result["components"] for c in row["components"]]
        assert "重新生成" in labels and "删除" in labels

        said = await admin(discord_fake, "language", {"language": "en"})
        assert "now in English" in said
        _, result, title = await status_and_result(discord_fake)
        assert title == "✅ Done" and "your image is ready" in result["content"]

        discord_fake.user_locales["admin"] = "zh-CN"
        said = await admin(discord_fake, "language", {"language": "auto"})
        assert said == "状态和结果消息现在跟随服务器在 Discord 中的语言（当前为“简体中文”）。"
        _, _, title = await status_and_result(discord_fake)
        assert title == "✅ 已完成"


async def test_replies_to_mentions_follow_the_server_language(
    settings_for: Callable[..., Settings], discord_fake: FakeDiscord
) -> None:
    discord_fake.guild_locale = "zh-CN"  # seen in GUILD_CREATE: no interaction has happened yet
    async with running_bot(settings_for()):
        await discord_fake.send_message(f"<@{discord_fake.bot_user['id']}> 让它下雪", user="alice")
        reply = await discord_fake.wait_for_message(lambda m: m["author"]["bot"] and bool(m["content"]))
        assert reply["content"] == "请回复一条带图片的消息，并 @我 说明要修改什么。"
