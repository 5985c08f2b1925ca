"""The real entry point against the fakes: bad tokens, secrets in logs, command sync."""

from __future__ import annotations

import logging
from collections.abc import Callable

import pytest

from bot.__main__ import EXIT_CONFIG, run
from bot.config import Settings
from tests.fakes.discord import FakeDiscord
from tests.fakes.hub import FakeHub
from tests.harness import running_bot


async def test_a_token_discord_rejects_is_a_clear_configuration_error(
    settings_for: Callable[..., Settings], discord_fake: FakeDiscord, capsys: pytest.CaptureFixture[str]
) -> None:
    code = await run(settings_for(discord_token="not-the-right-token"))
    assert code == EXIT_CONFIG
    err = capsys.readouterr().err
    assert "Discord rejected DISCORD_TOKEN" in err and "not-the-right-token" not in err


async def test_secrets_never_reach_the_logs(
    settings_for: Callable[..., Settings], discord_fake: FakeDiscord, hub: FakeHub, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    hub.plan_next(duration=0.05, outcome="failed")
    async with running_bot(settings_for()):
        await discord_fake.slash("imagine", {"prompt": "cat"})
        await discord_fake.wait_for_message(lambda m: "Failed" in str(m["embeds"]), kinds=("message_update",))
        await discord_fake.slash("imagine", {"prompt": "dog"})
        await discord_fake.wait_for_message(lambda m: bool(m["attachments"]))
    logged = "\n".join(f"{r.getMessage()} {r.exc_text or ''}" for r in caplog.records)
    assert "job 1: provider said failed" in logged  # the log is really captured
    assert FakeDiscord.TOKEN not in logged and hub.api_key not in logged


async def test_global_commands_are_synced_only_when_they_change(
    settings_for: Callable[..., Settings], discord_fake: FakeDiscord
) -> None:
    settings = settings_for()
    puts = lambda: [r for r in discord_fake.requests if r[1] == "PUT" and r[2].endswith("/commands")]  # noqa: E731
    async with running_bot(settings):
        pass
    assert len(puts()) == 1 and "imagine" in discord_fake.commands
    async with running_bot(settings):
        pass
    assert len(puts()) == 1  # unchanged: no second sync


async def test_dev_guild_gets_the_commands_on_every_start(
    settings_for: Callable[..., Settings], discord_fake: FakeDiscord
) -> None:
    async with running_bot(settings_for(dev_guild_id=discord_fake.guild_id)):
        pass
    assert "imagine" in discord_fake.guild_commands[discord_fake.guild_id]
    assert discord_fake.commands == {}
