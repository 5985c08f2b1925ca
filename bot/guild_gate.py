"""Discord glue for the per-server settings: read them once per interaction, apply the channel allow-list,
and answer a message privately (by DM) when the channel must stay quiet.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import discord

from bot.guild_config import GuildConfig, load
from bot.i18n import DEFAULT_LOCALE, t

if TYPE_CHECKING:
    from bot.client import ImageBot

log = logging.getLogger(__name__)

_EXTRAS_KEY = "guild_config"


async def guild_config_of(interaction: discord.Interaction[ImageBot]) -> GuildConfig:
    """The server's settings, read once per interaction (the tree's check and the command share them)."""
    cached = interaction.extras.get(_EXTRAS_KEY)
    if isinstance(cached, GuildConfig):
        return cached
    config = await load(interaction.client.db, interaction.guild_id)
    interaction.extras[_EXTRAS_KEY] = config
    return config


def parent_id(channel: object) -> int | None:
    """A thread's parent channel id (threads follow their channel's allow-list entry)."""
    parent = getattr(channel, "parent_id", None)
    return parent if isinstance(parent, int) else None


async def check_interaction_channel(interaction: discord.Interaction[ImageBot]) -> None:
    """Raise ChannelNotAllowed (naming the allowed channels) when the server keeps the bot elsewhere."""
    if interaction.guild_id is None:
        return
    config = await guild_config_of(interaction)
    config.check_channel(interaction.channel_id, parent_id(interaction.channel))


async def tell_privately(message: discord.Message, content: str, locale: str = DEFAULT_LOCALE) -> bool:
    """Answer the author of `message` by DM (messages have no private replies); False if their DMs are closed."""
    try:
        await message.author.send(
            t(locale, "dm.about_message", link=message.jump_url, content=content),
            allowed_mentions=discord.AllowedMentions.none(),
        )
    except discord.HTTPException:
        log.info("could not DM user %s about message %s", message.author.id, message.id)
        return False
    return True
