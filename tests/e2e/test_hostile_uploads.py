"""Hostile uploads through /edit and replies: the same clear refusal, no traceback, nothing sent or charged."""

from __future__ import annotations

import asyncio
import logging

import pytest

from bot.client import ImageBot
from tests.e2e.test_edit import mention, photo, replies_with
from tests.e2e.test_imagine import ephemeral_reply
from tests.fakes import hostile
from tests.fakes.discord import FakeDiscord
from tests.fakes.hub import FakeHub
from tests.unit.test_hostile_inputs import REFUSALS


async def test_the_whole_corpus_through_edit(
    bot: ImageBot, discord_fake: FakeDiscord, hub: FakeHub, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    for name, make in hostile.corpus().items():
        answer = await ephemeral_reply(
            discord_fake, await discord_fake.slash("edit", {"prompt": "x", "image": (name, make())})
        )
        assert any(r in answer for r in REFUSALS), (name, answer)
    await asyncio.sleep(0.1)
    assert hub.submit_calls == 0 and discord_fake.channel_messages() == []
    assert not [r for r in caplog.records if r.exc_info or r.levelno >= logging.ERROR]


async def test_invisible_prompts_are_empty_everywhere(bot: ImageBot, discord_fake: FakeDiscord, hub: FakeHub) -> None:
    blank = "\u200b\u2060\ufeff"
    imagine = await discord_fake.slash("imagine", {"prompt": blank})
    assert "the prompt is empty" in await ephemeral_reply(discord_fake, imagine)
    edit = await discord_fake.slash("edit", {"prompt": blank, "image": ("a.png", photo())})
    assert "the prompt is empty" in await ephemeral_reply(discord_fake, edit)
    await discord_fake.send_message(f"{mention(discord_fake)} {blank}", user="alice", files=[("d.png", photo())])
    await discord_fake.wait_for_message(replies_with(discord_fake, "Tell me what to change"))
    upload = await discord_fake.send_message("mine", user="alice", files=[("e.png", photo())])
    opened = await discord_fake.context_menu("Edit image", upload)
    await discord_fake.wait_for(lambda e: e.kind == "callback" and e.data["interaction"] == opened.id)
    form = await discord_fake.submit_modal(opened, {discord_fake.modal_fields(opened)[0]["custom_id"]: blank})
    assert "the prompt is empty" in await ephemeral_reply(discord_fake, form)
    await asyncio.sleep(0.1)
    assert hub.submit_calls == 0
