"""What a result shows: compact button rows, the time the member waited, the seed, and described options."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable
from typing import Any

from bot.client import ImageBot
from bot.config import Settings
from tests.e2e.test_buttons import buttons, result_of
from tests.e2e.test_imagine import ephemeral_reply, has_files
from tests.fakes.discord import FakeDiscord
from tests.fakes.hub import FakeHub
from tests.harness import running_bot


def rows(message: dict[str, Any]) -> list[list[str]]:
    return [[c["label"] for c in row["components"]] for row in message["components"]]


def field(message: dict[str, Any], name: str) -> str | None:
    fields = message["embeds"][0].get("fields", [])
    return next((f["value"] for f in fields if f["name"] == name), None)


def seconds(shown: str) -> int:
    minutes = re.search(r"(\d+)m", shown)
    secs = re.search(r"(\d+)s", shown)
    return (int(minutes[1]) * 60 if minutes else 0) + (int(secs[1]) if secs else 0)


async def test_one_image_takes_two_rows_and_four_take_three(
    bot: ImageBot, discord_fake: FakeDiscord, hub: FakeHub
) -> None:
    one = await result_of(discord_fake, hub, {"prompt": "a fox", "model": "nano-banana-pro"})
    assert rows(one) == [["Reroll", "Info", "Delete"], ["Vary", "Edit", "Upscale"]]
    four = await result_of(discord_fake, hub, {"prompt": "foxes", "model": "nano-banana-pro", "count": 4}, n=2)
    assert rows(four) == [
        ["V1", "V2", "V3", "V4", "Reroll"],
        ["E1", "E2", "E3", "E4", "Info"],
        ["U1", "U2", "U3", "U4", "Delete"],
    ]
    three = await result_of(discord_fake, hub, {"prompt": "foxes", "model": "nano-banana", "count": 3}, n=3)
    assert rows(three) == [["V1", "V2", "V3", "Reroll"], ["E1", "E2", "E3", "Info", "Delete"]]


async def test_the_time_shown_is_what_the_member_waited(
    settings_for: Callable[..., Settings], discord_fake: FakeDiscord, hub: FakeHub
) -> None:
    async with running_bot(settings_for(max_active_jobs=1)):
        hub.plan_next(duration=1.5)
        hub.plan_next(duration=1.5)
        await discord_fake.slash("imagine", {"prompt": "first"})
        await discord_fake.slash("imagine", {"prompt": "second"}, user="bob")  # waits for the first in line
        second = await discord_fake.wait_for_message(lambda m: has_files(m) and "second" in str(m["embeds"]))
        waited = field(second, "Time")
        assert waited is not None and seconds(waited) >= 3  # the image service took 1.5 s of it
        info = await ephemeral_reply(discord_fake, await discord_fake.click(second, buttons(second)["Info"]))
        assert re.search(r"\*\*Time\*\*: \d+s from request to result, of which generating 2s", info), info


async def test_the_seed_is_shown_or_said_to_be_random(bot: ImageBot, discord_fake: FakeDiscord, hub: FakeHub) -> None:
    chosen = await result_of(discord_fake, hub, {"prompt": "a", "seed": 42})
    assert field(chosen, "Seed") == "42"
    random_seed = await result_of(discord_fake, hub, {"prompt": "b"}, n=2)
    assert field(random_seed, "Seed") == "random"
    gpt = await result_of(discord_fake, hub, {"prompt": "c", "model": "gpt-image-2"}, n=3)
    assert field(gpt, "Seed") is None  # GPT Image 2 takes no seed: nothing to show
    info = await ephemeral_reply(discord_fake, await discord_fake.click(random_seed, buttons(random_seed)["Info"]))
    assert "**Seed**: random" in info


async def test_every_option_of_every_command_is_described(bot: ImageBot, discord_fake: FakeDiscord) -> None:
    await asyncio.sleep(0)
    synced = {**discord_fake.commands, **{k: v for g in discord_fake.guild_commands.values() for k, v in g.items()}}
    assert {"imagine", "edit", "quota", "usage", "models", "settings"} <= set(synced)

    def options(node: dict[str, Any], path: str) -> list[tuple[str, str]]:
        found = []
        for option in node.get("options", []):
            found.append((f"{path} {option['name']}", option.get("description", "")))
            found += options(option, f"{path} {option['name']}")
        return found

    described = [pair for name, command in synced.items() for pair in options(command, name)]
    assert len(described) > 30
    vague = [(name, text) for name, text in described if text.strip() in ("", "…", "...", "-") or len(text) < 6]
    assert vague == []
