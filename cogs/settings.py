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
from bot.moderation import MAX_TERM_CHARS
from bot.providers.catalog import DEFAULT_SAFETY_TOLERANCE, MODELS, TEXT_TO_IMAGE_MODELS

if TYPE_CHECKING:
    from bot.client import ImageBot

MODEL_CHOICES = [app_commands.Choice(name=MODELS[m].label, value=m) for m in TEXT_TO_IMAGE_MODELS]
SAFETY_MODELS = ", ".join(MODELS[m].label for m in TEXT_TO_IMAGE_MODELS if "safety_tolerance" in MODELS[m].fields)


def guild_of(interaction: discord.Interaction[ImageBot]) -> int:
    if interaction.guild_id is None:
        raise InvalidRequest("These are server settings; use them inside a server.")
    return interaction.guild_id


def quoted(term: str) -> str:
    """A blocked term shown to an admin: escaped, so it can't format or ping."""
    return f"“{discord.utils.escape_markdown(discord.utils.escape_mentions(term))}”"


def describe(config: GuildConfig, bot_default: str) -> list[str]:
    """Every setting of a server, one line each (for `/settings show`)."""
    channels = " ".join(f"<#{c}>" for c in config.allowed_channels) or "every channel (the list is empty)"
    model = config.default_model or bot_default
    model_source = "set for this server" if config.default_model else "the bot's default"
    safety_source = "set for this server" if config.safety_level else "the default"
    terms = ", ".join(quoted(t) for t in config.blocklist) or "none"
    buttons = "everyone" if config.buttons_for_everyone else "only the person who asked"
    return [
        f"**Channels**: {channels}",
        f"**Default model**: {model_label(model)} ({model_source})",
        f"**Safety level**: {config.safety} of 1 (strictest) to 6 ({safety_source}); sent to {SAFETY_MODELS}",
        f"**Blocked terms** ({len(config.blocklist)}): {terms}",
        f"**Result buttons**: {buttons}",
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
        who = "everyone" if everyone else "only the person who asked"
        await self.answer(interaction, f"Result buttons can now be used by {who}.")

    @settings.command(name="channel", description="Allow or disallow the bot in a channel (empty list: everywhere)")
    @app_commands.describe(channel="A text channel", allowed="True: add it to the allowed channels; False: remove it")
    async def channel(
        self, interaction: discord.Interaction[ImageBot], channel: discord.TextChannel, allowed: bool
    ) -> None:
        change = await self.store.set_channel(guild_of(interaction), interaction.user.id, channel.id, allowed)
        listed = change.config.allowed_channels
        state = "allowed" if allowed else "not listed"
        head = f"{channel.mention} is {'now' if change.changed else 'already'} {state}."
        if listed:
            tail = f" The bot can be used in: {' '.join(f'<#{c}>' for c in listed)} (and their threads)."
        else:
            tail = " The list is empty, so the bot can be used in every channel."
        await self.answer(interaction, head + tail)

    @settings.command(name="model", description="The model /imagine uses when none is chosen")
    @app_commands.describe(model="The server's default text-to-image model")
    @app_commands.choices(model=MODEL_CHOICES)
    async def model(self, interaction: discord.Interaction[ImageBot], model: str) -> None:
        await self.store.set_default_model(guild_of(interaction), interaction.user.id, model)
        await self.answer(interaction, f"`/imagine` now uses **{model_label(model)}** when no model is chosen.")

    @settings.command(name="safety", description="How strict the image services' safety filter is (1 strictest)")
    @app_commands.describe(level=f"1 (strictest) to 6 (most permissive); the default is {DEFAULT_SAFETY_TOLERANCE}")
    async def safety(self, interaction: discord.Interaction[ImageBot], level: app_commands.Range[int, 1, 6]) -> None:
        await self.store.set_safety(guild_of(interaction), interaction.user.id, level)
        note = (
            " Image services that cannot apply a level are not used for those models here while it is not "
            f"{DEFAULT_SAFETY_TOLERANCE}."
            if str(level) != DEFAULT_SAFETY_TOLERANCE
            else ""
        )
        await self.answer(
            interaction,
            f"Safety level is now **{level}** (1 strictest, 6 most permissive) for new images from {SAFETY_MODELS}."
            + note,
        )

    @blocklist.command(name="add", description="Refuse prompts that contain this word or phrase")
    @app_commands.describe(term="A word or phrase; matched as whole words, ignoring case and accents")
    async def blocklist_add(
        self, interaction: discord.Interaction[ImageBot], term: app_commands.Range[str, 1, MAX_TERM_CHARS]
    ) -> None:
        change = await self.store.add_term(guild_of(interaction), interaction.user.id, term)
        await self.answer(interaction, self._terms_answer(change, "added", "was already blocked"))

    @blocklist.command(name="remove", description="Stop refusing this word or phrase")
    @app_commands.describe(term="A blocked word or phrase")
    async def blocklist_remove(
        self, interaction: discord.Interaction[ImageBot], term: app_commands.Range[str, 1, MAX_TERM_CHARS]
    ) -> None:
        change = await self.store.remove_term(guild_of(interaction), interaction.user.id, term)
        await self.answer(interaction, self._terms_answer(change, "removed", "was not blocked"))

    def _terms_answer(self, change: SettingsChange, done: str, unchanged: str) -> str:
        count = len(change.config.blocklist)
        outcome = f"Term {done}." if change.changed else f"That term {unchanged}."
        return f"{outcome} {count} term{'s are' if count != 1 else ' is'} blocked on this server."

    @settings.command(name="show", description="Every setting of this server")
    async def show(self, interaction: discord.Interaction[ImageBot]) -> None:
        guild = guild_of(interaction)
        config = await load(self.bot.db, guild, max_age=0)  # exactly what is stored
        lines = describe(config, self.bot.settings.default_model)
        recent = await self.store.recent_changes(guild)
        if recent:
            lines.append("\n**Recent changes**")
            lines += [f"<t:{int(e.created_at)}:R> <@{e.actor_id}> {e.action.removeprefix('settings ')}" for e in recent]
        content = "\n".join(lines)
        if len(content) <= 2000:
            await self.answer(interaction, content)
            return
        # A long blocklist does not fit Discord's 2000 characters: the full list goes in a file.
        lines[3] = f"**Blocked terms** ({len(config.blocklist)}): in the attached file"
        listing = discord.File(io.BytesIO("\n".join(config.blocklist).encode()), filename="blocked-terms.txt")
        await interaction.response.send_message(
            "\n".join(lines)[:2000], file=listing, ephemeral=True, allowed_mentions=discord.AllowedMentions.none()
        )


async def setup(bot: ImageBot) -> None:
    await bot.add_cog(Settings(bot))
