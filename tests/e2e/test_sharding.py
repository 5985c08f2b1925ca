"""Gateway sharding: SHARD_COUNT / SHARD_IDS run a subset of shards per process; only one process syncs."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from bot.client import ShardedImageBot
from bot.config import Settings
from tests.fakes.discord import FakeDiscord
from tests.fakes.hub import FakeHub
from tests.harness import running_bot


def has_files(message: dict[str, object]) -> bool:
    return bool(message.get("attachments"))


async def test_two_processes_split_the_shards_and_the_owner_answers_its_interactions(
    settings_for: Callable[..., Settings], discord_fake: FakeDiscord, hub: FakeHub
) -> None:
    puts = lambda: [r for r in discord_fake.requests if r[1] == "PUT" and r[2].endswith("/commands")]  # noqa: E731
    owner = (discord_fake.guild_id >> 22) % 2  # Discord sends a guild's events to this shard only
    async with (
        running_bot(settings_for(shard_count=2, shard_ids="0")) as zero,
        running_bot(settings_for(shard_count=2, shard_ids="1")) as one,
    ):
        assert isinstance(zero, ShardedImageBot) and sorted(zero.shards) == [0] and sorted(one.shards) == [1]
        assert zero.gateway_connected() and one.gateway_connected()
        assert len(puts()) == 1  # only the process with shard 0 synced the commands
        hub.plan_next(duration=0.1)
        await discord_fake.slash("imagine", {"prompt": "a lighthouse"})
        await discord_fake.wait_for_message(has_files)
        interactions = [shard for event, shard in discord_fake.dispatched if event == "INTERACTION_CREATE"]
        assert interactions == [[owner, 2]]
        answering = (zero, one)[owner]
        assert len(answering.guilds) == 1 and not (zero, one)[1 - owner].guilds


@pytest.mark.parametrize(
    ("values", "problem"),
    [({"shard_ids": "0,1"}, "needs SHARD_COUNT"), ({"shard_count": 2, "shard_ids": "2"}, "between 0 and")],
)
def test_shard_settings_are_checked(
    settings_for: Callable[..., Settings], values: dict[str, object], problem: str
) -> None:
    with pytest.raises(ValueError, match=problem):
        settings_for(**values)


def test_sync_commands_overrides_the_shard_zero_default(settings_for: Callable[..., Settings]) -> None:
    assert settings_for().syncs_commands
    assert not settings_for(shard_count=4, shard_ids="2,3").syncs_commands
    assert settings_for(shard_count=4, shard_ids="2,3", sync_commands=True).syncs_commands
    assert not settings_for(sync_commands=False).syncs_commands
