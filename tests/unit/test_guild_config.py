"""Per-server settings on a real SQLite database: reading, changing, auditing."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from pydantic import SecretStr

from bot import guild_config
from bot.db import Database
from bot.errors import BlockedPrompt, ChannelNotAllowed, InvalidRequest
from bot.guild_config import GuildConfig, GuildSettings, load, parse
from bot.i18n import render
from bot.providers.catalog import ImageOptions, api_params, build_edit_input, build_input
from bot.providers.gemini import GeminiProvider
from bot.providers.http import RetryPolicy
from bot.providers.mindvideo import MindVideoProvider

GUILD, ADMIN = 10, 20


@pytest.fixture
async def db(db_target: str | Path) -> AsyncIterator[Database]:
    database = await Database.open(db_target)
    yield database
    await database.close()


async def audit_rows(db: Database) -> list[tuple[str, str, str | None, str | None]]:
    rows = await db.fetchall("SELECT action, target, old_value, new_value FROM quota_audit ORDER BY id")
    return [(r[0], r[1], r[2], r[3]) for r in rows]


async def test_defaults_apply_to_unset_servers_and_dms(db: Database) -> None:
    for config in (await load(db, GUILD), await load(db, None)):
        assert config == GuildConfig()
        assert config.safety == "4" and config.model_or("nano-banana") == "nano-banana"
        config.check_channel(123)
        config.check_text("anything at all")


async def test_changes_are_stored_and_audited_once(db: Database) -> None:
    settings = GuildSettings(db, clock=lambda: 1000.0)
    assert (await settings.set_channel(GUILD, ADMIN, 5, True)).changed
    assert not (await settings.set_channel(GUILD, ADMIN, 5, True)).changed  # no change, no audit row
    await settings.set_channel(GUILD, ADMIN, 3, True)
    await settings.set_default_model(GUILD, ADMIN, "nano-banana-pro")
    await settings.set_safety(GUILD, ADMIN, 2)
    await settings.add_term(GUILD, ADMIN, "  Blood   Bath ")
    await settings.set_buttons(GUILD, ADMIN, True)
    change = await settings.set_channel(GUILD, ADMIN, 5, False)
    config = change.config
    assert config.allowed_channels == (3,)
    assert config.default_model == "nano-banana-pro" and config.safety == "2"
    assert config.blocklist == ("Blood Bath",) and config.buttons_for_everyone
    assert await load(db, GUILD) == config
    assert await load(db, GUILD + 1) == GuildConfig()  # per server
    assert await audit_rows(db) == [
        ("settings channel", "channel:5", "not allowed", "allowed"),
        ("settings channel", "channel:3", "not allowed", "allowed"),
        ("settings model", "default model", None, "nano-banana-pro"),
        ("settings safety", "level", None, "2"),
        ("settings blocklist add", "term", None, "Blood Bath"),
        ("settings buttons", "everyone", None, "1"),
        ("settings channel", "channel:5", "allowed", "not allowed"),
    ]
    recent = await settings.recent_changes(GUILD, limit=2)
    assert [r.action for r in recent] == ["settings channel", "settings buttons"] and recent[0].actor_id == ADMIN


async def test_blocklist_terms_are_deduplicated_and_removed_by_meaning(db: Database) -> None:
    settings = GuildSettings(db)
    await settings.add_term(GUILD, ADMIN, "kill")
    assert not (await settings.add_term(GUILD, ADMIN, "KILL")).changed
    config = (await settings.add_term(GUILD, ADMIN, "blood bath")).config
    with pytest.raises(BlockedPrompt) as blocked:
        config.check_text("a fox", "Blood-bath at dawn")
    assert "blood" not in blocked.value.message.lower()  # the answer never repeats the term
    config.check_text("a skillful fox")
    assert (await settings.remove_term(GUILD, ADMIN, "Blood  Bath")).config.blocklist == ("kill",)
    assert not (await settings.remove_term(GUILD, ADMIN, "nope")).changed
    with pytest.raises(InvalidRequest):
        await settings.add_term(GUILD, ADMIN, "...")


async def test_the_allow_list_refusal_names_the_channels(db: Database) -> None:
    settings = GuildSettings(db)
    await settings.set_channel(GUILD, ADMIN, 7, True)
    config = await load(db, GUILD)
    with pytest.raises(ChannelNotAllowed, match="<#7>"):
        config.check_channel(8)
    config.check_channel(7)
    config.check_channel(70, parent_id=7)


async def test_bad_values_are_refused(db: Database) -> None:
    settings = GuildSettings(db)
    with pytest.raises(InvalidRequest):
        await settings.set_safety(GUILD, ADMIN, 7)
    with pytest.raises(InvalidRequest):
        await settings.set_default_model(GUILD, ADMIN, "nano-banana-edit")
    assert await audit_rows(db) == []


def test_malformed_or_outdated_stored_values_are_ignored() -> None:
    config = parse(
        {"allowed_channels": "not json", "default_model": "retired-model", "safety_tolerance": "9", "blocklist": "{}"}
    )
    assert config == GuildConfig()


@pytest.mark.parametrize("model", ["nano-banana", "nano-banana-2", "nano-banana-pro"])
def test_the_safety_level_reaches_every_model_that_takes_it(model: str) -> None:
    payload = build_input(model, "a fox", ImageOptions(safety_tolerance="1"))
    assert api_params(payload)["safety_tolerance"] == "1"
    edit = build_edit_input(f"{model}-edit", "snow", 1, ImageOptions(safety_tolerance="6"), False)
    assert api_params(edit)["safety_tolerance"] == "6"
    assert api_params(build_input(model, "a fox", ImageOptions()))["safety_tolerance"] == "4"


def test_models_without_a_safety_setting_ignore_the_level() -> None:
    assert "safety_tolerance" not in api_params(build_input("gpt-image-2", "a fox", ImageOptions(safety_tolerance="1")))
    assert ImageOptions(safety_tolerance="1").given() == {}  # never mistaken for a user option


async def test_services_without_a_safety_setting_are_not_routed_a_non_default_level() -> None:
    key = SecretStr("k")
    async with httpx.AsyncClient() as client:
        providers = (GeminiProvider(client, key, RetryPolicy()), MindVideoProvider(client, key, RetryPolicy()))
    for provider in providers:
        assert provider.unsupported("nano-banana", {"prompt": "x", "safety_tolerance": "4"}) is None
        assert "safety" in render(
            provider.unsupported("nano-banana", {"prompt": "x", "safety_tolerance": "2"}) or "", "en"
        )


async def test_reads_are_cached_and_changes_drop_the_cache(db: Database) -> None:
    settings = GuildSettings(db)
    assert (await load(db, GUILD)).safety == "4"
    # Another writer (e.g. another process) is seen once the cached copy is old enough...
    await db.execute("INSERT INTO guild_settings (guild_id, key, value) VALUES (?, 'safety_tolerance', '3')", (GUILD,))
    assert (await load(db, GUILD)).safety == "4"
    assert (await load(db, GUILD, max_age=0)).safety == "3"
    # ...while changes made through the bot are seen at once.
    await settings.set_safety(GUILD, ADMIN, 1)
    assert (await load(db, GUILD)).safety == "1"


async def test_a_burst_of_commands_reads_the_settings_once(db: Database, monkeypatch: pytest.MonkeyPatch) -> None:
    queries = 0
    real = guild_config.get_all

    async def counting(database: Database, guild_id: int) -> dict[str, str]:
        nonlocal queries
        queries += 1
        return await real(database, guild_id)

    monkeypatch.setattr(guild_config, "get_all", counting)
    configs = await asyncio.gather(*(load(db, GUILD) for _ in range(50)))
    assert queries == 1 and all(c == GuildConfig() for c in configs)


async def test_a_burst_of_commands_from_a_server_with_a_new_language_writes_it_once(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    writes = 0
    real = guild_config.set_value

    async def counting(*args: object) -> None:
        nonlocal writes
        writes += 1
        await real(*args)  # type: ignore[arg-type]

    monkeypatch.setattr(guild_config, "set_value", counting)
    await asyncio.gather(*(guild_config.remember_locale(db, GUILD, "zh-CN") for _ in range(50)))
    assert writes == 1
    assert (await load(db, GUILD)).seen_locale == "zh-CN"
    await asyncio.gather(*(guild_config.remember_locale(db, GUILD, "en-US") for _ in range(50)))
    assert writes == 2
    assert (await load(db, GUILD)).seen_locale == "en-US"
