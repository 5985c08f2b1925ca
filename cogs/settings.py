"""`/settings`: the per-server settings (server admins only; every change is audited).

Discord hides the group from members without Manage Server (`default_permissions`), and the cog checks
the permission again at run time, since server admins can override the default in Discord's settings.
"""

from __future__ import annotations

import io
from typing import TYPE_CHECKING

import discord
from discord import app_commands
from discord.ext import commands

from bot.errors import InvalidRequest
from bot.guild_config import GuildConfig, GuildSettings, SettingsChange, load, model_label
from bot.i18n import LANGUAGE_NAMES, LANGUAGES, msg, t
from bot.i18n.translator import user_locale
from bot.moderation import MAX_TERM_CHARS
from bot.providers.catalog import DEFAULT_SAFETY_TOLERANCE, MODELS, TEXT_TO_IMAGE_MODELS

if TYPE_CHECKING:
    from bot.client import ImageBot

MODEL_CHOICES = [app_commands.Choice(name=MODELS[m].label, value=m) for m in TEXT_TO_IMAGE_MODELS]
SAFETY_MODELS = ", ".join(MODELS[m].label for m in TEXT_TO_IMAGE_MODELS if "safety_tolerance" in MODELS[m].fields)


LANGUAGE_CHOICES = [
    *(app_commands.Choice(name=LANGUAGE_NAMES[code], value=code) for code in LANGUAGES),
    app_commands.Choice(name="Automatic (the server's Discord language)", value="auto"),
]


def guild_of(interaction: discord.Interaction[ImageBot]) -> int:
    if interaction.guild_id is None:
        raise InvalidRequest("settings.server_only")
    return interaction.guild_id


def quoted(term: str) -> str:
    """A blocked term shown to an admin: escaped, so it can't format or ping."""
    return f"“{discord.utils.escape_markdown(discord.utils.escape_mentions(term))}”"


def describe(config: GuildConfig, bot_default: str, locale: str = "en") -> list[str]:
    """Every setting of a server, one line each (for `/settings show`)."""
    channels = " ".join(f"<#{c}>" for c in config.allowed_channels) or t(locale, "settings.every_channel")
    model = config.default_model or bot_default
    model_source = msg("settings.set_here") if config.default_model else msg("settings.bot_default")
    safety_source = msg("settings.set_here") if config.safety_level else msg("settings.default")
    terms = ", ".join(quoted(term) for term in config.blocklist) or t(locale, "settings.none")
    buttons = msg("settings.buttons_everyone") if config.buttons_for_everyone else msg("settings.buttons_owner")
    language = (
        msg("settings.language_fixed", language=LANGUAGE_NAMES[config.locale])
        if config.language
        else msg("settings.language_auto", language=LANGUAGE_NAMES[config.locale])
    )
    return [
        t(locale, "settings.show_channels", channels=channels),
        t(locale, "settings.show_model", model=model_label(model), source=model_source),
        t(locale, "settings.show_safety", level=config.safety, source=safety_source, models=SAFETY_MODELS),
        t(locale, "settings.show_terms", count=len(config.blocklist), terms=terms),
        t(locale, "settings.show_buttons", who=buttons),
        t(locale, "settings.show_language", language=language),
    ]


class Settings(commands.Cog):
    """The `/settings` group."""

    settings = app_commands.Group(
        name="settings",
        description="Bot settings for this server (server admins)",
        guild_only=True,
        default_permissions=discord.Permissions(manage_guild=True),
    )
    blocklist = app_commands.Group(
        name="blocklist", description="Words and phrases refused in prompts", parent=settings
    )

    def __init__(self, bot: ImageBot) -> None:
        self.bot = bot
        self.store = GuildSettings(bot.db)

    async def interaction_check(self, interaction: discord.Interaction[ImageBot]) -> bool:  # type: ignore[override]
        """The run-time half of "admins only" (Discord's default permissions can be overridden per server)."""
        guild_of(interaction)
        if not interaction.permissions.manage_guild:
            raise app_commands.MissingPermissions(["manage_guild"])
        return True

    async def answer(self, interaction: discord.Interaction[ImageBot], content: str) -> None:
        await interaction.response.send_message(
            content, ephemeral=True, allowed_mentions=discord.AllowedMentions.none()
        )

    @settings.command(name="buttons", description="Whether everyone may reroll, vary, edit and upscale others' images")
    @app_commands.describe(everyone="True: anyone may; False: only the person who asked")
    async def buttons(self, interaction: discord.Interaction[ImageBot], everyone: bool) -> None:
        await self.store.set_buttons(guild_of(interaction), interaction.user.id, everyone)
        who = msg("settings.buttons_everyone") if everyone else msg("settings.buttons_owner")
        await self.answer(interaction, t(user_locale(interaction), "settings.buttons_set", who=who))

    @settings.command(name="channel", description="Allow or disallow the bot in a channel (empty list: everywhere)")
    @app_commands.describe(channel="A text channel", allowed="True: add it to the allowed channels; False: remove it")
    async def channel(
        self, interaction: discord.Interaction[ImageBot], channel: discord.TextChannel, allowed: bool
    ) -> None:
        change = await self.store.set_channel(guild_of(interaction), interaction.user.id, channel.id, allowed)
        listed = change.config.allowed_channels
        locale = user_locale(interaction)
        key = {
            (True, True): "settings.channel_now_allowed",
            (True, False): "settings.channel_already_allowed",
            (False, True): "settings.channel_now_unlisted",
            (False, False): "settings.channel_already_unlisted",
        }[(allowed, change.changed)]
        head = t(locale, key, channel=channel.mention)
        if listed:
            tail = t(locale, "settings.channels_listed", channels=" ".join(f"<#{c}>" for c in listed))
        else:
            tail = t(locale, "settings.channels_empty")
        await self.answer(interaction, head + " " + tail)

    @settings.command(name="model", description="The model /imagine uses when none is chosen")
    @app_commands.describe(model="The server's default text-to-image model")
    @app_commands.choices(model=MODEL_CHOICES)
    async def model(self, interaction: discord.Interaction[ImageBot], model: str) -> None:
        await self.store.set_default_model(guild_of(interaction), interaction.user.id, model)
        await self.answer(interaction, t(user_locale(interaction), "settings.model_set", model=model_label(model)))

    @settings.command(name="safety", description="How strict the image services' safety filter is (1 strictest)")
    @app_commands.describe(level=f"1 (strictest) to 6 (most permissive); the default is {DEFAULT_SAFETY_TOLERANCE}")
    async def safety(self, interaction: discord.Interaction[ImageBot], level: app_commands.Range[int, 1, 6]) -> None:
        await self.store.set_safety(guild_of(interaction), interaction.user.id, level)
        locale = user_locale(interaction)
        answer = t(locale, "settings.safety_set", level=level, models=SAFETY_MODELS)
        if str(level) != DEFAULT_SAFETY_TOLERANCE:
            answer += " " + t(locale, "settings.safety_note", default=DEFAULT_SAFETY_TOLERANCE)
        await self.answer(interaction, answer)

    @blocklist.command(name="add", description="Refuse prompts that contain this word or phrase")
    @app_commands.describe(term="A word or phrase; matched as whole words, ignoring case and accents")
    async def blocklist_add(
        self, interaction: discord.Interaction[ImageBot], term: app_commands.Range[str, 1, MAX_TERM_CHARS]
    ) -> None:
        change = await self.store.add_term(guild_of(interaction), interaction.user.id, term)
        key = "settings.term_added" if change.changed else "settings.term_already"
        await self.answer(interaction, self._terms_answer(interaction, change, key))

    @blocklist.command(name="remove", description="Stop refusing this word or phrase")
    @app_commands.describe(term="A blocked word or phrase")
    async def blocklist_remove(
        self, interaction: discord.Interaction[ImageBot], term: app_commands.Range[str, 1, MAX_TERM_CHARS]
    ) -> None:
        change = await self.store.remove_term(guild_of(interaction), interaction.user.id, term)
        key = "settings.term_removed" if change.changed else "settings.term_not_blocked"
        await self.answer(interaction, self._terms_answer(interaction, change, key))

    def _terms_answer(self, interaction: discord.Interaction[ImageBot], change: SettingsChange, key: str) -> str:
        locale = user_locale(interaction)
        return t(locale, key) + " " + t(locale, "settings.terms_count", count=len(change.config.blocklist))

    @settings.command(name="language", description="The language of status and result messages in this server")
    @app_commands.describe(language="English, 简体中文, or automatic: the server's language in Discord")
    @app_commands.choices(language=LANGUAGE_CHOICES)
    async def language(self, interaction: discord.Interaction[ImageBot], language: str) -> None:
        chosen = None if language == "auto" else language
        change = await self.store.set_language(guild_of(interaction), interaction.user.id, chosen)
        name = LANGUAGE_NAMES[change.config.locale]
        key = "settings.language_set" if chosen else "settings.language_set_auto"
        await self.answer(interaction, t(user_locale(interaction), key, language=name))

    @settings.command(name="show", description="Every setting of this server")
    async def show(self, interaction: discord.Interaction[ImageBot]) -> None:
        guild = guild_of(interaction)
        config = await load(self.bot.db, guild, max_age=0)  # exactly what is stored
        locale = user_locale(interaction)
        lines = describe(config, self.bot.settings.default_model, locale)
        recent = await self.store.recent_changes(guild)
        if recent:
            lines.append("\n" + t(locale, "audit.recent"))
            lines += [f"<t:{int(e.created_at)}:R> <@{e.actor_id}> {e.action.removeprefix('settings ')}" for e in recent]
        content = "\n".join(lines)
        if len(content) <= 2000:
            await self.answer(interaction, content)
            return
        # A long blocklist does not fit Discord's 2000 characters: the full list goes in a file.
        lines[3] = t(locale, "settings.show_terms", count=len(config.blocklist), terms=t(locale, "settings.terms_file"))
        listing = discord.File(io.BytesIO("\n".join(config.blocklist).encode()), filename="blocked-terms.txt")
        await interaction.response.send_message(
            "\n".join(lines)[:2000], file=listing, ephemeral=True, allowed_mentions=discord.AllowedMentions.none()
        )


async def setup(bot: ImageBot) -> None:
    await bot.add_cog(Settings(bot))
